/**
 * Timeouts: each attempt is bounded by the task's `timeout`; `flyte.ctx().signal` lets the body stop.
 *
 * Mirrors Flyte 2's `@env.task(timeout=...)`, enforced locally too: an attempt that runs too long ends in phase
 * `timed_out` and the caller gets a `flyte.errors.TaskTimeoutError`. The signal fires on timeout, so a body that
 * passes it to timers, `fetch` or child processes stops instead of running on in the background.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'timeouts' });

export const fetchPage = env.task({ timeout: '200ms' }, async function fetchPage(delayMs: number) {
  // Stands in for `await fetch(url, { signal })`: ends early, with an AbortError, when the signal fires.
  await sleep(delayMs, undefined, { signal: flyte.ctx()?.signal });
  return `page after ${delayMs} ms`;
});

export const main = env.task(async function main() {
  const fast = await fetchPage(10);
  let slow: string;
  try {
    slow = await fetchPage(60_000);
  } catch (err) {
    if (!(err instanceof flyte.errors.TaskTimeoutError)) throw err;
    slow = err.code;
  }
  return { fast, slow };
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
