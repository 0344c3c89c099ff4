/**
 * The Redis engine on a real Redis: idempotent enqueue, the gate of busy slots, parking, a deep chain at
 * concurrency 1, lock renewal and loss, takeover after SIGKILL, drain, dequeue, the wake bus, and the run slots
 * of `maxActionConcurrency`. Each test has
 * its own key prefix, whose keys are deleted afterwards.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { InitializationError } from '../src/errors.js';
import { openEngine, parseEngineUrl } from '../src/engine/index.js';
import type { ActionJob, Engine, Lease } from '../src/engine/index.js';
import { jobId, slotsKey } from '../src/engine/redis-engine.js';
import { deletePrefix, freshPrefix, rawRedis, redisSkip, urlWithPrefix } from './support/redis.js';

const skip = await redisSkip();
const QUEUE = 'env.test';

/** An engine on a fresh prefix; `cleanup` closes it (and the others opened on it) and deletes its keys. */
function freshEngine(): { engine: Engine; url: string; prefix: string; another: () => Engine } {
  const prefix = freshPrefix();
  const url = urlWithPrefix(prefix);
  const engines: Engine[] = [];
  const another = (): Engine => {
    const engine = openEngine(url);
    engines.push(engine);
    return engine;
  };
  cleanups.push(async () => {
    await Promise.all(engines.map((engine) => engine.close()));
    await deletePrefix(prefix);
  });
  return { engine: another(), url, prefix, another };
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function job(runName: string, actionName: string): ActionJob {
  return { queue: QUEUE, runName, actionName, taskName: 'env.task', module: 'src/tasks.ts', customContext: {} };
}

/** Resolves once `ready()` holds (checked every 5 ms); rejects after `timeoutMs`, saying what it waited for. */
async function until(what: string, ready: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise and its resolver. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('RedisEngine', { skip }, () => {
  it('enqueues idempotently, delivers once, and removes the job on completion', async () => {
    const { engine, prefix } = freshEngine();
    await engine.enqueue(job('r1', 'a0'));
    await engine.enqueue(job('r1', 'a0'));
    const redis = rawRedis();
    try {
      assert.equal(await redis.llen(`${prefix}:${QUEUE}:wait`), 1);
      const leases: Lease[] = [];
      const consumer = engine.consume([QUEUE], { concurrency: 4 }, (lease) => leases.push(lease));
      await until('the lease', () => leases.length === 1);
      assert.deepEqual(leases[0]!.job, job('r1', 'a0'));
      assert.equal(leases[0]!.redeliveries, 0);
      assert.equal(consumer.held, 1);
      // Enqueuing a held action adds nothing either.
      await engine.enqueue(job('r1', 'a0'));
      assert.equal(await redis.llen(`${prefix}:${QUEUE}:wait`), 0);
      await leases[0]!.complete();
      assert.equal(consumer.held, 0);
      assert.equal(await redis.exists(`${prefix}:${QUEUE}:${jobId('r1', 'a0')}`), 0);
      assert.equal(leases.length, 1);
      await consumer.drain(1_000);
    } finally {
      redis.disconnect();
    }
  });

  it('keeps at most `concurrency` leases busy', async () => {
    const { engine } = freshEngine();
    for (let i = 0; i < 6; i++) await engine.enqueue(job('r1', `a${i}`));
    let busy = 0;
    let maxBusy = 0;
    let done = 0;
    const consumer = engine.consume([QUEUE], { concurrency: 2 }, (lease) => {
      busy++;
      maxBusy = Math.max(maxBusy, busy);
      setTimeout(() => {
        busy--;
        void lease.complete().then(() => done++);
      }, 20);
    });
    await until('six completions', () => done === 6);
    assert.equal(maxBusy, 2);
    await consumer.drain(1_000);
  });

  it('gives a parked lease’s slot to another job, and takes it back on unpark', async () => {
    const { engine } = freshEngine();
    const leases = new Map<string, Lease>();
    const consumer = engine.consume([QUEUE], { concurrency: 1 }, (lease) => leases.set(lease.job.actionName, lease));
    await engine.enqueue(job('r1', 'parent'));
    await until('the parent', () => leases.has('parent'));
    leases.get('parent')!.park();
    assert.equal(consumer.busy, 0);
    await engine.enqueue(job('r1', 'child'));
    await until('the child, while the parent is parked', () => leases.has('child'));
    assert.equal(consumer.held, 2);
    leases.get('parent')!.unpark();
    assert.equal(consumer.busy, 2); // Past the concurrency, briefly: a resuming parent never waits.
    await leases.get('child')!.complete();
    await leases.get('parent')!.complete();
    assert.equal(consumer.held, 0);
    await consumer.drain(1_000);
  });

  it('runs a 30-deep chain at concurrency 1 (each parent parked on its child)', async () => {
    const { engine } = freshEngine();
    const depth = 30;
    const rootEnded = deferred<string>();
    const unwatchRoot = await engine.watchChildren('chain', 'root', (name) => rootEnded.resolve(name));
    const consumer = engine.consume([QUEUE], { concurrency: 1 }, (lease) => {
      void (async () => {
        const name = lease.job.actionName;
        const level = Number(name.slice(1));
        const parent = level === 0 ? 'root' : `a${level - 1}`;
        if (level < depth - 1) {
          const child = `a${level + 1}`;
          const ended = deferred();
          const unwatch = await engine.watchChildren('chain', name, (n) => n === child && ended.resolve());
          await engine.enqueue(job('chain', child));
          lease.park();
          await ended.promise;
          unwatch();
          lease.unpark();
        }
        await lease.complete();
        await engine.publishEnded('chain', parent, name);
      })();
    });
    await engine.enqueue(job('chain', 'a0'));
    assert.equal(await rootEnded.promise, 'a0');
    unwatchRoot();
    assert.equal(consumer.held, 0);
    await consumer.drain(1_000);
  });

  it('renews the lock of a parked lease: held 3 s with a 1 s lock, it is not redelivered', async () => {
    const { engine } = freshEngine();
    const leases: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1, lockMs: 1_000, stalledIntervalMs: 300 }, (lease) =>
      leases.push(lease),
    );
    await engine.enqueue(job('r1', 'a0'));
    await until('the lease', () => leases.length === 1);
    leases[0]!.park();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(leases.length, 1);
    assert.equal(leases[0]!.lost.aborted, false);
    leases[0]!.unpark();
    await leases[0]!.complete();
    await consumer.drain(1_000);
  });

  it('fires `lost` when the lock is taken away, and never completes that job', async () => {
    const { engine, prefix } = freshEngine();
    const leases: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1, lockMs: 1_000, stalledIntervalMs: 60_000 }, (lease) =>
      leases.push(lease),
    );
    await engine.enqueue(job('r1', 'a0'));
    await until('the lease', () => leases.length === 1);
    const redis = rawRedis();
    try {
      await redis.del(`${prefix}:${QUEUE}:${jobId('r1', 'a0')}:lock`);
      await until('lost', () => leases[0]!.lost.aborted, 2_000);
      assert.equal(consumer.held, 0);
      assert.equal(await leases[0]!.complete(), false, 'a no-op: the job is not ours any more');
      assert.equal(await redis.exists(`${prefix}:${QUEUE}:${jobId('r1', 'a0')}`), 1);
    } finally {
      redis.disconnect();
    }
    await consumer.drain(1_000);
  });

  it('takes over the job of a consumer killed with SIGKILL, with redeliveries >= 1', async () => {
    const { engine, url } = freshEngine();
    await engine.enqueue(job('r1', 'a0'));
    const fixture = fileURLToPath(new URL('./fixtures/engine-consumer.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--conditions=flyte-source', '--import', 'tsx', fixture, url, QUEUE, '1000'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = once(child, 'exit');
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    try {
      await until('the child’s lease', () => out.includes('leased: a0'), 15_000);
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    const killedAt = Date.now();
    const leases: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1, lockMs: 1_000, stalledIntervalMs: 300 }, (lease) =>
      leases.push(lease),
    );
    await until('the takeover', () => leases.length === 1, 5_000);
    assert.ok(leases[0]!.redeliveries >= 1, `redeliveries ${leases[0]!.redeliveries}`);
    assert.ok(Date.now() - killedAt < 5_000);
    await leases[0]!.complete();
    await consumer.drain(1_000);
  });

  it('drain hands a lease held past its grace back at once, and fires its `lost`', async () => {
    const { engine, another } = freshEngine();
    const first: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1, lockMs: 30_000 }, (lease) => first.push(lease));
    await engine.enqueue(job('r1', 'a0'));
    await until('the lease', () => first.length === 1);
    const second: Lease[] = [];
    const other = another().consume([QUEUE], { concurrency: 1, lockMs: 30_000 }, (lease) => second.push(lease));
    const started = Date.now();
    await consumer.drain(100);
    assert.equal(first[0]!.lost.aborted, true);
    assert.equal(consumer.held, 0);
    await until('the other consumer’s lease', () => second.length === 1, 3_000);
    assert.ok(Date.now() - started < 3_000, 'handed back long before the 30 s lock');
    assert.equal(second[0]!.redeliveries, 1);
    await second[0]!.complete();
    await other.drain(1_000);
  });

  it('drain hands a parked lease back at once, long before its grace', async () => {
    const { engine, another } = freshEngine();
    const first: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1, lockMs: 30_000 }, (lease) => first.push(lease));
    await engine.enqueue(job('r1', 'a0'));
    await until('the lease', () => first.length === 1);
    first[0]!.park(); // a parent waiting on children
    const second: Lease[] = [];
    const other = another().consume([QUEUE], { concurrency: 1, lockMs: 30_000 }, (lease) => second.push(lease));
    const drained = consumer.drain(60_000);
    // Bounded by the helper's deadline, far below the 60 s grace and the 30 s lock.
    await until('the parked lease taken by the other consumer', () => second.length === 1, 10_000);
    assert.equal(first[0]!.lost.aborted, true);
    await drained;
    await second[0]!.complete();
    await other.drain(1_000);
  });

  it('retryLater gives the job back for later, without firing `lost`; complete() then does nothing', async () => {
    const { engine } = freshEngine();
    const leases: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1, lockMs: 30_000 }, (lease) => leases.push(lease));
    await engine.enqueue(job('r1', 'a0'));
    await until('the lease', () => leases.length === 1);
    await leases[0]!.retryLater(300);
    assert.equal(leases[0]!.lost.aborted, false);
    assert.equal(consumer.held, 0);
    await leases[0]!.complete(); // no-op: the job is no longer this lease's
    await until('the job delivered again after its delay', () => leases.length === 2, 10_000);
    assert.equal(leases[1]!.job.actionName, 'a0');
    await leases[1]!.complete();
    await consumer.drain(1_000);
  });

  it('drain waits for held leases that complete within the grace', async () => {
    const { engine } = freshEngine();
    const leases: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1 }, (lease) => leases.push(lease));
    await engine.enqueue(job('r1', 'a0'));
    await until('the lease', () => leases.length === 1);
    const drained = consumer.drain(5_000);
    await leases[0]!.complete();
    await drained;
    assert.equal(leases[0]!.lost.aborted, false);
  });

  it('dequeue removes a waiting job and not a held one', async () => {
    const { engine, prefix } = freshEngine();
    const leases: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1 }, (lease) => leases.push(lease));
    await engine.enqueue(job('r1', 'held'));
    await until('the lease', () => leases.length === 1);
    await engine.enqueue(job('r1', 'waiting'));
    assert.deepEqual(await engine.dequeue(QUEUE, 'r1', ['held', 'waiting', 'absent']), ['waiting']);
    const redis = rawRedis();
    try {
      assert.equal(await redis.exists(`${prefix}:${QUEUE}:${jobId('r1', 'held')}`), 1);
      assert.equal(await redis.exists(`${prefix}:${QUEUE}:${jobId('r1', 'waiting')}`), 0);
    } finally {
      redis.disconnect();
    }
    await leases[0]!.complete();
    await consumer.drain(1_000);
    assert.equal(leases.length, 1);
  });

  it('job ids keep separators apart and contain no colon', async () => {
    assert.notEqual(jobId('a|b', 'c'), jobId('a', 'b|c'));
    assert.ok(!jobId('run:1', 'a:0').includes(':'));
    const { engine } = freshEngine();
    await engine.enqueue(job('run:1', 'a:0'));
    const leases: Lease[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1 }, (lease) => leases.push(lease));
    await until('the lease', () => leases.length === 1);
    assert.equal(leases[0]!.job.runName, 'run:1');
    await leases[0]!.complete();
    await consumer.drain(1_000);
  });

  it('wake bus: watchChildren, ref-counted unwatch, and abort notices', async () => {
    const { engine, another } = freshEngine();
    const publisher = another();
    const got: string[] = [];
    const alsoGot: string[] = [];
    const unwatch = await engine.watchChildren('r1', 'p', (name) => got.push(name));
    const unwatchToo = await engine.watchChildren('r1', 'p', (name) => alsoGot.push(name));
    await publisher.publishEnded('r1', 'p', 'c1');
    await until('c1', () => got.length === 1 && alsoGot.length === 1);
    unwatch();
    await publisher.publishEnded('r1', 'p', 'c2');
    await until('c2 by the remaining watcher', () => alsoGot.length === 2);
    assert.deepEqual(got, ['c1']);
    unwatchToo();
    // A barrier: a message on another channel, on the same connection, arrives after c3 would have.
    const barrier = deferred();
    const unwatchBarrier = await engine.watchChildren('r1', 'q', () => barrier.resolve());
    await publisher.publishEnded('r1', 'p', 'c3');
    await publisher.publishEnded('r1', 'q', 'x');
    await barrier.promise;
    unwatchBarrier();
    assert.deepEqual(alsoGot, ['c1', 'c2']);

    const notices: unknown[] = [];
    engine.onAbort((notice) => notices.push(notice));
    // onAbort subscribes in the background; publish until the first notice arrives.
    await until(
      'the abort notice',
      () => {
        if (notices.length === 0) void publisher.publishAbort({ runName: 'r1', actionName: null });
        return notices.length > 0;
      },
      3_000,
    );
    assert.deepEqual(notices[0], { runName: 'r1', actionName: null });
  });

  it('hands out a job marked deferredFailure (stalled too often) saying so, for its holder to fail', async () => {
    const { engine, prefix } = freshEngine();
    await engine.enqueue(job('r1', 'doomed'));
    const redis = rawRedis();
    try {
      // What BullMQ's stalled check writes past maxStalledCount.
      await redis.hset(`${prefix}:${QUEUE}:${jobId('r1', 'doomed')}`, 'defa', 'job stalled more than allowable limit');
      await engine.enqueue(job('r1', 'fine'));
      const leases: Lease[] = [];
      const consumer = engine.consume([QUEUE], { concurrency: 1 }, (lease) => leases.push(lease));
      await until('the first job', () => leases.length === 1);
      assert.deepEqual(
        [leases[0]!.job.actionName, leases[0]!.deferredFailure],
        ['doomed', 'job stalled more than allowable limit'],
      );
      assert.equal(await leases[0]!.complete(), true, 'its holder completes it');
      assert.equal(await redis.exists(`${prefix}:${QUEUE}:${jobId('r1', 'doomed')}`), 0);
      await until('the second job', () => leases.length === 2);
      assert.deepEqual([leases[1]!.job.actionName, leases[1]!.deferredFailure], ['fine', undefined]);
      await leases[1]!.complete();
      await consumer.drain(1_000);
    } finally {
      redis.disconnect();
    }
  });

  it('consumes several queues under one gate (concurrency 2)', async () => {
    const { engine } = freshEngine();
    const other = 'env.other';
    await engine.enqueue(job('r1', 'a'));
    await engine.enqueue({ ...job('r1', 'b'), queue: other });
    const leases: Lease[] = [];
    const consumer = engine.consume([QUEUE, other], { concurrency: 2 }, (lease) => leases.push(lease));
    await until('both jobs', () => leases.length === 2);
    assert.deepEqual(leases.map((lease) => lease.job.queue).sort(), [other, QUEUE].sort());
    await Promise.all(leases.map((lease) => lease.complete()));
    await consumer.drain(1_000);
  });

  it('serves every queue at concurrency 1, even while one has a backlog', async () => {
    const { engine } = freshEngine();
    const other = 'env.other';
    for (let i = 0; i < 5; i++) await engine.enqueue(job('r1', `a${i}`));
    await engine.enqueue({ ...job('r1', 'b'), queue: other });
    const order: string[] = [];
    const consumer = engine.consume([QUEUE, other], { concurrency: 1 }, (lease) => {
      order.push(lease.job.actionName);
      void lease.complete();
    });
    await until('six jobs', () => order.length === 6, 5_000);
    assert.ok(order.indexOf('b') < 5, `the other queue's job came last: ${order.join(' ')}`);
    await consumer.drain(1_000);
  });

  it('calls onReconnect after the subscriber connection is killed, and watches survive it', async () => {
    const { engine, prefix, another } = freshEngine();
    const publisher = another();
    const got: string[] = [];
    const unwatch = await engine.watchChildren('r1', 'p', (name) => got.push(name));
    let reconnects = 0;
    engine.onReconnect(() => reconnects++);
    const redis = rawRedis();
    try {
      const clients = await redis.client('LIST');
      const line = String(clients)
        .split('\n')
        .find((l) => l.includes(` name=flyte-${prefix}-sub `));
      assert.ok(line !== undefined, 'the subscriber connection is named');
      const id = /\bid=(\d+)/.exec(line)![1]!;
      await redis.client('KILL', 'ID', id);
    } finally {
      redis.disconnect();
    }
    await until('onReconnect', () => reconnects === 1, 5_000);
    await until(
      'a message after the reconnect',
      () => {
        if (got.length === 0) void publisher.publishEnded('r1', 'p', 'c1');
        return got.length > 0;
      },
      3_000,
    );
    assert.equal(got[0], 'c1');
    unwatch();
  });

  it('consume refuses bad options at once', () => {
    const { engine } = freshEngine();
    const nothing = (): void => undefined;
    assert.throws(() => engine.consume([], { concurrency: 1 }, nothing), /at least one queue/);
    assert.throws(() => engine.consume([QUEUE], { concurrency: 0 }, nothing), /concurrency .* received 0/);
    assert.throws(() => engine.consume([QUEUE], { concurrency: 1, lockMs: -5 }, nothing), /lockMs .* received -5/);
    assert.throws(() => engine.consume(['a:b'], { concurrency: 1 }, nothing), /without ':', received 'a:b'/);
  });

  it('fails fast with InitializationError when Redis cannot be reached, and closes twice', async () => {
    const engine = openEngine('redis://127.0.0.1:1?prefix=nowhere', { connectTimeoutMs: 2_000 });
    const started = Date.now();
    await assert.rejects(engine.enqueue(job('r1', 'a0')), (e: unknown) => {
      assert.ok(e instanceof InitializationError);
      assert.match(e.message, /not reachable at redis:\/\/127\.0\.0\.1:1/);
      return true;
    });
    assert.ok(Date.now() - started < 2_500);
    await engine.close();
    await engine.close();
  });

  it('a consumer that cannot reach Redis says so through onError, once, and drains', async () => {
    const engine = openEngine('redis://127.0.0.1:1?prefix=nowhere', { connectTimeoutMs: 2_000 });
    const errors: Error[] = [];
    const consumer = engine.consume([QUEUE], { concurrency: 1, onError: (e) => errors.push(e) }, () => {
      throw new Error('no job can come');
    });
    await until('the error', () => errors.length > 0, 3_000);
    assert.ok(errors[0] instanceof InitializationError);
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // Two more attempts, not reported again.
    assert.equal(errors.length, 1);
    await consumer.drain(100);
    await engine.close();
  });
});

