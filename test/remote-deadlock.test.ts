/**
 * Distributed mode's slot rule: a parent waiting on children holds no worker slot, so deep and wide trees end at
 * `--concurrency 1`, with one worker and with three; and a fan-out spreads over all the workers. Real Redis,
 * Postgres and worker processes; each case its own key prefix (only its workers take its jobs).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as flyte from '../src/index.js';
import { REPO, tempDir } from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from './support/redis.js';
import { startWorker } from './support/workers.js';
import type * as DeepTasks from './fixtures/remote/deep.js';

const DEEP = join(REPO, 'test', 'fixtures', 'remote', 'deep.ts');
const skip = (await postgresSkip()) || (await redisSkip());

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
