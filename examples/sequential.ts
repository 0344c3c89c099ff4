/**
 * Sequential awaits: a workflow in the Flyte 1 style.
 *
 * Mirrors Flyte 2's guide: "sequential awaits behave like Flyte 1 workflows". Each step is a child action that
 * starts when the previous one has finished and gets its output as input.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'sequential' });

export const extract = env.task(async function extract(source: string) {
  return source.split(',').map((s) => s.trim());
});

export const clean = env.task(async function clean(rows: string[]) {
  return rows.filter((row) => row !== '').map((row) => row.toLowerCase());
});

export const report = env.task(async function report(rows: string[]) {
  return { count: rows.length, rows };
});

export const main = env.task(async function main(source: string) {
  const rows = await extract(source);
  const cleaned = await clean(rows);
  return report(cleaned);
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, 'Alpha, , Beta,GAMMA');
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