describe('RedisEngine run slots', { skip }, () => {
  it('takes at most max slots, re-acquiring a held one is a no-op, and release is idempotent', async () => {
    const { engine, prefix, another } = freshEngine();
    const other = another();
    assert.equal(await engine.tryAcquireSlot('r', 'a', 2), true);
    assert.equal(await other.tryAcquireSlot('r', 'b', 2), true);
    assert.equal(await other.tryAcquireSlot('r', 'c', 2), false, 'both slots are held');
    // The same holder again (a takeover): held, and no second slot taken.
    assert.equal(await other.tryAcquireSlot('r', 'a', 2), true);
    await other.acquireSlot('r', 'a', 2);
    const redis = rawRedis();
    try {
      assert.deepEqual((await redis.zrange(slotsKey(prefix, 'r'), '0', '-1')).sort(), ['a', 'b']);
      assert.ok((await redis.pttl(slotsKey(prefix, 'r'))) > 0, 'the slots expire');
      // Runs are independent.
      assert.equal(await engine.tryAcquireSlot('r2', 'c', 2), true);
      await engine.releaseSlot('r', 'a');
      await engine.releaseSlot('r', 'a');
      await engine.releaseSlot('r', 'nobody');
      assert.equal(await other.tryAcquireSlot('r', 'c', 2), true);
      assert.equal(await other.tryAcquireSlot('r', 'd', 2), false, 'one release frees one slot');
      await engine.clearSlots('r');
      assert.equal(await redis.exists(slotsKey(prefix, 'r')), 0);
      assert.equal(await redis.exists(slotsKey(prefix, 'r2')), 1);
    } finally {
      redis.disconnect();
    }
    await assert.rejects(engine.tryAcquireSlot('r', 'x', 0), /integer >= 1, received 0/);
  });

  it('wakes a waiter of another engine on release, well before the poll', async () => {
    const { engine, another } = freshEngine();
    const other = another();
    await engine.acquireSlot('r', 'a', 1);
    let got = false;
    const waiting = other.acquireSlot('r', 'b', 1).then(() => (got = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(got, false, 'the waiter waits while the slot is held');
    const released = Date.now();
    await engine.releaseSlot('r', 'a');
    await waiting;
    // Its poll would come about 400 ms after the release: well before that, it was the release's message.
    assert.ok(Date.now() - released < 300, `woken by the release after ${Date.now() - released} ms`);
    assert.equal(await engine.tryAcquireSlot('r', 'c', 1), false, 'the waiter holds the slot now');
  });

  it('never lets more than max holders in at once, with many waiters on several engines', async () => {
    const { engine, another } = freshEngine();
    const engines = [engine, another(), another()];
    const max = 3;
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const e = engines[i % engines.length]!;
        await e.acquireSlot('r', `h${i}`, max);
        inside++;
        most = Math.max(most, inside);
        await new Promise((resolve) => setTimeout(resolve, 10 + (i % 5) * 5));
        inside--;
        await e.releaseSlot('r', `h${i}`);
      }),
    );
    assert.equal(most, max);
  });

  it('stops waiting when its signal fires, holding no slot', async () => {
    const { engine } = freshEngine();
    await engine.acquireSlot('r', 'a', 1);
    const controller = new AbortController();
    const waiting = engine.acquireSlot('r', 'b', 1, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const reason = new Error('stop waiting');
    controller.abort(reason);
    await assert.rejects(waiting, (e: unknown) => e === reason);
    await engine.releaseSlot('r', 'a');
    assert.equal(await engine.tryAcquireSlot('r', 'c', 1), true, 'b took no slot');
    // Aborted before the call: rejects at once, takes nothing.
    await engine.releaseSlot('r', 'c');
    await assert.rejects(engine.acquireSlot('r', 'd', 1, AbortSignal.abort(reason)), (e: unknown) => e === reason);
    assert.equal(await engine.tryAcquireSlot('r', 'e', 1), true);
  });
});

