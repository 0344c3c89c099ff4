/**
 * `maxActionConcurrency` across workers: the run's slots are a semaphore in Redis shared by every `flyte worker`,
 * so a run limited to 3 never executes more than 3 actions at once, whichever workers run them and however much
 * room the workers have. Real Redis, real Postgres, three worker processes; own schema and key prefix.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as flyte from '../src/index.js';
import { REPO, tempDir } from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, rawRedis, redisSkip, urlWithPrefix } from './support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from './support/workers.js';
import type * as DeepTasks from './fixtures/remote/deep.js';
import type * as SlotTasks from './fixtures/remote/slots.js';

const SLOTS = join(REPO, 'test', 'fixtures', 'remote', 'slots.ts');
const DEEP = join(REPO, 'test', 'fixtures', 'remote', 'deep.ts');

const skip = (await postgresSkip()) || (await redisSkip());

/** The most intervals `[start, end)` that overlap at any instant (an end and a start at the same ms do not). */
function mostAtOnce(intervals: readonly (readonly [number, number])[]): number {
  const events = intervals.flatMap(([start, end]) => [
    [start, 1],
    [end, -1],
  ]);
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let most = 0;
  for (const [, delta] of events) {
    now += delta!;
    most = Math.max(most, now);
  }
  return most;
}

/** The recorded `[startedAt, endedAt)` of every action of `run` whose task is `taskName`. */
async function recorded(run: flyte.Run, taskName: string): Promise<[number, number][]> {
  const actions = (await run.actions()).filter((a) => a.taskName === taskName);
  return actions.map((a) => {
    assert.equal(a.phase, 'succeeded', `${a.name} ended ${a.phase}`);
    assert.ok(a.startedAt !== null && a.endedAt !== null, `${a.name} has its times`);
    return [a.startedAt, a.endedAt];
  });
}

