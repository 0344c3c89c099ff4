/**
 * Fault: a job vanishes from Redis (its key deleted and its id taken out of the wait list, as a lost job would
 * be). Expected: the sweeper of some worker enqueues it again, the run completes right, and every item ran once.
 * Also: the sweepers of two workers never sweep at the same time (proved from the sweeps they log, numbered in one
 * Postgres sequence while the lock is held), and a sweep leaves alone a parent that waits and a leaf that runs.
 * Counted afterwards: the execution log (0 re-executions), the run's records (0 lost actions), the sweeps log.
 * Real Redis, real Postgres, real worker processes; own schema and key prefix.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as flyte from '../../src/index.js';
import { jobId } from '../../src/engine/redis-engine.js';
import { queueName } from '../../src/engine/engine.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { SweepRecord } from '../../src/store/sweep-store.js';
import { REPO, tempDir } from '../support/cli.js';
import { auditRun, executionLogPath, readExecutions, repeated, untilLogged } from '../support/faults.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from '../support/postgres.js';
import { deletePrefix, rawRedis, redisSkip, urlWithPrefix } from '../support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from '../support/workers.js';
import type * as SweepTasks from '../fixtures/faults/sweeper.js';

const TASKS = join(REPO, 'test', 'fixtures', 'faults', 'sweeper.ts');
const ITEMS_QUEUE = queueName('faults_sweep_items');
/** Short, so that the cases take seconds; the grace of a job is the same. */
const SWEEP_MS = 100;

const skip = (await postgresSkip()) || (await redisSkip());

