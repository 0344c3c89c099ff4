/**
 * Async tasks calling async tasks.
 *
 * Mirrors Flyte 2's async task chains: an async task awaits other async tasks, each call a child action of the
 * caller, so the run records a tree (main → pipeline → load, transform). Independent chains run concurrently.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'async_chain' });

export const load = env.task(async function load(id: number) {
  return { id, values: [id, id + 1, id + 2] };
});

export const transform = env.task(async function transform(record: { id: number; values: number[] }) {
  return { id: record.id, total: record.values.reduce((a, b) => a + b, 0) };
});

/** One chain: load, then transform what was loaded. */
export const pipeline = env.task(async function pipeline(id: number) {
  const record = await load(id);
  return transform(record);
});

export const main = env.task(async function main(ids: number[]) {
  // The chains of different ids run concurrently; inside each, transform waits for load.
  return Promise.all(ids.map((id) => pipeline(id)));
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 10, 100]);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
