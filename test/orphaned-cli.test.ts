/**
 * An orphaned run in the CLI: a driver SIGKILLed in the middle of a fan-out leaves actions `running` in the
 * store. `flyte get runs` and `flyte get run` show the run as orphaned, with the time its driver was last seen,
 * durations that end then (they do not grow), and no spinners.
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, parseJson, runCli, tempDir, type CliResult } from './support/cli.js';
import { rootEnv } from './support/test-store.js';
import { runAndKill } from './support/crash.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-counted.ts', import.meta.url));
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

function ok(result: CliResult): string {
  assert.equal(result.code, 0, `exit ${String(result.code)}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  return result.stdout;
}

/** `850ms`, `12.3s`, `4m05s` → ms. */
function parseDuration(text: string): number {
  const m = /^(?:(\d+)m(\d\d)s|([\d.]+)s|(\d+)ms)$/.exec(text);
  assert.ok(m !== null, `not a duration: '${text}'`);
  if (m[1] !== undefined) return (Number(m[1]) * 60 + Number(m[2])) * 1000;
  if (m[3] !== undefined) return Number(m[3]) * 1000;
  return Number(m[4]);
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('an orphaned run in the CLI', () => {
  const root = tempDir('flyte-orphaned-cli-');
  const counts = join(root, 'counts.txt');
  let name = '';
  /** How long the killed driver lived: the run cannot have run longer. */
  let livedMs = 0;

  before(async () => {
    ensureBuilt();
    const spawnedAt = Date.now();
    // A short lease, so that the driver renews it (and is "seen") often; killed once some 50 items ran.
    name = await runAndKill(
      FIXTURE,
      ['4000', '10', 'slow'],
      { ...rootEnv(root), FLYTE_COUNTS: counts, FLYTE_LEASE_MS: '600' },
      () => existsSync(counts) && statSync(counts).size >= 200,
    );
    livedMs = Date.now() - spawnedAt;
    // Let time pass: a duration measured up to now would now be longer than the driver lived.
    await wait(1500);
  });

  it('get runs: orphaned, last seen, and a duration up to then that does not grow', async () => {
    const first = ok(await runCli(['get', 'runs'], { root }));
    await wait(1000);
    const second = ok(await runCli(['get', 'runs'], { root }));
    const line = first.split('\n').find((l) => l.startsWith(name));
    assert.ok(line !== undefined, first);
    assert.match(line, /orphaned, last seen \d\d:\d\d:\d\d/);
    const duration = /(\S+)\s+\d+\/\d+/.exec(line)?.[1] ?? '';
    assert.ok(
      parseDuration(duration) <= livedMs,
      `duration ${duration} is longer than the driver lived (${livedMs} ms)`,
    );
    assert.equal(
      second.split('\n').find((l) => l.startsWith(name)),
      line,
      'the row changed as time passed',
    );

    const [json] = parseJson<{ name: string; heartbeatAt: number; lastSeenAt: number; phase: string }[]>(
      await runCli(['get', 'runs', '-o', 'json'], { root }),
    );
    assert.equal(json?.name, name);
    assert.equal(json?.phase, 'orphaned');
    assert.equal(json?.lastSeenAt, json?.heartbeatAt);
  });

  it('get run: last seen in the header, `?` marks and orphaned counts, never a spinner', async () => {
    const first = ok(await runCli(['get', 'run', name], { root }));
    await wait(1000);
    const second = ok(await runCli(['get', 'run', name], { root }));
    assert.doesNotMatch(first, SPINNER, first);
    assert.match(first, /^last seen\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/m);
    assert.match(first, /^actions\s+.*\d+ orphaned/m);
    assert.match(first, /^\? main a0/m, first);
    assert.match(first, /^└─ \? crash_counted\.item_map .*\d+ orphaned/m, first);
    const duration = /^duration\s+(\S+)/m.exec(first)?.[1] ?? '';
    assert.ok(
      parseDuration(duration) <= livedMs,
      `duration ${duration} is longer than the driver lived (${livedMs} ms)`,
    );
    assert.equal(second, first, 'the output changed as time passed');

    const detail = parseJson<{ lastSeenAt: number; run: { heartbeatAt: number; phase: string } }>(
      await runCli(['get', 'run', name, '-o', 'json'], { root }),
    );
    assert.equal(detail.run.phase, 'orphaned');
    assert.equal(detail.lastSeenAt, detail.run.heartbeatAt);
  });
});
