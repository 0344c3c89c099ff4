/**
 * Local crash recovery, for real: a child process running a 2 000-item fan-out is killed with SIGKILL midway;
 * `flyte.rerun(name, { recover: true })` finishes the run, and neither the store nor the side effects show a
 * child that had succeeded running again.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as flyte from 'flyte-ts';
import { BIN, ensureBuilt } from './support/cli.js';
import { runAndKill } from './support/crash.js';
import { initOptions, rootEnv } from './support/test-store.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-fanout.ts', import.meta.url));
const N = 2000;

function sideEffects(file: string): Map<number, number> {
  const counts = new Map<number, number>();
  if (!existsSync(file)) return counts;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  }
  return counts;
}

/** Runs the fixture and SIGKILLs it once `killAfter` items have run; resolves with the run's name. */
function runAndKillAfter(root: string, effects: string, killAfter: number): Promise<string> {
  return runAndKill(
    FIXTURE,
    [String(N)],
    { ...rootEnv(root), FLYTE_SIDE_EFFECTS: effects },
    () => sideEffects(effects).size >= killAfter,
  );
}

describe('local crash recovery', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'flyte-recovery-'));
  });
  after(async () => {
    await flyte.shutdown();
    rmSync(root, { recursive: true, force: true });
  });

  it('finishes a SIGKILLed 2 000-item fan-out without re-running succeeded children', async () => {
    const effects = path.join(root, 'effects.txt');
    const name = await runAndKillAfter(root, effects, 600);
    const before = sideEffects(effects);
    assert.ok(before.size >= 600 && before.size < N, `killed midway: ${before.size} items had run`);

    flyte.init(initOptions(root));
    const crashed = await flyte.getRun(name);
    assert.equal(crashed.phase, 'orphaned', 'a run whose process died is marked orphaned, not running');

    const recorded = await crashed.actions();
    const items = recorded.filter((a) => a.taskName === 'crash_fanout.item');
    const succeededBefore = new Map<string, number>();
    for (const a of items.filter((x) => x.phase === 'succeeded')) {
      const [i] = (await crashed.action(a.name).inputs()) as [number];
      succeededBefore.set(a.name, i);
    }
    assert.ok(succeededBefore.size > 0, 'some children had succeeded and were recorded before the kill');
    const startedBefore = (recorded.find((a) => a.taskName === 'durable:now') ?? assert.fail('durable.now recorded'))
      .startedAt;

    process.env.FLYTE_SIDE_EFFECTS = effects; // the recovered items run in this process
    const recovered = await flyte.rerun(name, { recover: true });
    assert.equal(recovered.name, name, 'recovery continues the same run');
    const out = (await recovered.outputs()) as { sum: number; started: number };
    assert.equal(out.sum, (3 * (N * (N - 1))) / 2);
    assert.ok(startedBefore !== null && Math.abs(out.started - startedBefore) < 5, 'durable.now replayed');
    assert.equal(recovered.phase, 'succeeded');

    // From the store: every item succeeded once, and the ones that had succeeded kept their records.
    const after = await recovered.actions();
    const afterItems = after.filter((a) => a.taskName === 'crash_fanout.item');
    assert.equal(afterItems.length, N);
    assert.ok(afterItems.every((a) => a.phase === 'succeeded'));
    const byName = new Map(after.map((a) => [a.name, a]));
    for (const [actionName] of succeededBefore) {
      const now = byName.get(actionName);
      const was = items.find((a) => a.name === actionName);
      assert.equal(now?.endedAt, was?.endedAt, `${actionName} was not executed again`);
    }
    // From the side effects: no child that had succeeded ran a second time; every item ran at least once.
    const counts = sideEffects(effects);
    for (const [, i] of succeededBefore) assert.equal(counts.get(i), 1, `item ${i} ran once`);
    for (let i = 0; i < N; i++) assert.ok((counts.get(i) ?? 0) >= 1, `item ${i} ran`);
  });

  it('the CLI finishes a SIGKILLed run with `flyte rerun NAME --recover`', async () => {
    ensureBuilt();
    const cliRoot = path.join(root, 'cli');
    const effects = path.join(root, 'cli-effects.txt');
    const name = await runAndKillAfter(cliRoot, effects, 500);
    const before = sideEffects(effects);
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, '--root', cliRoot, 'rerun', name, '--recover'], {
        env: { ...process.env, ...rootEnv(cliRoot), FLYTE_SIDE_EFFECTS: effects, FORCE_COLOR: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(r.code, 0, `rerun --recover exits 0:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`"sum":${(3 * (N * (N - 1))) / 2}`));
    const counts = sideEffects(effects);
    let again = 0;
    for (const [i, n] of before) if ((counts.get(i) ?? 0) > n) again++;
    // A child's outcome reaches the map only once it is committed: only the items in flight at the kill (at most
    // the map's concurrency, 20) may run again.
    assert.ok(again <= 20, `${again} of ${before.size} items that had run before the kill ran again`);
    for (let i = 0; i < N; i++) assert.ok((counts.get(i) ?? 0) >= 1, `item ${i} ran`);
  });
});
