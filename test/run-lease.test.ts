/**
 * One run, one driver: a run is driven under a heartbeat lease, and taking it over is an atomic claim. Proven
 * with real processes: a driver SIGKILLed (its run is recovered by two racing `flyte rerun --recover`, and by two
 * racing in-process recoveries as the UI's Recover button makes them), and a driver SIGSTOPped (its pid stays
 * alive, as a reused pid would: only the lease tells), aborted from the CLI, then woken up to find its writes
 * refused.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as flyte from 'flyte-ts';
import { openStoreAsync } from '../src/store/index.js';
import { chooseSqliteDriver, openConnection } from '../src/store/sqlite/driver.js';
import { ensureBuilt, runCli } from './support/cli.js';
import { spawnRun, type FixtureRun } from './support/crash.js';
import { initOptions, rootEnv, storeOfRoot } from './support/test-store.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-counted.ts', import.meta.url));
const N = 400;
const CONCURRENCY = 10;
/** A short lease, so that a stopped driver's run is orphaned within the test. */
const LEASE_MS = 1_000;

const roots: string[] = [];
before(() => ensureBuilt());
after(async () => {
  await flyte.shutdown();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function newRoot(): { root: string; counts: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'flyte-lease-'));
  roots.push(root);
  return { root, counts: path.join(root, 'counts.txt') };
}

/** Executions per item, and of the root body (`root`), from the counter file. */
function executions(file: string): { items: Map<number, number>; roots: number } {
  const items = new Map<number, number>();
  let roots = 0;
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === 'root') roots++;
      else if (line !== '') items.set(Number(line), (items.get(Number(line)) ?? 0) + 1);
    }
  }
  return { items, roots };
}

/**
 * SIGSTOPs `child` at a moment when it holds no write lock on its SQLite store. A process frozen inside a write
 * transaction blocks every writer of that SQLite file until it runs again (SQLite has one writer at a time and no
 * timeout for a stuck one; Postgres ends such a session after `idle_in_transaction_session_timeout`), and then
 * nobody can record the run as orphaned: that is SQLite's limit, not the lease's, so the stop is retried until it
 * lands outside a transaction (a commit lasts well under a millisecond; most stops land outside one).
 */
function stopOutsideWriteTransaction(child: FixtureRun['child'], root: string): void {
  const postgres = storeOfRoot(root) !== undefined;
  for (let tries = 0; ; tries++) {
    child.kill('SIGSTOP');
    if (postgres) return; // the server ends a stuck transaction (idle_in_transaction_session_timeout)
    const db = openConnection(path.join(root, 'flyte.db'), chooseSqliteDriver(), { busyTimeoutMs: 0 });
    try {
      db.exec('BEGIN IMMEDIATE; ROLLBACK');
      return;
    } catch (err) {
      if (tries >= 50 || !/locked|busy/i.test(String(err))) throw err;
      child.kill('SIGCONT');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5 + tries);
    } finally {
      db.close();
    }
  }
}

/** Starts the counted fan-out (`slow` items: 20 ms each) in a child process; resolves once `atLeast` items ran. */
function startDriver(root: string, counts: string, atLeast: number): Promise<FixtureRun> {
  return spawnRun(
    FIXTURE,
    [String(N), String(CONCURRENCY), 'slow'],
    { ...rootEnv(root), FLYTE_COUNTS: counts, FLYTE_LEASE_MS: String(LEASE_MS) },
    () => executions(counts).items.size >= atLeast,
  );
}

/**
 * Items that ran more than once. One driver at a time runs each unrecorded item once: only the items in flight at
 * the kill (at most the concurrency) may have run twice. Two drivers at once would run every unrecorded item twice.
 */
function ranTwice(after: Map<number, number>): number {
  return [...after.values()].filter((n) => n > 1).length;
}

