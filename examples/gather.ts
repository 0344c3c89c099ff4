/**
 * Async fan-out with `Promise.all` and `flyte.gather`.
 *
 * Mirrors Flyte 2's `await asyncio.gather(*[process(i) for i in items])`: calling an async task inside a run
 * returns a promise and starts a child action at once, so plain JavaScript concurrency is the fan-out.
 * `flyte.gather` is `Promise.all` under the name readers of the Python guide know.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'gather' });

export const processItem = env.task(async function processItem(x: number) {
  return `item-${x}`;
});

export const main = env.task(async function main(items: number[]) {
  const all = await Promise.all(items.map((x) => processItem(x)));
  const gathered = await flyte.gather(items.map((x) => processItem(x * 10)));
  return { all, gathered };
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 2, 3]);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
