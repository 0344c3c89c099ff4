/**
 * Sync tasks calling sync tasks: `a = step1(x); b = step2(a)`.
 *
 * Inside a sync task, calling a sync task blocks that task's thread and returns the value; the child is still a
 * recorded action (retried, cached, timed out like any other) and runs on its own pool thread. From async code,
 * call a sync task with `await task.aio(...)`.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'sync_chain' });

export const step1 = env.task({ retries: 2 }, function step1(x: number) {
  return x + 1;
});

export const step2 = env.task(function step2(x: number) {
  return x * 10;
});

export const pipeline = env.task(function pipeline(x: number) {
  const a = step1(x);
  const b = flyte.group('second', () => step2(a));
  console.log(`step1 -> ${a}, step2 -> ${b}`);
  return b;
});

export const main = env.task(async function main(xs: number[]) {
  // From async code a sync task is awaited through `.aio`; the pipelines run in parallel on the pool.
  return Promise.all(xs.map((x) => pipeline.aio(x)));
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 2, 3]);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
  await flyte.shutdown();
}