/** Polls `read` every 50 ms until `done` holds of its value, or fails after `timeoutMs` saying what it saw. */
async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`${what}: not reached in ${timeoutMs} ms; last seen ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The pairs of logged sweeps that overlapped: one began between the other's two sequence numbers. */
function overlapping(sweeps: readonly SweepRecord[]): string[] {
  const sorted = [...sweeps].sort((a, b) => a.beganSeq - b.beganSeq);
  const found: string[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    if (next.beganSeq < prev.endedSeq) {
      found.push(
        `${prev.owner} [${prev.beganSeq}, ${prev.endedSeq}] and ${next.owner} [${next.beganSeq}, ${next.endedSeq}]`,
      );
    }
  }
  return found;
}

describe('fault: a job vanishes from Redis; the sweeper brings it back', { skip, timeout: 180_000 }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_faults_sweep_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  const log = executionLogPath();
  const workers: WorkerProcess[] = [];
  let sweeps: PostgresStore;
  const worker = (env: string): Promise<WorkerProcess> =>
    startWorker({
      modules: [TASKS],
      store,
      engine,
      concurrency: 4,
      env: { FLYTE_FAULT_LOG: log },
      extraArgs: ['--env', env, '--sweep-ms', String(SWEEP_MS)],
    });

  before(async () => {
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    sweeps = await PostgresStore.open(store);
    // Only the parents' queue is served at first: the items stay queued until the test starts their worker.
    workers.push(await worker('faults_sweep_parents'));
  });

  after(async () => {
    const drained = await stopWorkers(workers);
    await sweeps.close();
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
    drained();
  });

  it('re-enqueues queued jobs deleted by hand; the run completes and each item runs once', async () => {
    const tasks = (await import(TASKS)) as typeof SweepTasks;
    const n = 6;
    const run = await flyte.run(tasks.fanOut, 'lost', n);
    const queued = await until(
      `the ${n} items recorded queued`,
      async () => (await run.actions()).filter((a) => a.taskName === 'faults_sweep_items.item'),
      (items) => items.length === n && items.every((a) => a.phase === 'queued'),
    );
    const redis = rawRedis();
    const lost = queued.slice(0, 2).map((a) => a.name);
    try {
      for (const name of lost) {
        const id = jobId(run.name, name);
        const key = `${prefix}:${ITEMS_QUEUE}:${id}`;
        // Recorded (durable) before it is enqueued: the job may be a moment behind the record.
        await until(
          `the job of ${name} in Redis before it is deleted`,
          () => redis.exists(key),
          (exists) => exists === 1,
        );
        // Both at once (MULTI), as a lost job would be: a sweep in between could enqueue it again.
        const [deleted, unlisted] =
          (await redis.multi().del(key).lrem(`${prefix}:${ITEMS_QUEUE}:wait`, 0, id).exec()) ?? [];
        assert.equal(deleted?.[1], 1, `the job of ${name} was deleted`);
        assert.equal(unlisted?.[1], 1, `${name} was in the wait list`);
      }
    } finally {
      redis.disconnect();
    }
    workers.push(await worker('faults_sweep_items'));
    assert.deepEqual(
      await run.outputs(),
      Array.from({ length: n }, (_, i) => `LOST-${i}`),
    );
    const audit = await auditRun(run);
    assert.equal(audit.phases['succeeded'], n + 1, JSON.stringify(audit.phases));
    const executions = readExecutions(log);
    assert.deepEqual(repeated(executions, 'start'), [], 'no item or parent ran twice');
    assert.equal(executions.filter((e) => e.event === 'end').length, n + 1, 'every body ended once');
    const requeued = new Set((await sweeps.listSweeps()).flatMap((s) => s.requeued));
    for (const name of lost) assert.ok(requeued.has(`${run.name}/${name}`), `the sweeper re-enqueued ${name}`);
  });

  it('two workers sweep one at a time, and leave a waiting parent and a running leaf alone', async () => {
    const tasks = (await import(TASKS)) as typeof SweepTasks;
    const gate = join(tempDir('flyte-faults-gate-'), 'open');
    const run = await flyte.run(tasks.waitsOnGated, 'held', gate);
    await untilLogged(log, (executions) => executions.some((e) => e.event === 'start' && e.key === 'held-leaf'));
    const since = (await sweeps.listSweeps(1))[0]?.beganSeq ?? 0;
    // Sweeps that saw both (the parent waiting, the leaf running), by both workers.
    const seen = await until(
      'sweeps of both workers that saw the waiting parent and the running leaf',
      async () => (await sweeps.listSweeps()).filter((s) => s.beganSeq > since && s.candidates >= 2),
      (list) => list.length >= 10 && new Set(list.map((s) => s.owner)).size >= 2,
    );
    writeFileSync(gate, '');
    assert.equal(await run.outputs(), 'held:held-leaf');
    const all = await sweeps.listSweeps();
    assert.deepEqual(overlapping(all), [], 'no two sweeps overlapped');
    assert.ok(new Set(all.map((s) => s.owner)).size >= 2, 'both workers swept');
    const requeued = all.filter((s) => s.beganSeq > since).flatMap((s) => s.requeued);
    assert.deepEqual(requeued, [], `the ${seen.length} sweeps enqueued nothing again`);
    await auditRun(run);
    const executions = readExecutions(log);
    assert.deepEqual(repeated(executions, 'start'), [], 'the parent and the leaf ran once');
  });

  it('leaves alone a child that waits for a slot of its run (maxActionConcurrency) before its job exists', async () => {
    const tasks = (await import(TASKS)) as typeof SweepTasks;
    const gate = join(tempDir('flyte-faults-gate-'), 'open');
    const run = await flyte.withRunContext({ maxActionConcurrency: 1 }).run(tasks.gatedPair, 'slot', gate);
    const started = await untilLogged(log, (executions) =>
      executions.some((e) => e.event === 'start' && e.key.startsWith('slot-')),
    );
    const running = started.find((e) => e.event === 'start' && e.key.startsWith('slot-'))?.key;
    const since = (await sweeps.listSweeps(1))[0]?.beganSeq ?? 0;
    // Ten sweeps (more than the grace) while one leaf holds the run's only slot and the other waits for it.
    await until(
      'ten sweeps while the second leaf waits for the slot',
      async () => (await sweeps.listSweeps()).filter((s) => s.beganSeq > since),
      (list) => list.length >= 10,
    );
    const waiting = (await run.actions()).filter(
      (a) => a.taskName === 'faults_sweep_items.gated' && a.phase === 'queued',
    );
    assert.equal(waiting.length, 1, 'the second leaf is still queued, waiting for the slot (no worker claimed it)');
    const requeued = (await sweeps.listSweeps()).filter((s) => s.beganSeq > since).flatMap((s) => s.requeued);
    assert.deepEqual(requeued, [], 'the sweeps enqueued nothing');
    writeFileSync(gate, '');
    assert.deepEqual((await run.outputs()).sort(), ['slot-0', 'slot-1']);
    await auditRun(run);
    assert.deepEqual(repeated(readExecutions(log), 'start'), [], `each leaf ran once (${running} first)`);
  });
});
