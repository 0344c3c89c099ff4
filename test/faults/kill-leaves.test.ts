/**
 * The fault suite: worker processes running the leaves of a 5 000-item `flyte.map` are SIGKILLed mid-run. Their
 * jobs come back once their locks expire, and other workers run them again. Measured by the execution log the
 * leaves write (test/fixtures/faults/executions.ts) and by the run's records:
 * - the output is right;
 * - 0 lost actions: every action is recorded as ended, and every one succeeded;
 * - 0 duplicated completions and 0 re-executions: a leaf runs again only when every earlier start of it was on a
 *   killed worker, and no leaf recorded as succeeded when a kill happened starts again after it.
 * The parent runs on a worker of its own that is never killed (the kills of waiting parents are takeover.test.ts).
 * Real Redis, real Postgres, real worker processes; own schema and key prefix.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import * as flyte from '../../src/index.js';
import { REPO, tempDir } from '../support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from '../support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from '../support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from '../support/workers.js';
import { auditRun, executionLogPath, keyOf, readExecutions, untilLogged, type Execution } from '../support/faults.js';
import type * as FanOut from '../fixtures/faults/fanout.js';

const FANOUT = join(REPO, 'test', 'fixtures', 'faults', 'fanout.ts');
const N = 5_000;
const LEAF_MS = 20;
const LOCK_MS = 2_000;
const SUM = ((N - 1) * N * (2 * N - 1)) / 6;

const skip = (await postgresSkip()) || (await redisSkip());

/** One kill: which worker, when, how far the log was, and what the store held as succeeded right after it. */
interface Kill {
  readonly pid: number;
  readonly at: number;
  /** The log's length once `succeeded` was read: a later start of one of those is a re-execution. */
  readonly logLength: number;
  readonly succeeded: ReadonlySet<string>;
}

/** What {@link verify} measured. */
interface Measured {
  /** Leaves of this run that ran more than once (each time after a kill of the worker that ran it before). */
  readonly again: number;
  /**
   * Per kill, the ms from the SIGKILL to the first recorded start elsewhere of a leaf the killed worker had started
   * and not recorded as succeeded (the takeover time: the lock's expiry, the stalled check, the new claim); `NaN`
   * when it left nothing to take over.
   */
  readonly takeoverMs: readonly number[];
}

/** Takeover times as the note reports them. */
function shownMs(ms: readonly number[]): string {
  return ms.map((m) => (Number.isNaN(m) ? 'none (nothing left unfinished)' : `${m} ms`)).join(', ');
}

/** The checks every case makes once its run ended (see the module comment), and what they measured. */
async function verify(run: flyte.Run, log: string, kills: readonly Kill[]): Promise<Measured> {
  assert.equal(await run.outputs(), SUM, 'the sum of squares is right');
  const audit = await auditRun(run);
  const leaves = audit.actions.filter((a) => a.taskName === 'faults_leaves.square');
  assert.equal(leaves.length, N, 'every item has its action');
  assert.deepEqual(audit.phases, { succeeded: N + 1 }, 'every action succeeded');
  const executions = readExecutions(log);
  const killed = new Set(kills.map((k) => k.pid));
  const starts = new Map<string, Execution[]>();
  const ends = new Map<string, Execution[]>();
  for (const e of executions) {
    const into = e.event === 'start' ? starts : ends;
    into.set(e.key, [...(into.get(e.key) ?? []), e]);
  }
  for (const leaf of leaves) {
    const key = keyOf(leaf);
    const ran = starts.get(key) ?? [];
    assert.ok(ran.length >= 1, `${key} ran`);
    // Every start but the last was on a killed worker: a live worker never runs a leaf twice.
    for (const earlier of ran.slice(0, -1)) {
      assert.ok(
        killed.has(earlier.pid),
        `${key} ran again, though its earlier start was on live worker ${earlier.pid}`,
      );
    }
    const completed = (ends.get(key) ?? []).filter((e) => !killed.has(e.pid));
    assert.ok(completed.length <= 1, `${key} completed ${completed.length} times on live workers`);
  }
  for (const kill of kills) {
    const later = executions.slice(kill.logLength).filter((e) => e.event === 'start' && kill.succeeded.has(e.key));
    assert.deepEqual(later, [], 'no leaf recorded as succeeded at a kill starts again after it');
  }
  const takeoverMs = kills.map((kill) => {
    const open = new Set(executions.filter((e) => e.pid === kill.pid && e.event === 'start').map((e) => e.key));
    for (const e of executions) if (e.pid === kill.pid && e.event === 'end') open.delete(e.key);
    const retaken = executions.filter(
      (e) => e.event === 'start' && e.pid !== kill.pid && open.has(e.key) && e.at > kill.at,
    );
    // A body that started on the killed worker and never logged its end there never returned there: it was not
    // recorded as ended by that worker, so it ran again elsewhere.
    assert.equal(
      new Set(retaken.map((e) => e.key)).size,
      open.size,
      'each leaf the killed worker left unfinished ran elsewhere',
    );
    // The takeover time: from the kill to the first start elsewhere of any leaf the killed worker had started and
    // that was not recorded as succeeded at the kill (its body may have logged its end, its record not committed).
    const started = executions.filter((e) => e.pid === kill.pid && e.event === 'start').map((e) => e.key);
    const unfinished = new Set(started.filter((key) => !kill.succeeded.has(key)));
    const again = executions.filter(
      (e) => e.event === 'start' && e.pid !== kill.pid && unfinished.has(e.key) && e.at > kill.at,
    );
    return again.length === 0 ? Number.NaN : Math.min(...again.map((e) => e.at)) - kill.at;
  });
  // This run's leaves only: the log holds the executions of every case of the suite.
  return { again: leaves.filter((leaf) => (starts.get(keyOf(leaf))?.length ?? 0) > 1).length, takeoverMs };
}

