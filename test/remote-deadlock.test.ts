/**
 * Distributed mode's slot rule: a parent waiting on children holds no worker slot, so deep and wide trees end at
 * `--concurrency 1`, with one worker and with three; and a fan-out spreads over all the workers. Real Redis,
 * Postgres and worker processes; each case its own key prefix (only its workers take its jobs).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as flyte from '../src/index.js';
import { REPO, tempDir } from './support/cli.js';
import { dropSchema, freshSchema, peekPostgres, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from './support/redis.js';
import { startWorker } from './support/workers.js';
import type * as DeepTasks from './fixtures/remote/deep.js';

const DEEP = join(REPO, 'test', 'fixtures', 'remote', 'deep.ts');
const skip = (await postgresSkip()) || (await redisSkip());

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('distributed mode: no deadlock at --concurrency 1, and work spreads', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefixes: string[] = [];
  let deep: typeof DeepTasks;

  before(async () => {
    deep = (await import(DEEP)) as typeof DeepTasks;
  });

  after(async () => {
    await flyte.shutdown();
    await dropSchema(schema);
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  /** Runs `body` with `count` workers of `concurrency` on a prefix of their own, then drains them (exit 0). */
  async function withWorkers(count: number, concurrency: number, body: (pids: number[]) => Promise<void>) {
    const prefix = `flyte_test_remote_deadlock_${process.pid}_${prefixes.length}`;
    prefixes.push(prefix);
    const engine = urlWithPrefix(prefix);
    await flyte.shutdown(); // the previous case's runtime closes (its engine too) before its prefix is deleted
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    const workers = await Promise.all(
      Array.from({ length: count }, () => startWorker({ modules: [DEEP], store, engine, concurrency })),
    );
    try {
      await body(workers.map((w) => w.pid));
    } finally {
      const codes = await Promise.all(workers.map((w) => w.stop('SIGTERM')));
      assert.deepEqual(
        codes,
        workers.map(() => 0),
        workers.map((w) => w.output()).join('\n'),
      );
    }
  }

  for (const count of [1, 3]) {
    it(`a 30-deep chain, a 6^4 tree and a 12-deep sync recursion end on ${count} worker(s) at --concurrency 1`, () =>
      withWorkers(count, 1, async () => {
        const runs = await Promise.all([
          flyte.run(deep.chain, 30),
          flyte.run(deep.tree, 6, 4),
          flyte.run(deep.syncDepth, 12),
        ]);
        assert.deepEqual(await Promise.all(runs.map((r) => r.outputs())), [30, 1296, 12]);
        const [chain, tree] = await Promise.all([runs[0].actions(), runs[1].actions()]);
        assert.equal(chain.length, 31);
        assert.equal(tree.length, 1 + 6 + 36 + 216 + 1296);
        assert.ok([...chain, ...tree].every((a) => a.phase === 'succeeded'));
      }));
  }

  it('SIGTERM drains a worker: its waiting parent and an unfinished leaf go to another worker at once', async () => {
    const prefix = `flyte_test_remote_deadlock_${process.pid}_${prefixes.length}`;
    prefixes.push(prefix);
    const engine = urlWithPrefix(prefix);
    const markers = tempDir('flyte-drain-markers-');
    const lines = (): string[] => {
      const file = join(markers, 'markers.txt');
      return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
    };
    await flyte.shutdown(); // the previous case's runtime closes (its engine too) before its prefix is deleted
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    // Locks of 30 s: a job that comes back sooner was handed back by the drain, not found stalled.
    const options = { modules: [DEEP], store, engine, lockMs: 30_000, env: { FLYTE_TEST_MARKERS: markers } };
    const first = await startWorker({ ...options, concurrency: 1, grace: 300 });
    // Naps of 8 s: the first worker (concurrency 1) is still in its nap when the second worker starts, however
    // loaded the machine, so the other nap can only go to the second (with 1.5 s naps, CI at load 13 saw the
    // first worker finish its nap and take the other before the second worker was up).
    const run = await flyte.run(deep.napParent, 2, 8_000);
    await until('the parent and one nap on the first worker', () => lines().length === 2);
    const second = await startWorker({ ...options, concurrency: 3 });
    try {
      await until('the other nap on the second worker', () => lines().length === 3);
      const drainedAt = Date.now();
      assert.equal(await first.stop('SIGTERM'), 0, first.output());
      assert.ok(Date.now() - drainedAt < 5_000, `drained in ${Date.now() - drainedAt} ms`);
      assert.equal(await run.outputs(), 1);
      assert.ok(Date.now() - drainedAt < 25_000, 'taken over before the 30 s lock expired');
      const ran = lines();
      const secondPid = String(second.pid);
      // The parent ran again on the second worker (a takeover re-runs its body), and so did the nap the first
      // worker had not finished; the nap the second worker ran once was collected, not run again.
      assert.equal(ran.filter((l) => l === `parent ${secondPid}`).length, 1, ran.join('\n'));
      assert.ok(ran.filter((l) => l.startsWith('nap ')).length <= 4, ran.join('\n'));
      const actions = await run.actions();
      assert.ok(
        actions.every((a) => a.phase === 'succeeded'),
        actions.map((a) => `${a.name} ${a.phase}`).join('\n'),
      );
      // A drain gives its claims back: the second worker's claims of what it handed back are no takeovers.
      const takeovers = await peekPostgres<{ name: string; takeovers: number }>(
        `SELECT name, takeovers FROM "${schema}".actions WHERE run_name = $1 AND takeovers > 0`,
        [run.name],
      );
      assert.deepEqual(takeovers, [], 'no takeover counted for a hand-back');
    } finally {
      assert.equal(await second.stop('SIGTERM'), 0, second.output());
    }
  });

  it('a 2 000-item map over three workers runs on all three', () =>
    withWorkers(3, 8, async (pids) => {
      const run = await flyte.run(deep.spread, 2_000, 64);
      const results = (await run.outputs()) as { i: number; pid: number }[];
      assert.deepEqual(
        results.map((r) => r.i),
        Array.from({ length: 2_000 }, (_, i) => i),
      );
      const ran = new Map<number, number>();
      for (const r of results) ran.set(r.pid, (ran.get(r.pid) ?? 0) + 1);
      for (const pid of pids) assert.ok((ran.get(pid) ?? 0) > 0, `worker ${pid} ran none: ${JSON.stringify([...ran])}`);
    }));
});