describe('maxActionConcurrency across workers', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_slots_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  let workers: WorkerProcess[] = [];
  /** The three workers of the leaves; the parents of `remote_slots_root` run on a fourth one. */
  const leafWorker = (): Promise<WorkerProcess> =>
    startWorker({
      modules: [SLOTS, DEEP],
      store,
      engine,
      concurrency: 10,
      extraArgs: ['--env', 'remote_slots', 'remote_deep'],
    });

  before(async () => {
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    workers = await Promise.all([
      leafWorker(),
      leafWorker(),
      leafWorker(),
      startWorker({ modules: [SLOTS], store, engine, concurrency: 2, extraArgs: ['--env', 'remote_slots_root'] }),
    ]);
  });

  after(async () => {
    const drained = await stopWorkers(workers);
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
    drained();
  });

  it('a fan-out of 30 under maxActionConcurrency 3, on 3 workers of concurrency 10, runs at most 3 at once', async () => {
    const slots = (await import(SLOTS)) as typeof SlotTasks;
    const run = await flyte.withRunContext({ maxActionConcurrency: 3 }).run(slots.fanOut, 30, 80);
    const naps = await run.outputs();
    assert.deepEqual(
      naps.map((n) => n.i),
      Array.from({ length: 30 }, (_, i) => i),
    );
    const intervals = await recorded(run, 'remote_slots.nap');
    assert.equal(intervals.length, 30);
    assert.equal(mostAtOnce(intervals), 3, 'the recorded intervals overlap at most 3 at once, and do reach 3');
    // The bodies' own clocks agree: never more than 3 naps inside their bodies at once.
    assert.ok(mostAtOnce(naps.map((n) => [n.start, n.end])) <= 3);
    const pids = new Set(naps.map((n) => n.pid));
    assert.ok(pids.size >= 2, `the naps ran on several workers: ${[...pids].join(', ')}`);
    // Without the limit the same fan-out runs far more than 3 at once: the measure can tell.
    const free = await flyte.run(slots.fanOut, 30, 80);
    await free.outputs();
    assert.ok(mostAtOnce(await recorded(free, 'remote_slots.nap')) > 3, 'unlimited, more than 3 run at once');
    // The run's end removed its slots.
    const redis = rawRedis();
    try {
      assert.equal(await redis.exists(`${prefix}:slots:${run.name}`), 0);
    } finally {
      redis.disconnect();
    }
  });

  it('a tree whose parents wait on their children, and a 10-deep chain at 1, end under the limit (no deadlock)', async () => {
    const slots = (await import(SLOTS)) as typeof SlotTasks;
    const deep = (await import(DEEP)) as typeof DeepTasks;
    const [tree, chain] = await Promise.all([
      flyte.withRunContext({ maxActionConcurrency: 2 }).run(slots.nest, 3, 2, 30),
      flyte.withRunContext({ maxActionConcurrency: 1 }).run(deep.chain, 10),
    ]);
    assert.deepEqual(await Promise.all([tree.outputs(), chain.outputs()]), [9, 10]);
    // A parent gives its slot back at its first child call: the leaves alone count, at most 2 at once.
    assert.ok(mostAtOnce(await recorded(tree, 'remote_slots.nap')) <= 2);
  });

  it('a child that waits longer than its maxQueuedTime for a slot ends timed_out without running', async () => {
    const slots = (await import(SLOTS)) as typeof SlotTasks;
    const run = await flyte.withRunContext({ maxActionConcurrency: 1 }).run(slots.crowded);
    const [nap, message] = await run.outputs();
    assert.equal(nap.i, 0);
    assert.match(message, /waited more than 200 ms to start/);
    const rec = (await run.actions()).find((a) => a.taskName === 'remote_slots.impatient');
    assert.equal(rec?.phase, 'timed_out');
    assert.equal(rec?.attempts, 0);
    assert.equal(rec?.error?.code, 'TaskTimeoutError');
  });

  it('a leaf worker killed while it holds slots: its actions run again elsewhere, never more than 3 at once', async () => {
    const slots = (await import(SLOTS)) as typeof SlotTasks;
    const dir = tempDir();
    const run = await flyte.withRunContext({ maxActionConcurrency: 3 }).run(slots.markedFanOut, 9, 600, dir);
    // The first nap that starts names its worker: that one is killed mid-nap, holding its slots.
    let victimPid: number | undefined;
    for (const deadline = Date.now() + 20_000; victimPid === undefined;) {
      assert.ok(Date.now() < deadline, 'a nap started within 20 s');
      const first = readdirSync(dir)[0];
      if (first !== undefined) victimPid = Number(readFileSync(join(dir, first), 'utf8').split('\n')[0]);
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const victim = workers.findIndex((w) => w.pid === victimPid);
    assert.ok(victim >= 0 && victim < 3, `the nap ran on a leaf worker (${victimPid})`);
    await workers[victim]!.stop('SIGKILL');
    workers[victim] = await leafWorker();
    const record = await run.wait();
    assert.equal(record.phase, 'succeeded', JSON.stringify(record.error));
    const starts = Array.from({ length: 9 }, (_, i) =>
      readFileSync(join(dir, String(i)), 'utf8')
        .trim()
        .split('\n'),
    );
    const again = starts.filter((pids) => pids.length > 1);
    assert.ok(again.length >= 1, "the killed worker's naps ran again");
    for (const pids of again) assert.equal(Number(pids[0]), victimPid, "only the killed worker's naps ran twice");
    // The killed worker's slots stayed taken until their actions ran again and ended: never more than 3.
    assert.ok(mostAtOnce(await recorded(run, 'remote_slots.markedNap')) <= 3);
    const naps = await run.outputs();
    assert.ok(mostAtOnce(naps.map((n) => [n.start, n.end])) <= 3);
  });

  it('an abort ends the children still waiting for a slot: none is left queued', async () => {
    const slots = (await import(SLOTS)) as typeof SlotTasks;
    const deep = (await import(DEEP)) as typeof DeepTasks;
    const sync = await flyte.withRunContext({ maxActionConcurrency: 1 }).run(deep.syncDepth, 5);
    assert.equal(await sync.outputs(), 5, 'a sync parent gives its slot back too');
    const run = await flyte.withRunContext({ maxActionConcurrency: 1 }).run(slots.fanOut, 8, 4_000);
    for (const deadline = Date.now() + 20_000; ;) {
      // Running, with its attempt started (a claim alone also shows `running`, with no attempt yet).
      const running = (await run.actions()).filter(
        (a) => a.taskName === 'remote_slots.nap' && a.phase === 'running' && a.attempts > 0,
      );
      if (running.length > 0) break;
      assert.ok(Date.now() < deadline, 'a nap started within 20 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await run.abort('enough');
    assert.equal((await run.wait()).phase, 'aborted');
    let naps: flyte.ActionRecord[] = [];
    for (const deadline = Date.now() + 10_000; ;) {
      naps = (await run.actions()).filter((a) => a.taskName === 'remote_slots.nap');
      if (naps.every((a) => a.endedAt !== null)) break;
      assert.ok(Date.now() < deadline, `every nap ended: ${naps.map((a) => `${a.name} ${a.phase}`).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(naps.length, 8);
    assert.deepEqual(new Set(naps.map((a) => a.phase)), new Set(['aborted']));
    assert.equal(naps.filter((a) => a.attempts > 0).length, 1, 'only the nap that held the slot ran');
  });
});
