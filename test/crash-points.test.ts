/**
 * Durable before visible, proven with real crashes: a process running a counted fan-out (every execution of an
 * item appends its index to a file) is SIGKILLed early, midway and late; the run is recovered, and the items that
 * ran twice are counted. A child's outcome reaches its parent (and frees its map slot) only once it is
 * committed, so at most the items in flight at the kill, never more than the map's concurrency, run again.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as flyte from 'flyte-ts';
import { runAndKill } from './support/crash.js';
import { initOptions, rootEnv } from './support/test-store.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-counted.ts', import.meta.url));
const N = 1500;
const CONCURRENCY = 50;

const roots: string[] = [];
after(async () => {
  await flyte.shutdown();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** Executions per item, from the counter file. */
function executions(file: string): Map<number, number> {
  const counts = new Map<number, number>();
  if (!existsSync(file)) return counts;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line !== '' && line !== 'root') counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  }
  return counts;
}

describe('SIGKILL at any point re-runs at most the children in flight', () => {
  for (const mode of ['yield', 'busy'] as const) {
    for (const [point, fraction] of [
      ['early', 0.05],
      ['midway', 0.5],
      ['late', 0.8],
    ] as const) {
      it(`${mode} children, killed ${point}: at most ${CONCURRENCY} (the concurrency) run twice`, async (t) => {
        const root = mkdtempSync(path.join(os.tmpdir(), 'flyte-crash-points-'));
        roots.push(root);
        const counts = path.join(root, 'counts.txt');
        const killAt = Math.round(N * fraction);
        const name = await runAndKill(
          FIXTURE,
          [String(N), String(CONCURRENCY), mode],
          { ...rootEnv(root), FLYTE_COUNTS: counts },
          () => executions(counts).size >= killAt,
        );
        const before = executions(counts);
        assert.ok(before.size < N, `killed before the end: ${before.size} of ${N} items had run`);

        flyte.init(initOptions(root));
        process.env.FLYTE_COUNTS = counts; // the recovered items run in this process
        const recovered = await flyte.rerun(name, { recover: true });
        assert.equal(await recovered.outputs(), N * (N - 1));

        const after = executions(counts);
        const twice = [...after.values()].filter((n) => n > 1).length;
        const thrice = [...after.values()].filter((n) => n > 2).length;
        for (let i = 0; i < N; i++) assert.ok((after.get(i) ?? 0) >= 1, `item ${i} ran`);
        t.diagnostic(
          `${mode}, killed after ${before.size} of ${N} items: ${twice} ran twice (concurrency ${CONCURRENCY})`,
        );
        assert.equal(thrice, 0, 'no item ran three times');
        assert.ok(twice <= CONCURRENCY, `${twice} items ran twice; at most ${CONCURRENCY} were in flight`);
        await flyte.shutdown();
      });
    }
  }
});
