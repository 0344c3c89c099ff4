/**
 * Migrating a Flyte 1 `map_task` to a sync task: `Array.from(flyte.map(...))` inside a sync task.
 *
 * Mirrors Flyte 2's `list(flyte.map(process_item, items, concurrency=5))` in a plain (non-async) task. Sync task
 * bodies run on a pool of worker threads, so CPU-bound items use every core; iterating the map blocks the
 * parent's thread (never the event loop) until all items finished, and yields the results in input order.
 *
 * Tasks are defined at module top level and exported: pool threads import this module to run them, so the code
 * that starts the run is guarded to run only when this file is the entry point.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'sync_map' });

export const processItem = env.task(function processItem(x: number) {
  let acc = 0;
  for (let i = 0; i < 100_000; i++) acc = (acc + x * i) % 1_000_003; // some CPU work
  return { x, doubled: x * 2, acc };
});

export const main = env.task(function main(items: number[]) {
  // At most 5 items at a time, in the group `sync_map.processItem_map`.
  const results = Array.from(flyte.map(processItem, items, { concurrency: 5, returnExceptions: false }));
  return results.map((r) => r.doubled);
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
  await flyte.shutdown();
}
