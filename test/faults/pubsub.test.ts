/**
 * Fault: the pub/sub connections drop, again and again, mid-run (`CLIENT KILL TYPE pubsub` of the subscriber
 * connections of this test's prefix, every 10 ms): wake-ups are lost. Expected: waiting parents still learn of
 * their children's ends from the store (the reconcile path), the subscribers reconnect and resubscribe, and the
 * runs (a chain, a fan-out) complete right. Counted afterwards: the execution log (0 re-executions), the runs'
 * records (0 lost actions). Measured and reported (not asserted): how long a parent of a chain took to learn of
 * each child's end, with and without the kills.
 * Real Redis, real Postgres, real worker processes; own schema and key prefix.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { join } from 'node:path';
import * as flyte from '../../src/index.js';
import { REPO, tempDir } from '../support/cli.js';
import {
  auditRun,
  chainGaps,
  executionLogPath,
  killSubscribers,
  quantile,
  readExecutions,
  repeated,
} from '../support/faults.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from '../support/postgres.js';
import { deletePrefix, rawRedis, redisSkip, urlWithPrefix } from '../support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from '../support/workers.js';
import type * as PubsubTasks from '../fixtures/faults/pubsub.js';

const TASKS = join(REPO, 'test', 'fixtures', 'faults', 'pubsub.ts');
const KILL_EVERY_MS = 10;

const skip = (await postgresSkip()) || (await redisSkip());

/** Kills the subscribers of `prefix` every {@link KILL_EVERY_MS} until stopped; resolves to how many it killed. */
function keepKilling(prefix: string): { stop(): Promise<number> } {
  const redis = rawRedis();
  let stopped = false;
  let killed = 0;
  const loop = (async () => {
    while (!stopped) {
      killed += await killSubscribers(redis, prefix);
      await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_MS));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      redis.disconnect();
      return killed;
    },
  };
}

/** The gaps of a chain run's steps, as a line for the report. */
async function reportGaps(t: TestContext, label: string, run: flyte.Run): Promise<number[]> {
  const steps = (await run.actions()).filter((a) => a.taskName === 'faults_pubsub.step');
  const gaps = chainGaps(steps);
  t.diagnostic(
    `${label}: a parent learned of a child's end (child ended_at → next child started_at) in ` +
      `p50 ${quantile(gaps, 0.5)} ms, p90 ${quantile(gaps, 0.9)} ms, max ${Math.max(...gaps)} ms over ${gaps.length} steps`,
  );
  return gaps;
}

describe(
  'fault: pub/sub connections killed mid-run; the reconcile path wakes the parents',
  { skip, timeout: 180_000 },
  () => {
    const schema = freshSchema();
    const store = urlWithSchema(schema);
    const prefix = `flyte_test_faults_pubsub_${process.pid}`;
    const engine = urlWithPrefix(prefix);
    const log = executionLogPath();
    let workers: WorkerProcess[] = [];

    before(async () => {
      flyte.init({ root: tempDir(), store, engine, echoLogs: false });
      workers = await Promise.all(
        [1, 2].map(() =>
          startWorker({ modules: [TASKS], store, engine, concurrency: 4, env: { FLYTE_FAULT_LOG: log } }),
        ),
      );
    });

    after(async () => {
      const drained = await stopWorkers(workers);
      await flyte.shutdown();
      await dropSchema(schema);
      await deletePrefix(prefix);
      drained();
    });

    /** Checks a run's records and the log: nothing lost, nothing run twice. */
    async function checkRun(run: flyte.Run, actions: number): Promise<void> {
      const audit = await auditRun(run);
      assert.equal(audit.phases['succeeded'], actions, JSON.stringify(audit.phases));
      assert.deepEqual(repeated(readExecutions(log), 'start'), [], 'no step or parent ran twice');
      assert.deepEqual(repeated(readExecutions(log), 'end'), [], 'no step or parent completed twice');
    }

    it('a chain, pub/sub intact (the baseline of the figures)', async (t) => {
      const tasks = (await import(TASKS)) as typeof PubsubTasks;
      const n = 15;
      const run = await flyte.run(tasks.chain, 'quiet', n, 20);
      assert.deepEqual(
        await run.outputs(),
        Array.from({ length: n }, (_, i) => `QUIET-${i}`),
      );
      await checkRun(run, n + 1);
      await reportGaps(t, 'pub/sub intact', run);
    });

    /**
     * Runs `task` (a chain or a fan-out of `n` steps of `ms`) while the subscribers are killed, checks it ended
     * right, nothing lost and nothing run twice, and resolves to the run and the number of kills.
     */
    async function runWhileKilling(
      task: typeof PubsubTasks.chain,
      key: string,
      n: number,
      ms: number,
    ): Promise<{ run: flyte.Run; killed: number }> {
      const killer = keepKilling(prefix);
      let killed: number;
      let run: flyte.Run;
      try {
        run = await flyte.run(task, key, n, ms);
        assert.deepEqual(
          await run.outputs(),
          Array.from({ length: n }, (_, i) => `${key.toUpperCase()}-${i}`),
        );
      } finally {
        killed = await killer.stop();
      }
      assert.ok(killed > 0, 'subscriber connections were killed');
      await checkRun(run, n + 1);
      return { run, killed };
    }

    it('a chain completes right while its subscribers are killed every 10 ms', async (t) => {
      const tasks = (await import(TASKS)) as typeof PubsubTasks;
      const { run, killed } = await runWhileKilling(tasks.chain, 'chain', 15, 20);
      t.diagnostic(`${killed} subscriber connections killed during the chain`);
      await reportGaps(t, 'subscribers killed every 10 ms', run);
    });

    it('a fan-out completes right while its subscribers are killed every 10 ms', async (t) => {
      const tasks = (await import(TASKS)) as typeof PubsubTasks;
      const { run, killed } = await runWhileKilling(tasks.fanOut, 'fan', 40, 50);
      const root = await run.wait();
      const steps = (await run.actions()).filter((a) => a.taskName === 'faults_pubsub.step');
      const lastEnd = Math.max(...steps.map((a) => a.endedAt ?? 0));
      t.diagnostic(
        `${killed} subscriber connections killed; the parent ended ${(root.endedAt ?? 0) - lastEnd} ms after its last child`,
      );
    });

    it('after the kills, the subscribers are back: a chain is woken by pub/sub again', async (t) => {
      const tasks = (await import(TASKS)) as typeof PubsubTasks;
      const n = 10;
      const run = await flyte.run(tasks.chain, 'after', n, 20);
      assert.deepEqual(
        await run.outputs(),
        Array.from({ length: n }, (_, i) => `AFTER-${i}`),
      );
      await checkRun(run, n + 1);
      await reportGaps(t, 'after the kills', run);
      const redis = rawRedis();
      try {
        const clients = ((await redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string)
          .split('\n')
          .filter((line) => line.includes(` name=flyte-${prefix}-sub `));
        // Each worker has its subscriber connection again, subscribed (abort notices at least). This process's
        // subscribes only while it waits for a run, so it may have none now.
        assert.ok(
          clients.length >= workers.length,
          `each worker's subscriber reconnected and resubscribed; found ${clients.length}:\n${clients.join('\n')}`,
        );
      } finally {
        redis.disconnect();
      }
    });
  },
);