describe('SIGKILL of workers running the leaves of a 5 000-item map', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_faults_leaves_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  const log = executionLogPath();
  /** Index 0 runs the parents and is never killed; 1–3 run the leaves. */
  const workers: WorkerProcess[] = [];
  const worker = (env: string, concurrency: number): Promise<WorkerProcess> =>
    startWorker({
      modules: [FANOUT],
      store,
      engine,
      concurrency,
      lockMs: LOCK_MS,
      extraArgs: ['--env', env],
      env: { FLYTE_FAULT_LOG: log },
    });
  const leafWorker = (): Promise<WorkerProcess> => worker('faults_leaves', 8);

  before(async () => {
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    workers.push(...(await Promise.all([worker('faults_parents', 2), leafWorker(), leafWorker(), leafWorker()])));
  });

  after(async () => {
    const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    const drained = await stopWorkers(alive);
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
    drained();
  });

  /**
   * Once the log holds `starts` starts written since line `from`, and a leaf worker is inside leaf bodies:
   * SIGKILLs the leaf worker inside the most, then reads which actions the store holds as succeeded.
   */
  async function killAt(run: flyte.Run, starts: number, from: number): Promise<Kill> {
    let victim = 0;
    await untilLogged(
      log,
      (es) => {
        const recent = es.slice(from);
        if (recent.filter((e) => e.event === 'start').length < starts) return false;
        const inside = new Map<number, Set<string>>();
        for (const e of recent) {
          const keys = inside.get(e.pid) ?? new Set<string>();
          if (e.event === 'start') keys.add(e.key);
          else keys.delete(e.key);
          inside.set(e.pid, keys);
        }
        // A worker killed before (the first of two kills) keeps, frozen in the log, the leaves it died inside: never
        // pick it again.
        const alive = new Set(
          workers
            .slice(1)
            .filter((w) => w.child.exitCode === null && w.child.signalCode === null)
            .map((w) => w.pid),
        );
        const busiest = [...inside].filter(([pid]) => alive.has(pid)).sort((a, b) => b[1].size - a[1].size)[0];
        if (busiest === undefined || busiest[1].size === 0) return false;
        victim = busiest[0];
        return true;
      },
      120_000,
    );
    const index = workers.findIndex((w) => w.pid === victim);
    await workers[index]!.stop('SIGKILL');
    const at = Date.now();
    const succeeded = new Set((await run.actions()).filter((a) => a.phase === 'succeeded').map(keyOf));
    return { pid: victim, at, logLength: readExecutions(log).length, succeeded };
  }

  for (const [point, fraction] of [
    ['early', 0.1],
    ['midway', 0.5],
    // Late is 80 %: at 90 % the last 500 leaves (about 160 ms at 64 in flight) could end before the kill under load,
    // leaving the killed worker nothing to hand over (seen once: 0 leaves ran again).
    ['late', 0.8],
  ] as const) {
    it(`one leaf worker killed ${point} (${fraction * 100} % of the leaves started), then replaced`, async () => {
      const fan = (await import(FANOUT)) as typeof FanOut;
      const from = readExecutions(log).length;
      const run = await flyte.run(fan.sumOfSquares, N, LEAF_MS, 64);
      const kill = await killAt(run, fraction * N, from);
      const index = workers.findIndex((w) => w.pid === kill.pid);
      const [record, replacement] = await Promise.all([run.wait(), leafWorker()]);
      workers[index] = replacement;
      assert.equal(record.phase, 'succeeded', JSON.stringify(record.error));
      const measured = await verify(run, log, [kill]);
      console.log(`# ${point}: ${measured.again} leaves ran again; takeover ${shownMs(measured.takeoverMs)}`);
    });
  }

  it('two of the three leaf workers killed one after the other, not replaced: the last one ends the map', async () => {
    const fan = (await import(FANOUT)) as typeof FanOut;
    const from = readExecutions(log).length;
    const run = await flyte.run(fan.sumOfSquares, N, LEAF_MS, 64);
    const first = await killAt(run, 0.2 * N, from);
    const second = await killAt(run, 0.5 * N, from);
    const record = await run.wait();
    assert.equal(record.phase, 'succeeded', JSON.stringify(record.error));
    const measured = await verify(run, log, [first, second]);
    console.log(`# two of three: ${measured.again} leaves ran again; takeovers ${shownMs(measured.takeoverMs)}`);
  });
});
