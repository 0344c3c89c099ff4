/**
 * Distributed mode end to end: `flyte worker` processes on this machine take the actions of remote runs from
 * Redis (BullMQ) and record them in Postgres, and a run made remotely gives what the same run gives locally.
 * Real Redis, real Postgres, real worker processes on loopback; each test file its own schema and key prefix.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import * as flyte from '../src/index.js';
import { REPO, tempDir } from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from './support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from './support/workers.js';
import type * as DeepTasks from './fixtures/remote/deep.js';
import type * as UnknownTasks from './fixtures/remote/unknown.js';

const EXAMPLES = join(REPO, 'examples');
const DEEP = join(REPO, 'test', 'fixtures', 'remote', 'deep.ts');
const UNKNOWN = join(REPO, 'test', 'fixtures', 'remote', 'unknown.ts');

/** The seed patterns: an example file and the arguments of its `main`. */
const SEEDS: readonly (readonly [string, readonly unknown[]])[] = [
  ['gather.ts', [[1, 2, 3]]],
  ['map-concurrency.ts', [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]],
  ['semaphore.ts', [[1, 2, 3, 4, 5, 6], 2]],
  ['error-handling.ts', [[1, 2, 3, 4, 5, 6]]],
  ['as-completed.ts', [[3, 1, 2]]],
  ['async-chain.ts', [[1, 10, 100]]],
  ['sync-chain.ts', [[1, 2, 3]]],
  ['sync-map.ts', [[1, 2, 3, 4, 5, 6]]],
  ['sequential.ts', ['Alpha, , Beta,GAMMA']],
  ['groups.ts', [['  Alpha', 'BETA ', ' Gamma ']]],
];

const skip = (await postgresSkip()) || (await redisSkip());

/** What must be the same in a local and a remote run: each action's name, task, group and phase. */
async function shape(run: flyte.Run): Promise<string[]> {
  const actions = await run.actions();
  return actions.map((a) => `${a.name} ${a.taskName} ${a.group ?? '-'} ${a.phase}`).sort();
}

describe('distributed mode: flyte worker on Redis and Postgres', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_remote_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  let workers: WorkerProcess[] = [];

  before(async () => {
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    const modules = [...SEEDS.map(([file]) => join(EXAMPLES, file)), DEEP];
    workers = await Promise.all([1, 2].map(() => startWorker({ modules, store, engine, concurrency: 2 })));
  });

  after(async () => {
    const drained = await stopWorkers(workers);
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
    drained();
  });

  for (const [file, args] of SEEDS) {
    it(`${file} gives the same outputs, action names and phases remotely as locally`, async () => {
      const mod = (await import(join(EXAMPLES, file))) as { main: flyte.AnyTask };
      const remote = await flyte.run(mod.main as never, ...(args as never[]));
      const local = await flyte.withRunContext({ mode: 'local' }).run(mod.main as never, ...(args as never[]));
      const [remoteRecord, localRecord] = await Promise.all([remote.wait(), local.wait()]);
      assert.equal(remoteRecord.mode, 'remote');
      assert.equal(localRecord.mode, 'local');
      assert.equal(remoteRecord.phase, localRecord.phase, JSON.stringify(remoteRecord.error));
      assert.deepEqual(await remote.outputs(), await local.outputs());
      assert.deepEqual(await shape(remote), await shape(local));
    });
  }

  it('a 30-deep chain, a 6^3 tree and a 12-deep sync recursion end at --concurrency 1 (no deadlock)', async () => {
    const one = await startWorker({ modules: [DEEP], store, engine, concurrency: 1 });
    try {
      const deep = (await import(DEEP)) as typeof DeepTasks;
      const runs = await Promise.all([
        flyte.run(deep.chain, 30),
        flyte.run(deep.tree, 6, 3),
        flyte.run(deep.syncDepth, 12),
      ]);
      const outputs = await Promise.all(runs.map((r) => r.outputs()));
      assert.deepEqual(outputs, [30, 216, 12]);
    } finally {
      assert.equal(await one.stop('SIGTERM'), 0, one.output());
    }
  });

  it('spreads a fan-out over the workers', async () => {
    const deep = (await import(DEEP)) as typeof DeepTasks;
    const run = await flyte.run(deep.spread, 200, 16);
    const results = (await run.outputs()) as { i: number; pid: number }[];
    assert.deepEqual(
      results.map((r) => r.i),
      Array.from({ length: 200 }, (_, i) => i),
    );
    const pids = new Set(results.map((r) => r.pid));
    for (const w of workers)
      assert.ok(pids.has(w.pid), `worker ${w.pid} ran none of 200 items: ${[...pids].join(', ')}`);
  });

  it('fails an action whose task the workers do not have with ModuleLoadError, not retried', async () => {
    const unknown = (await import(UNKNOWN)) as typeof UnknownTasks;
    const run = await flyte.run(unknown.notOnWorkers, 1);
    const record = await run.wait();
    assert.equal(record.phase, 'failed');
    const root = await run.action('a0').record();
    assert.ok(root !== undefined);
    assert.equal(root.error?.code, 'ModuleLoadError');
    assert.match(root.error?.message ?? '', /remote_deep\.notOnWorkers/);
    assert.match(root.error?.message ?? '', /test\/fixtures\/remote\/unknown\.ts/);
    assert.ok(root.attempts <= 1, `not retried: ${root.attempts} attempts`);
  });
});
