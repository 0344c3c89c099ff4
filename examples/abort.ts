/**
 * Aborting a run from outside: `run.abort(reason)`.
 *
 * Mirrors Flyte 2's `flyte abort run NAME`: the root and every running descendant end in phase `aborted`, and
 * their `flyte.ctx().signal` fires so in-flight work stops. `run.wait()` then resolves with the aborted run and
 * `run.outputs()` rejects with `flyte.errors.ActionAbortedError`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'abort' });

/** Would take a minute; stops as soon as its action is aborted. */
export const longJob = env.task(async function longJob(x: number) {
  await sleep(60_000, undefined, { signal: flyte.ctx()?.signal });
  return x;
});

export const main = env.task(async function main(items: number[]) {
  return flyte.map(longJob, items, { returnExceptions: false });
});

/** Resolves once `count` actions of the run are running. */
async function runningActions(run: flyte.Run, count: number): Promise<void> {
  while ((await run.actions()).filter((a) => a.phase === 'running').length < count) await sleep(20);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 2, 3]);
  console.log('run:', run.name);
  await runningActions(run, 4); // the root and its 3 children
  await run.abort('no longer needed');
  const record = await run.wait();
  const error = await run.outputs().then(
    () => 'none',
    (err: unknown) => (err instanceof flyte.errors.BaseRuntimeError ? err.code : String(err)),
  );
  console.log('result:', JSON.stringify({ phase: record.phase, error }));
  if (record.phase !== 'aborted') process.exitCode = 1;
}
