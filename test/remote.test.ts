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
import type * as UnknownTasks from './fixtures/remote/unknown.js';
import type * as FeatureTasks from './fixtures/remote/features.js';

const EXAMPLES = join(REPO, 'examples');
const DEEP = join(REPO, 'test', 'fixtures', 'remote', 'deep.ts');
const UNKNOWN = join(REPO, 'test', 'fixtures', 'remote', 'unknown.ts');
const FEATURES = join(REPO, 'test', 'fixtures', 'remote', 'features.ts');

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
  ['retries.ts', [7]],
  ['timeouts.ts', []],
];

const skip = (await postgresSkip()) || (await redisSkip());

/** The outputs to compare: for as-completed.ts, each stream sorted (see the test). */
function orderless(file: string, outputs: unknown): unknown {
  if (file !== 'as-completed.ts') return outputs;
  const { inputOrder, fromPromises, fromMap } = outputs as Record<string, number[]>;
  const sorted = (xs: number[] | undefined): number[] => [...(xs ?? [])].sort((a, b) => a - b);
  return { inputOrder, fromPromises: sorted(fromPromises), fromMap: sorted(fromMap) };
}

/**
 * What must be the same in a local and a remote run: each action's name, task, group, item index, phase and
 * attempts.
 */
async function shape(run: flyte.Run): Promise<string[]> {
  const actions = await run.actions();
  return actions
    .map((a) => `${a.name} ${a.taskName} ${a.group ?? '-'} #${a.itemIndex ?? '-'} ${a.phase} ${a.attempts}`)
    .sort();
}

describe('distributed mode: flyte worker on Redis and Postgres', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_remote_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  let workers: WorkerProcess[] = [];

  before(async () => {
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    const modules = [...SEEDS.map(([file]) => join(EXAMPLES, file)), DEEP, FEATURES];
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
      const [remoteOut, localOut] = [await remote.outputs(), await local.outputs()];
      // asCompleted yields in completion order, which is timing (100 ms apart), not semantics: on a loaded
      // machine two runs may differ in it. Compare what was yielded, in order of value.
      assert.deepEqual(orderless(file, remoteOut), orderless(file, localOut));
      assert.deepEqual(await shape(remote), await shape(local));
      if (file === 'map-concurrency.ts' || file === 'sync-map.ts') {
        const items = (await remote.actions()).filter((a) => a.itemIndex !== null).map((a) => a.itemIndex);
        assert.ok(items.includes(0) && items.includes(5), `map items record their index remotely: ${String(items)}`);
      }
    });
  }

  it('traces, durable time, ctx(), custom context and the cache work on workers as locally', async () => {
    const tasks = (await import(FEATURES)) as typeof FeatureTasks;
    const key = `k${process.pid}`;
    const remote = await flyte.run(tasks.features, key);
    const out = await remote.outputs();
    assert.deepEqual(out, {
      shouted: key.toUpperCase(),
      slept: true,
      child: {
        mode: 'remote',
        action: (out.child as { action: string }).action,
        attempt: 1,
        custom: { tenant: 'acme' },
      },
      self: 'remote',
      cachedKey: key,
    });
    // ctx().action.name on the worker is the child's recorded name.
    const whereAmI = (await remote.actions()).find((a) => a.taskName === 'remote_features.whereAmI');
    assert.equal((out.child as { action: string }).action, whereAmI?.name);
    const stepsOf = async (run: flyte.Run): Promise<string[]> =>
      (await run.actions())
        .filter((a) => a.taskName.startsWith('trace:') || a.taskName.startsWith('durable:'))
        .map((a) => `${a.taskName} ${a.phase}`)
        .sort();
    const remoteSteps = await stepsOf(remote);
    assert.ok(remoteSteps.includes('trace:shout succeeded') && remoteSteps.includes('durable:sleep succeeded'));
    // The same call again, in another remote run: the cached child is not run again.
    const again = await flyte.run(tasks.features, key);
    await again.outputs();
    const cachedChild = (await again.actions()).find((a) => a.taskName === 'remote_features.cachedPid');
    assert.equal(cachedChild?.cacheHit, true);
    // Locally, as a reference: the same steps are recorded.
    const local = await flyte.withRunContext({ mode: 'local' }).run(tasks.features, `${key}-local`);
    assert.equal((await local.outputs()).self, 'local');
    assert.deepEqual(remoteSteps, await stepsOf(local));
  });

  it("a child called with override() runs with the override's settings on its worker", async () => {
    const tasks = (await import(FEATURES)) as typeof FeatureTasks;
    const remote = await flyte.run(tasks.overridden, 5);
    assert.equal(await remote.outputs(), 5);
    const child = (await remote.actions()).find((a) => a.taskName === 'remote_features.failsOnce');
    assert.equal(child?.attempts, 2, 'retried, as the override says');
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
