/**
 * A failure budget on a fan-out: go on while few items fail, stop as soon as too many do.
 *
 * Flyte 1's `map_task(min_success_ratio=...)`, for `flyte.map`: with `minSuccessRatio` (the share that must
 * succeed) or `maxFailures` (a count), failed items come back as errors in place while the budget holds; the
 * moment it cannot hold any more, the map aborts the items still running, starts no more, and rejects with
 * `flyte.errors.MapFailureBudgetExceeded`, which carries the counts and the first errors.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'failure_budget' });

export class ValueError extends Error {}

/** Every third item fails. */
export const score = env.task(async function score(x: number) {
  if (x % 3 === 0) throw new ValueError(`item ${x} is a multiple of 3`);
  return x * 10;
});

export const main = env.task(async function main(items: number[]) {
  // 10 items, at least 70% must succeed: up to 3 may fail. 3 do, so the map completes, errors in place.
  const kept = (await flyte.map(score, items, { minSuccessRatio: 0.7 })).map((r) =>
    r instanceof flyte.errors.RuntimeUserError ? `error:${r.code}` : r,
  );

  // At most 1 failure, one item at a time: the second failure (item 6) stops the map; items 7 to 10 never start.
  let budget: unknown;
  try {
    await flyte.map(score, items, { maxFailures: 1, concurrency: 1, groupName: 'strict' });
  } catch (e) {
    if (!(e instanceof flyte.errors.MapFailureBudgetExceeded)) throw e;
    const { code, total, succeeded, failed, cancelled, notStarted } = e;
    budget = { code, total, succeeded, failed, cancelled, notStarted, firstErrors: e.firstErrors.map((f) => f.index) };
  }
  return { kept, budget };
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