describe('one run, one driver', () => {
  it('two `flyte rerun NAME --recover` started together: one drives, the other is refused', async () => {
    const { root, counts } = newRoot();
    const { child, name, exited } = await startDriver(root, counts, 30);
    child.kill('SIGKILL');
    await exited;
    const before = executions(counts);
    const env = { FLYTE_COUNTS: counts, FLYTE_LEASE_MS: String(LEASE_MS) };
    const [a, b] = await Promise.all([
      runCli(['rerun', name, '--recover', '--json'], { root, env, timeoutMs: 120_000 }),
      runCli(['rerun', name, '--recover', '--json'], { root, env, timeoutMs: 120_000 }),
    ]);
    const codes = [a.code, b.code].sort();
    const after = executions(counts);
    // Either both ran in turn (the second found a finished run: nothing ran again), or one was refused.
    const refused = [a, b].filter((r) => r.code !== 0);
    assert.ok(codes[0] === 0, `one recovery succeeded:\n${a.stderr}\n${b.stderr}`);
    for (const r of refused) assert.match(r.stderr, /taken over by another process|is alive/);
    assert.equal(
      after.roots - before.roots,
      1 + (refused.length === 0 ? 1 : 0),
      'the root body ran once per recovery that drove',
    );
    assert.ok(
      ranTwice(after.items) <= CONCURRENCY,
      `${ranTwice(after.items)} items ran twice: two drivers ran it at once`,
    );
    for (let i = 0; i < N; i++) assert.ok((after.items.get(i) ?? 0) >= 1, `item ${i} ran`);
  });

  it('two recoveries in one process (a double click on Recover): exactly one starts', async () => {
    const { root, counts } = newRoot();
    const { child, name, exited } = await startDriver(root, counts, 30);
    child.kill('SIGKILL');
    await exited;
    const before = executions(counts);
    flyte.init(initOptions(root));
    process.env.FLYTE_COUNTS = counts;
    const tries = await Promise.allSettled([
      flyte.rerun(name, { recover: true }),
      flyte.rerun(name, { recover: true }),
    ]);
    const started = tries.filter((t) => t.status === 'fulfilled');
    const refused = tries.filter((t): t is PromiseRejectedResult => t.status === 'rejected');
    assert.equal(started.length, 1, 'exactly one recovery drives the run');
    assert.ok(refused[0]?.reason instanceof RangeError);
    assert.match(String(refused[0]?.reason), /taken over by another process|still running in this process/);
    const run = (started[0] as PromiseFulfilledResult<flyte.Run>).value;
    assert.equal(await run.outputs(), N * (N - 1));
    const after = executions(counts);
    assert.equal(after.roots - before.roots, 1, 'the root body ran once');
    assert.ok(ranTwice(after.items) <= CONCURRENCY, `${ranTwice(after.items)} items ran twice`);
    await flyte.shutdown();
  });

  it('a stopped driver (its pid alive) is orphaned when its lease expires; abort records it; woken, it changes nothing', async () => {
    const { root, counts } = newRoot();
    const { child, name, exited } = await startDriver(root, counts, 30);
    stopOutsideWriteTransaction(child, root);
    try {
      // While the lease holds the run is running; once it expired, readers see it orphaned.
      const deadline = Date.now() + 20_000;
      let phase = '';
      while (Date.now() < deadline) {
        const r = await runCli(['get', 'run', name, '-o', 'json'], { root });
        assert.equal(r.code, 0, `flyte get run failed while the driver is stopped: ${r.stderr}`);
        phase = (JSON.parse(r.stdout) as { run: { phase: string } }).run.phase;
        if (phase === 'orphaned') break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(phase, 'orphaned', 'a run whose driver stopped renewing its lease is orphaned');
      const abort = await runCli(['abort', 'run', name, '--reason', 'stuck'], { root });
      assert.equal(abort.code, 0, abort.stderr);
      assert.match(abort.stdout, /aborted/);
    } finally {
      child.kill('SIGCONT');
    }
    await exited;
    // The woken driver lost its lease: its pending writes were refused and it stopped driving.
    const store = await openStoreAsync(storeOfRoot(root), { root });
    try {
      const run = await store.getRun(name);
      assert.equal(run?.phase, 'aborted');
      assert.match(run?.error?.message ?? '', /stuck/);
      const actions = await store.listActions(name);
      assert.equal(actions.filter((a) => a.phase === 'running' || a.phase === 'queued').length, 0);
      assert.equal(actions.find((a) => a.name === 'a0')?.phase, 'aborted');
    } finally {
      await store.close();
    }
  });

  it('`flyte abort run` on a run orphaned by SIGKILL records it as aborted', async () => {
    const { root, counts } = newRoot();
    const { child, name, exited } = await startDriver(root, counts, 20);
    child.kill('SIGKILL');
    await exited;
    const r = await runCli(['abort', 'run', name], { root });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`run ${name} aborted`));
    const got = await runCli(['get', 'run', name, '-o', 'json'], { root });
    assert.equal((JSON.parse(got.stdout) as { run: { phase: string } }).run.phase, 'aborted');
  });
});