describe('parseEngineUrl', () => {
  it('reads host, port, db, credentials and prefix, and hides the password', () => {
    const url = parseEngineUrl('redis://me:s3cret@redis.local:6380/2?prefix=ci_1-a');
    assert.equal(url.host, 'redis.local');
    assert.equal(url.port, 6380);
    assert.equal(url.db, 2);
    assert.equal(url.username, 'me');
    assert.equal(url.password, 's3cret');
    assert.equal(url.tls, false);
    assert.equal(url.prefix, 'ci_1-a');
    assert.ok(!url.description.includes('s3cret'));
    assert.match(url.description, /me:\*\*\*@redis\.local/);
  });

  it('has defaults, and TLS for rediss://', () => {
    const url = parseEngineUrl('rediss://127.0.0.1');
    assert.deepEqual(
      { port: url.port, db: url.db, prefix: url.prefix, tls: url.tls, user: url.username, pw: url.password },
      { port: 6379, db: 0, prefix: 'flyte', tls: true, user: undefined, pw: undefined },
    );
  });

  for (const [bad, why] of [
    ['not a url', /not a URL/],
    ['http://127.0.0.1:6379', /scheme must be redis or rediss, not 'http'/],
    ['redis://127.0.0.1:6379/x', /database number, not '\/x'/],
    ['redis://127.0.0.1:6379?prefix=a:b', /prefix must be letters, digits, '_' and '-', not 'a:b'/],
    ['redis://127.0.0.1:6379?prefix=', /prefix must be/],
    ['redis://127.0.0.1:6379?db=1', /unknown parameter 'db'/],
    ['redis://u:hunter2@127.0.0.1:6379/x', /received 'redis:\/\/u:\*\*\*@127\.0\.0\.1:6379\/x'/],
  ] as const) {
    it(`rejects ${bad}`, () => {
      assert.throws(
        () => parseEngineUrl(bad),
        (e: unknown) => {
          assert.ok(e instanceof InitializationError);
          assert.match(e.message, why);
          assert.match(e.message, /expected redis:\/\//);
          assert.ok(!e.message.includes('hunter2'));
          return true;
        },
      );
    });
  }
});
