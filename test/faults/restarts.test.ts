/**
 * Fault suite, service restarts (issue 12, item 6). Each case runs a fan-out over three workers next to a parent
 * that waits on its children one after another, and restarts a service under it:
 *
 * - **Redis**, with persistence (append-only, fsync on every write, so the queues survive), down longer than
 *   the workers' locks: the workers, their fetch loops and renewals, the wake-bus subscribers and the submitter
 *   reconnect; locks that expired meanwhile are taken over.
 * - **Redis without persistence**, back empty: every job is lost, and the workers' sweepers (every second here)
 *   enqueue the unfinished actions again from Postgres; without the sweeper the run never ends.
 * - **Postgres**, down for a few seconds: buffered writes are retried, reads and claims wait for it.
 * - **Postgres down past the store's outage limit** (`?maxOutageMs=`): the submitter is told so clearly, the
 *   workers keep what they buffered and hand back what they could not claim, and the run completes once it is back.
 *
 * Both services are private servers on ports of their own (test/support/private-services.ts); the machine's
 * shared ones are never restarted. Each case checks the right output, 0 lost actions (every action recorded as
 * ended), 0 duplicated completions and 0 re-executions of children that had ended (from the execution log), and
 * prints the outage and recovery times it measured.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import * as flyte from '../../src/index.js';
import { REPO, tempDir } from '../support/cli.js';
import {
  auditRun,
  executionLogPath,
  readExecutions,
  repeated,
  startedAfterEnd,
  untilLogged,
  type Execution,
} from '../support/faults.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from '../support/postgres.js';
import { PrivatePostgres, PrivateRedis, privateServicesSkip } from '../support/private-services.js';
import { deletePrefix, redisSkip, urlWithPrefix } from '../support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from '../support/workers.js';
import type * as RestartTasks from '../fixtures/faults/restarts.js';

const FIXTURE = join(REPO, 'test', 'fixtures', 'faults', 'restarts.ts');
const skip = privateServicesSkip() || (await postgresSkip()) || (await redisSkip());

/** The workers' lock: the Redis outage outlasts it, so that held jobs are found stalled and taken over. */
const LOCK_MS = 2_000;
/** The sweep interval (and grace) of the case whose Redis comes back empty. */
const SWEEP_MS = 1_000;
const ITEMS = 48;
const LEAF_MS = 150;
const CHAIN = 6;
/** The fan-out's concurrency: more than the 3 × 4 worker slots, so that jobs wait in the queue at every moment. */
const FAN_OUT = 24;
/** The outage-limit case's fan-out: many short leaves, claimed all the time. */
const FAST_ITEMS = 600;
const FAST_LEAF_MS = 5;
/** What `restartMix(items, …, CHAIN)` returns. */
const expected = (items: number): number[] => [
  Array.from({ length: items }, (_, i) => i * 2).reduce((a, b) => a + b, 0),
  Array.from({ length: CHAIN }, (_, i) => (1_000 + i) * 2).reduce((a, b) => a + b, 0),
];
const EXPECTED = expected(ITEMS);

const leafEnds = (executions: readonly Execution[]): number =>
  executions.filter((e) => e.event === 'end' && e.key.startsWith('leaf-')).length;
const starts = (executions: readonly Execution[]): number => executions.filter((e) => e.event === 'start').length;

/** Mid-run: some leaves of the fan-out ended, and the chain's parent waits on a child. */
const midRun = (executions: readonly Execution[]): boolean =>
  leafEnds(executions) >= 8 && executions.some((e) => e.event === 'start' && e.key === 'leaf-1000');

async function within<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The fault suite's three properties, from the records and the execution log. */
async function checkRun(
  run: flyte.Run,
  log: string,
  items = ITEMS,
): Promise<{ executions: Execution[]; reran: number }> {
  const audit = await auditRun(run);
  assert.deepEqual(audit.phases, { succeeded: 3 + items + CHAIN }, 'every action succeeded, none lost');
  const executions = readExecutions(log);
  assert.deepEqual(repeated(executions, 'end'), [], 'no body returned twice (0 duplicated completions)');
  assert.deepEqual(startedAfterEnd(executions), [], 'no body ran again after it had returned (0 re-executions)');
  const reran = [...new Set(executions.filter((e) => e.event === 'start').map((e) => e.key))].length;
  return { executions, reran: starts(executions) - reran };
}

