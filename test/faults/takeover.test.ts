/**
 * The fault suite: takeover. Each case states what it kills (or pauses, or delivers again), when, and what it
 * counts afterwards, from the execution log the tasks write (test/fixtures/faults/executions.ts) and from the
 * records: the right output, 0 lost actions (`auditRun`), 0 duplicated completions, and 0 re-executions of
 * children recorded as succeeded. Real `flyte worker` processes, real Redis and Postgres on loopback.
 *
 * The takeover times (SIGKILL or SIGSTOP to the new claim's body start, from the test's clock and the log) are
 * printed as `takeover: CASE MS ms` lines, for the fault suite's figures.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import * as flyte from '../../src/index.js';
import { jobId } from '../../src/engine/redis-engine.js';
import { REPO, tempDir } from '../support/cli.js';
import {
  auditRun,
  countsOf,
  executionLogPath,
  readExecutions,
  repeated,
  untilLogged,
  type Execution,
} from '../support/faults.js';
import { dropSchema, freshSchema, peekPostgres, postgresSkip, urlWithSchema } from '../support/postgres.js';
import { REDIS_TEST_URL, deletePrefix, redisSkip, urlWithPrefix } from '../support/redis.js';
import { startWorker, type StartWorkerOptions, type WorkerProcess } from '../support/workers.js';
import type * as Tasks from '../fixtures/faults/takeover.js';

const FIXTURE = join(REPO, 'test', 'fixtures', 'faults', 'takeover.ts');
const LOCK_MS = 2_000;

const skip = (await postgresSkip()) || (await redisSkip());

describe('fault suite: takeover of a lost worker', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_faults_takeover_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  let tasks: typeof Tasks;
  /** Every worker a case started: each is stopped (SIGKILL if it is still there) after the case. */
  let workers: WorkerProcess[] = [];

  const worker = (log: string, env: 'faults_parent' | 'faults_leaf', options: Partial<StartWorkerOptions> = {}) =>
    startWorker({
      modules: [FIXTURE],
      store,
      engine,
      concurrency: 1,
      lockMs: LOCK_MS,
      ...options,
      extraArgs: ['--env', env, ...(options.extraArgs ?? [])],
      env: { FLYTE_FAULT_LOG: log, ...options.env },
    }).then((w) => {
      workers.push(w);
      return w;
    });

  /** Stops the workers of a case: a graceful drain first (each must exit 0), then SIGKILL for any left. */
  async function stopAll(): Promise<void> {
    const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    const codes = await Promise.all(alive.map((w) => w.stop('SIGTERM')));
    workers = [];
    assert.deepEqual(
      codes,
      alive.map(() => 0),
      alive.map((w) => w.output()).join('\n'),
    );
  }

  before(async () => {
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    tasks = (await import(FIXTURE)) as typeof Tasks;
  });

  after(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
  });

  /** The `start` lines of `key`, in the order logged. */
  const startsOf = (executions: readonly Execution[], key: string): Execution[] =>
    executions.filter((e) => e.event === 'start' && e.key === key);

  /**
   * The common checks after a parent's takeover: the leaves each ran once (none run again, finished or not), no
   * completion twice, none lost; the parent ran twice, on two workers, the second after the kill.
   */
  async function checkParentTakeover(
    name: string,
    run: flyte.Run,
    log: string,
    victim: number,
    killedAt: number,
    steps: number,
  ) {
    const executions = readExecutions(log);
    const leafStarts = [...countsOf(executions, 'start')].filter(([key]) => /^(leaf|step)-/.test(key));
    assert.equal(leafStarts.length, 6 + steps, `every leaf (and step) ran: ${JSON.stringify(leafStarts)}`);
    assert.deepEqual(
      leafStarts.filter(([, n]) => n > 1),
      [],
      'no leaf or traced step ran twice: finished ones were collected, running and queued ones re-attached to',
    );
    assert.deepEqual(repeated(executions, 'end'), [], 'no body completed twice');
    const parents = startsOf(executions, 'parent');
    assert.equal(parents.length, 2, 'the parent ran on the killed worker, then once on its taker');
    assert.equal(parents[0]?.pid, victim);
    assert.notEqual(parents[1]?.pid, victim);
    const audit = await auditRun(run);
    assert.equal(audit.actions.length, 7 + steps, 'the parent, its 6 leaves and its steps, none recorded twice');
    assert.deepEqual(audit.phases, { succeeded: 7 + steps });
    const rows = await peekPostgres<{ name: string; takeovers: number; lost_owners: string | null }>(
      `SELECT name, takeovers, lost_owners FROM "${schema}".actions WHERE run_name = $1 ORDER BY name`,
      [run.name],
    );
    const root = rows.find((r) => r.name === 'a0');
    assert.equal(root?.takeovers, 1, 'the store counted one takeover of the parent');
    assert.match(root?.lost_owners ?? '', new RegExp(`:${victim}$`), 'naming the killed worker');
    assert.ok(
      rows.filter((r) => r.name !== 'a0').every((r) => r.takeovers === 0),
      'no leaf was taken over',
    );
    console.log(`takeover: ${name} ${(parents[1]?.at ?? 0) - killedAt} ms (SIGKILL to the new body's start)`);
  }

  /**
   * Six leaves on two leaf workers of concurrency 1: 0 and 1 end fast; 2 ends while no parent is alive (its end
   * published to no one); 3 is still running at the takeover; 4 and 5 are queued (or, in the sync map, not yet
   * submitted) then.
   */
  const ITEMS: Tasks.Item[] = [
    { i: 0, ms: 100 },
    { i: 1, ms: 100 },
    { i: 2, ms: 1_000 },
    { i: 3, ms: 6_000 },
    { i: 4, ms: 300 },
    { i: 5, ms: 300 },
  ];

  /** Starts two parent workers and two leaf workers; submits `start()`; kills the parent's worker as set up. */
  async function killParentWorker(log: string, start: () => Promise<flyte.Run>) {
    const parentWorkers = await Promise.all([worker(log, 'faults_parent'), worker(log, 'faults_parent')]);
    await Promise.all([worker(log, 'faults_leaf'), worker(log, 'faults_leaf')]);
    const run = await start();
    // Killed once leaves 0 and 1 ended and leaf 3 runs: 2 runs or ended, 4 and 5 wait.
    const seen = await untilLogged(log, (ex) => {
      const ends = countsOf(ex, 'end');
      return ends.has('leaf-0') && ends.has('leaf-1') && countsOf(ex, 'start').has('leaf-3');
    });
    const victim = startsOf(seen, 'parent')[0]?.pid;
    const holder = parentWorkers.find((w) => w.pid === victim);
    assert.ok(holder !== undefined, `the parent ran on a parent worker (${victim})`);
    const killedAt = Date.now();
    await holder.stop('SIGKILL');
    const ends = countsOf(readExecutions(log), 'end');
    assert.ok(!ends.has('leaf-3') && !ends.has('leaf-4'), 'leaves 3 and 4 had not ended at the kill');
    return { run, victim: victim as number, killedAt };
  }

  it('SIGKILL of the worker holding a waiting async parent: finished leaves are collected, the others re-attached', async () => {
    const log = executionLogPath();
    try {
      const { run, victim, killedAt } = await killParentWorker(log, () => flyte.run(tasks.asyncParent, ITEMS));
      assert.equal(await run.outputs(), 150);
      await checkParentTakeover('async-parent', run, log, victim, killedAt, 1);
    } finally {
      await stopAll();
    }
  });

  it('SIGKILL of the worker holding a sync parent in Array.from(flyte.map(...)): the same', async () => {
    const log = executionLogPath();
    try {
      const { run, victim, killedAt } = await killParentWorker(log, () => flyte.run(tasks.syncParent, ITEMS, 4));
      assert.deepEqual(await run.outputs(), [0, 10, 20, 30, 40, 50]);
      await checkParentTakeover('sync-parent', run, log, victim, killedAt, 0);
    } finally {
      await stopAll();
    }
  });

  it('SIGSTOP past the lock, takeover, SIGCONT: the paused worker ends its body but its writes are fenced', async () => {
    const log = executionLogPath();
    try {
      const paused = await worker(log, 'faults_leaf');
      const run = await flyte.run(tasks.napper, 1_500);
      await untilLogged(log, (ex) => startsOf(ex, 'napper').length === 1);
      paused.child.kill('SIGSTOP');
      const stoppedAt = Date.now();
      const taker = await worker(log, 'faults_leaf');
      assert.equal(await run.outputs(), taker.pid, 'the taker ran it to its end');
      const record = await run.wait();
      // Resumed with its body past its sleep: it logs its end at once, then writes it (the write the fence refuses).
      paused.child.kill('SIGCONT');
      await untilLogged(log, (ex) => ex.some((e) => e.event === 'end' && e.pid === paused.pid));
      // A drain commits whatever it still had to write before the worker exits 0.
      assert.equal(await paused.stop('SIGTERM'), 0, paused.output());
      const executions = readExecutions(log);
      assert.deepEqual(
        executions
          .filter((e) => e.key === 'napper')
          .map((e) => `${e.event} ${e.pid === paused.pid ? 'paused' : 'taker'}`),
        ['start paused', 'start taker', 'end taker', 'end paused'],
      );
      const after = await run.wait();
      assert.deepEqual(after, record, 'the run record did not change after the paused worker resumed');
      assert.equal(await run.outputs(), taker.pid, "the paused worker's output was not recorded");
      const audit = await auditRun(run);
      assert.equal(audit.actions.length, 1);
      assert.equal(audit.actions[0]?.phase, 'succeeded');
      const attempts = await run.action('a0').attempts();
      assert.ok(
        attempts.every((a) => a.phase !== 'succeeded' || !(a.worker ?? '').endsWith(`:${paused.pid}`)),
        `no succeeded attempt of the paused worker: ${JSON.stringify(attempts)}`,
      );
      const [row] = await peekPostgres<{ worker: string; takeovers: number }>(
        `SELECT worker, takeovers FROM "${schema}".actions WHERE run_name = $1 AND name = 'a0'`,
        [run.name],
      );
      assert.match(row?.worker ?? '', new RegExp(`:${taker.pid}$`), 'the record names the taker as its worker');
      assert.equal(row?.takeovers, 1);
      assert.match(
        taker.output(),
        new RegExp(`^flyte worker: ${run.name}/a0: taken over from \\S+:${paused.pid} \\(takeover 1\\)$`, 'm'),
        'the taker says so in its log',
      );
      const queue = new Queue('env.faults_leaf', { connection: { url: REDIS_TEST_URL }, prefix });
      try {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        assert.deepEqual(counts, { waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0 }, 'no job left');
      } finally {
        await queue.close();
      }
      const takenAt = startsOf(executions, 'napper')[1]?.at ?? 0;
      console.log(`takeover: sigstop ${takenAt - stoppedAt} ms (SIGSTOP to the new body's start)`);
    } finally {
      await stopAll();
    }
  });

  it('a job delivered again by hand after its action ended is acknowledged, and nothing runs', async () => {
    const log = executionLogPath();
    const leafQueue = new Queue('env.faults_leaf', { connection: { url: REDIS_TEST_URL }, prefix });
    const parentQueue = new Queue('env.faults_parent', { connection: { url: REDIS_TEST_URL }, prefix });
    try {
      await worker(log, 'faults_parent');
      await worker(log, 'faults_leaf');
      const run = await flyte.run(tasks.twice, 1);
      assert.equal(await run.outputs(), 2 + 102);
      const actions = await run.actions();
      const child = actions.find((a) => a.parentName === 'a0');
      assert.ok(child !== undefined);
      // The jobs as the engine made them (data: ids only), added again with the same job ids.
      const again = [
        { queue: parentQueue, name: 'a0', taskName: 'faults_parent.twice' },
        { queue: leafQueue, name: child.name, taskName: 'faults_leaf.once' },
      ];
      for (const { queue, name, taskName } of again) {
        const data = {
          queue: queue.name,
          runName: run.name,
          actionName: name,
          taskName,
          module: null,
          customContext: {},
        };
        await queue.add(taskName, data, { jobId: jobId(run.name, name), removeOnComplete: true, removeOnFail: true });
      }
      for (const deadline = Date.now() + 30_000; ;) {
        const gone = await Promise.all(again.map(({ queue, name }) => queue.getJob(jobId(run.name, name))));
        if (gone.every((job) => job === undefined)) break;
        assert.ok(Date.now() < deadline, 'the jobs delivered again were acknowledged within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const executions = readExecutions(log);
      assert.deepEqual(repeated(executions, 'start'), [], 'nothing ran twice');
      assert.equal(executions.filter((e) => e.event === 'start').length, 3, 'the parent and its two leaves, once');
      assert.deepEqual((await auditRun(run)).phases, { succeeded: 3 });
      assert.equal((await run.wait()).phase, 'succeeded');
    } finally {
      await Promise.all([leafQueue.close(), parentQueue.close()]);
      await stopAll();
    }
  });

  it('the takeover limit: an action whose worker dies on each of its N+1 runs fails with WorkerLostError', async () => {
    const log = executionLogPath();
    const max = 2;
    const options = { lockMs: 1_000, extraArgs: ['--max-takeovers', String(max)] };
    try {
      // Two workers, and a new one for each that dies: the action is claimed, and kills its worker, max + 1 times.
      await Promise.all([worker(log, 'faults_leaf', options), worker(log, 'faults_leaf', options)]);
      const run = await flyte.run(tasks.doomed);
      const died: number[] = [];
      let giveUp = false;
      const replacing = (async () => {
        while (!giveUp) {
          if ((await run.record()).phase !== 'running') return;
          for (const w of workers) {
            if (w.child.signalCode === 'SIGKILL' && !died.includes(w.pid)) {
              died.push(w.pid);
              await worker(log, 'faults_leaf', options);
            }
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      // Bounded: without the limit, the action would kill worker after worker for ever.
      let timer: NodeJS.Timeout | undefined;
      const record = await Promise.race([
        run.wait(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            giveUp = true;
            reject(new Error(`the run did not end within 90 s; ${died.length} workers died`));
          }, 90_000);
        }),
      ]).finally(() => clearTimeout(timer));
      await replacing;
      assert.equal(record.phase, 'failed');
      assert.equal(record.error?.code, 'WorkerLostError');
      const message = record.error?.message ?? '';
      assert.match(message, /action a0 \(faults_leaf\.doomed\) of run /);
      assert.match(message, new RegExp(`taken over ${max + 1} times, more than the limit of ${max}`));
      const starts = startsOf(readExecutions(log), 'doomed');
      assert.equal(starts.length, max + 1, `it ran (and killed its worker) ${max + 1} times`);
      for (const s of starts) assert.match(message, new RegExp(`:${s.pid}\\b`), `the message names worker ${s.pid}`);
      await assert.rejects(run.outputs(), (e: unknown) => e instanceof flyte.errors.WorkerLostError);
      const audit = await auditRun(run);
      assert.deepEqual(audit.phases, { failed: 1 });
      const times = starts.slice(1).map((s, i) => (s.at ?? 0) - (starts[i]?.at ?? 0));
      console.log(`takeover: limit ${times.join(' ')} ms (one run's start to the next, lock 1 s)`);
    } finally {
      await stopAll();
    }
  });
});
