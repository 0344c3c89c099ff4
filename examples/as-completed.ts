/**
 * Streaming results as they finish with `flyte.asCompleted` and `flyte.map(...).asCompleted()`.
 *
 * Mirrors Flyte 2's `for coro in asyncio.as_completed(tasks): result = await coro`: handle each result as soon
 * as its child action finishes, in completion order rather than input order.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'as_completed' });

/**
 * Takes `x * 250` ms, so smaller inputs finish first (250 ms apart: more than the children's starts lie apart on
 * a loaded machine).
 */
export const slowSquare = env.task(async function slowSquare(x: number) {
  await sleep(x * 250, undefined, { signal: flyte.ctx()?.signal });
  return x * x;
});

export const main = env.task(async function main(items: number[]) {
  const fromPromises: number[] = [];
  for await (const square of flyte.asCompleted(items.map((x) => slowSquare(x)))) {
    fromPromises.push(square);
  }
  const fromMap: number[] = [];
  for await (const square of flyte.map(slowSquare, items, { returnExceptions: false }).asCompleted()) {
    fromMap.push(square);
  }
  return { inputOrder: items, fromPromises, fromMap };
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [3, 1, 4, 2]);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
