/**
 * A run driven by another process, for the UI tests: `node --import tsx ui-child.ts ROOT GATE_DIR N [tolerant]`
 * starts a run of `N` steps that each wait for the file `GATE_DIR/go-I`, prints the run's name, and exits when the
 * run ends (succeeded, or aborted through the store by the UI). With `tolerant`, the run succeeds even when some
 * steps fail or are aborted.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'ui_child' });

export const waitFile = env.task(async function waitFile(dir: string, i: number) {
  const signal = flyte.ctx()?.signal;
  while (!existsSync(join(dir, `go-${i}`))) await sleep(20, undefined, { signal });
  console.log(`step ${i} released`);
  return i;
});

export const steps = env.task(async function steps(dir: string, n: number, tolerant: boolean) {
  const all = Array.from({ length: n }, (_, i) => i);
  const done = await flyte.map(flyte.partial(waitFile, dir), all, { concurrency: n, returnExceptions: tolerant });
  return done.map((r) => (r instanceof Error ? -1 : r));
});

const [root, dir, n, mode] = process.argv.slice(2);
flyte.init({ root: root as string, echoLogs: false });
const run = await flyte.run(steps, dir as string, Number(n), mode === 'tolerant');
console.log(run.name);
const end = await run.wait();
console.log(end.phase);
await flyte.shutdown();
