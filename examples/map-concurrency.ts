/**
 * Fan-out with `flyte.map`, bounded and unbounded.
 *
 * Mirrors Flyte 2's `flyte.map(process_item, items, concurrency=5)`: one child action per item, results in input
 * order, at most `concurrency` items running at once (`0`, the default, means no limit). Each map's actions form
 * one group, `${task.name}_map` unless `groupName` says otherwise.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'map_concurrency' });

export const processItem = env.task(async function processItem(x: number) {
  await sleep(50, undefined, { signal: flyte.ctx()?.signal });
  return x * 2;
});

export const main = env.task(async function main(items: number[]) {
  // At most 3 items at a time, in the group `map_concurrency.processItem_map`.
  // `returnExceptions: false`: the first failure rejects the map (the default, true, returns errors in place).
  const bounded = await flyte.map(processItem, items, { concurrency: 3, returnExceptions: false });
  // No limit: every item starts at once, in the group `map_concurrency.processItem_unbounded`.
  const unbounded = await flyte.map(processItem, items, { groupName: 'unbounded', returnExceptions: false });
  return { bounded, unbounded };
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
