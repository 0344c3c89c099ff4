/**
 * Bounding an async fan-out with `flyte.Semaphore`.
 *
 * Mirrors Flyte 2's `asyncio.Semaphore` pattern (`async with sem: return await process(x)`): every item is
 * scheduled at once with `Promise.all`, but at most `n` child actions run at a time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'semaphore' });

export const processItem = env.task(async function processItem(x: number) {
  await sleep(30, undefined, { signal: flyte.ctx()?.signal });
  return x * x;
});

export const main = env.task(async function main(items: number[], limit: number) {
  const sem = new flyte.Semaphore(limit);
  // `sem.run(fn)` acquires a permit, runs fn and releases the permit however fn ends.
  return Promise.all(items.map((x) => sem.run(() => processItem(x))));
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 2, 3, 4, 5, 6, 7, 8], 2);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
