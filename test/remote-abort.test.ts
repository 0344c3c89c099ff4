/**
 * Abort across machines: `flyte abort run` from another process reaches a tree spread over two worker
 * processes. Every running leaf's `ctx().signal` fires where it runs, spinning sync leaves are stopped (their
 * threads ended), the leaves still in their queue are taken out and recorded as aborted, and the run ends
 * aborted. Real Redis, Postgres and processes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as flyte from '../src/index.js';
import { REPO, tempDir } from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, rawRedis, redisSkip, urlWithPrefix } from './support/redis.js';
import { startWorker, type WorkerProcess } from './support/workers.js';
import type * as AbortTasks from './fixtures/remote/abort.js';

const TASKS = join(REPO, 'test', 'fixtures', 'remote', 'abort.ts');
const skip = (await postgresSkip()) || (await redisSkip());

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  detail: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}. ${detail()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('distributed mode: abort across worker processes', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_remote_abort_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  const markers = tempDir('flyte-abort-markers-');
  const markerLines = (): string[] => {
    const file = join(markers, 'markers.txt');
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
  };
  let workers: WorkerProcess[] = [];

  before(async () => {
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    workers = await Promise.all(
      [1, 2].map(() =>
        startWorker({ modules: [TASKS], store, engine, concurrency: 3, env: { FLYTE_TEST_MARKERS: markers } }),
      ),
    );
  });

  after(async () => {
    const codes = await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
    assert.deepEqual(codes, [0, 0], workers.map((w) => w.output()).join('\n'));
  });

  it('flyte abort run from another process stops the whole tree on every worker', async () => {
    const tasks = (await import(TASKS)) as typeof AbortTasks;
    const run = await flyte.run(tasks.tree, 6);
    // Six slots over two workers: two spinning threads and four waiting leaves run; the rest wait in the queue.
    await until('two spinning leaves and four started ones', () => {
      const lines = markerLines();
      return (
        lines.filter((l) => l.startsWith('spinning')).length === 2 &&
        lines.filter((l) => l.startsWith('started')).length >= 4
      );
    });
    const abort = spawnSync(
      process.execPath,
      [
        '--conditions=flyte-source',
        '--import',
        'tsx',
        join(REPO, 'src', 'cli', 'main.ts'),
        'abort',
        'run',
        run.name,
        '--reason',
        'test',
        '--store',
        store,
        '--engine',
        engine,
      ],
      { cwd: REPO, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } },
    );
    assert.equal(abort.status, 0, `${abort.stdout}\n${abort.stderr}`);

    const record = await run.wait();
    assert.equal(record.phase, 'aborted');
    let open: string[] = [];
    await until(
      'every action ended',
      async () => {
        open = (await run.actions())
          .filter((a) => a.phase === 'running' || a.phase === 'queued')
          .map((a) => `${a.name} ${a.taskName} ${a.phase}`);
        return open.length === 0;
      },
      15_000,
      () => `still open:\n${open.join('\n')}\n${workers.map((w) => w.output()).join('\n')}`,
    );
    const actions = await run.actions();
    const leaves = actions.filter((a) => a.taskName === 'remote_abort.waitForAbort');
    assert.ok(
      leaves.every((a) => a.phase === 'aborted'),
      leaves.map((a) => `${a.name} ${a.phase}`).join('\n'),
    );
    const spins = actions.filter((a) => a.taskName === 'remote_abort.spin');
    assert.deepEqual(
      spins.map((a) => a.phase),
      ['aborted', 'aborted'],
    );

    const lines = markerLines();
    const started = lines.filter((l) => l.startsWith('started')).map((l) => l.split(' ')[1]);
    const signalled = new Set(lines.filter((l) => l.startsWith('signal')).map((l) => l.split(' ')[1]));
    for (const i of started) assert.ok(signalled.has(i), `the signal of leaf ${i} fired:\n${lines.join('\n')}`);
    assert.ok(
      started.length < leaves.length,
      `some leaves never left their queue: ${started.length} of ${leaves.length} started`,
    );
    const pids = new Set(lines.map((l) => l.split(' ')[2]));
    assert.ok(pids.size === 2, `the tree ran on both workers: ${[...pids].join(', ')}`);

    // Nothing of the run is left in the queue, and both workers still serve.
    const redis = rawRedis();
    try {
      assert.equal(await redis.llen(`${prefix}:env.remote_abort:wait`), 0);
      assert.equal(await redis.llen(`${prefix}:env.remote_abort:active`), 0);
    } finally {
      redis.disconnect();
    }
    const pings = await Promise.all([1, 2, 3, 4].map((x) => flyte.run(tasks.ping, x).then((r) => r.outputs())));
    assert.deepEqual(pings, [2, 3, 4, 5]);
  });
});