/**
 * Runs the mix, and restarts a service once it is under way (some leaves ended, the chain waits); checks the
 * output and the three properties. The times: how long the service was down, and from its return until a body
 * started again and until the run ended.
 */
async function throughRestart(
  log: string,
  service: string,
  restart: () => Promise<void>,
): Promise<{ downMs: number; resumedMs: number; endedMs: number; reran: number }> {
  const run = await flyte.run(tasks.restartMix, ITEMS, LEAF_MS, FAN_OUT, CHAIN);
  await untilLogged(log, midRun);
  const stoppedAt = Date.now();
  await restart();
  const backAt = Date.now();
  const startedBefore = starts(readExecutions(log));
  await untilLogged(log, (e) => starts(e) > startedBefore, 60_000);
  const resumedAt = Date.now();
  assert.deepEqual(await within(`the run after the ${service} restart`, run.outputs(), 120_000), EXPECTED);
  const endedAt = Date.now();
  const { reran } = await checkRun(run, log);
  return { downMs: backAt - stoppedAt, resumedMs: resumedAt - backAt, endedMs: endedAt - backAt, reran };
}

let tasks: typeof RestartTasks;

describe('fault suite: Redis and Postgres restarted mid-run', { skip, timeout: 480_000 }, () => {
  const cleanups: Array<() => unknown> = [];

  after(async () => {
    await flyte.shutdown();
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (e) {
        console.error(`cleanup failed: ${(e as Error).message}`);
      }
    }
  });

  /** Starts three workers on `store` and `engine`, runs `body`, then drains them (each must exit 0). */
  async function withWorkers(
    store: string,
    engine: string,
    log: string,
    body: (workers: WorkerProcess[]) => Promise<void>,
    extraArgs: readonly string[] = [],
  ): Promise<void> {
    await flyte.shutdown(); // the previous case's runtime closes before this one's starts
    tasks ??= (await import(FIXTURE)) as typeof RestartTasks;
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    const options = {
      modules: [FIXTURE],
      store,
      engine,
      concurrency: 4,
      lockMs: LOCK_MS,
      extraArgs,
      env: { FLYTE_FAULT_LOG: log },
    };
    const workers = await Promise.all([1, 2, 3].map(() => startWorker(options)));
    let check: (() => void) | undefined;
    try {
      await body(workers);
    } finally {
      check = await stopWorkers(workers);
    }
    check();
  }

  it('Redis restarted mid-run (persistent, down past the locks): the run completes, nothing lost or re-run', async (t: TestContext) => {
    const redis = await PrivateRedis.start({ persistent: true });
    cleanups.push(() => redis.destroy());
    const schema = freshSchema();
    cleanups.push(() => dropSchema(schema));
    const log = executionLogPath();
    await withWorkers(urlWithSchema(schema), redis.url('flyte_restart'), log, async (workers) => {
      const { downMs, resumedMs, endedMs, reran } = await throughRestart(log, 'Redis', () =>
        redis.restart(LOCK_MS + 1_000),
      );
      t.diagnostic(
        `Redis down ${downMs} ms (lock ${LOCK_MS} ms); a body started again ${resumedMs} ms ` +
          `after it was back; run ended ${endedMs} ms after; ${reran} bodies started again ` +
          `(leaves and parents that had not returned); ${workers.length} workers`,
      );
    });
  });

  it('Redis restarted mid-run without persistence (every job lost): the sweeper enqueues them again from Postgres', async (t: TestContext) => {
    const redis = await PrivateRedis.start({ persistent: false });
    cleanups.push(() => redis.destroy());
    const schema = freshSchema();
    cleanups.push(() => dropSchema(schema));
    const log = executionLogPath();
    await withWorkers(
      urlWithSchema(schema),
      redis.url('flyte_restart_empty'),
      log,
      async (workers) => {
        const { downMs, resumedMs, endedMs, reran } = await throughRestart(log, 'Redis (empty)', () =>
          redis.restart(1_000),
        );
        t.diagnostic(
          `Redis down ${downMs} ms and back empty; a body started again ${resumedMs} ms after it was back; ` +
            `run ended ${endedMs} ms after (sweeps every ${SWEEP_MS} ms); ${reran} bodies started again; ` +
            `${workers.length} workers`,
        );
      },
      ['--sweep-ms', String(SWEEP_MS)],
    );
  });

  it('Postgres restarted mid-run: buffered writes are retried, and the run completes, nothing lost or re-run', async (t: TestContext) => {
    const postgres = await PrivatePostgres.start();
    cleanups.push(() => postgres.destroy());
    const prefix = `flyte_test_faults_restarts_${process.pid}_pg`;
    cleanups.push(() => deletePrefix(prefix));
    const log = executionLogPath();
    await withWorkers(postgres.url('flyte_restart'), urlWithPrefix(prefix), log, async () => {
      const { downMs, resumedMs, endedMs, reran } = await throughRestart(log, 'Postgres', () =>
        postgres.restart(2_000),
      );
      t.diagnostic(
        `Postgres down ${downMs} ms; a body started again ${resumedMs} ms after it was back; ` +
          `run ended ${endedMs} ms after; ${reran} bodies started again`,
      );
    });
  });

  it('Postgres down past the outage limit: the submitter is told clearly; the run completes once it is back', async (t: TestContext) => {
    const postgres = await PrivatePostgres.start();
    cleanups.push(() => postgres.destroy());
    const prefix = `flyte_test_faults_restarts_${process.pid}_pg_limit`;
    cleanups.push(() => deletePrefix(prefix));
    const limitMs = 3_000;
    const store = `${postgres.url('flyte_limit')}&maxOutageMs=${limitMs}`;
    const log = executionLogPath();
    await withWorkers(store, urlWithPrefix(prefix), log, async (workers) => {
      // Short leaves: the workers claim all the time, so claims are in flight when the server stops; they give up
      // past the limit, and their jobs must go back to the queue (not be completed with the action unfinished).
      const run = await flyte.run(tasks.restartMix, FAST_ITEMS, FAST_LEAF_MS, FAN_OUT, CHAIN);
      const waiting = run.outputs();
      waiting.catch(() => undefined); // awaited below
      await untilLogged(log, midRun);
      const stoppedAt = Date.now();
      postgres.stop();
      const error = await within(
        'the submitter giving up',
        waiting.then(
          (value) =>
            assert.fail(`expected the wait to fail while the store is down; it resolved with ${JSON.stringify(value)}`),
          (e: unknown) => e,
        ),
        60_000,
      );
      const toldAt = Date.now();
      assert.ok(
        error instanceof flyte.errors.StoreUnavailableError,
        `a StoreUnavailableError; received ${String(error)}`,
      );
      assert.match(error.message, new RegExp(`outage limit of ${limitMs} ms \\(maxOutageMs\\)`));
      assert.match(error.message, /has not answered for \d+ ms/);
      assert.ok(toldAt - stoppedAt >= limitMs, `told after ${toldAt - stoppedAt} ms, not before the limit`);
      // Well past the limit on the workers too: their claims give up, and their buffered writes wait.
      await new Promise((resolve) => setTimeout(resolve, limitMs));
      await postgres.startAgain();
      const backAt = Date.now();
      assert.deepEqual(await within('the run after Postgres came back', run.outputs(), 120_000), expected(FAST_ITEMS));
      const endedAt = Date.now();
      const { reran } = await checkRun(run, log, FAST_ITEMS);
      const handedBack = workers.map((w) => w.output().split('its job is handed back').length - 1);
      t.diagnostic(
        `Postgres down ${backAt - stoppedAt} ms (limit ${limitMs} ms); the submitter was told after ` +
          `${toldAt - stoppedAt} ms: "${error.message}"; the run ended ${endedAt - backAt} ms after it was back; ` +
          `${reran} bodies started again; jobs handed back by the workers: ${handedBack.join(', ')}`,
      );
    });
  });
});
