/**
 * The async primitives around task calls, through the public API: gather, asCompleted, Semaphore, group, ctx
 * and customContext, and plain Promise combinators over task calls.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';
import { Gates, Tracker, settle } from './support/gates.js';

/** A hang (e.g. a gate never opened) fails the suite instead of blocking the test run. */
const SUITE_TIMEOUT_MS = 30_000;

const env = new flyte.TaskEnvironment({ name: 'partest' });

let gates = new Gates();
let tracker = new Tracker();
/** What a consumer received, in order. */
let consumer = new Tracker();
let scenario: () => Promise<unknown> = () => Promise.resolve();

export const root = env.task(async function root() {
  await scenario();
});

/** Waits for its gate; ids starting with `fail` then throw a RangeError. */
export const gated = env.task(async function gated(id: string): Promise<string> {
  const t = tracker;
  t.enter(id);
  try {
    await gates.wait(id);
  } finally {
    t.leave(id);
  }
  if (id.startsWith('fail')) throw new RangeError(`${id} failed`);
  return id;
});

export const quick = env.task(async function quick(x: number): Promise<number> {
  if (x < 0) throw new RangeError(`negative: ${x}`);
  return x;
});

/** What `flyte.ctx()` shows inside a child, and what its own child sees. */
export const contextOfChild = env.task(async function contextOfChild(withGrandchild: boolean) {
  const c = flyte.ctx()!;
  const mine = {
    runName: c.runName,
    action: c.action,
    taskName: c.taskName,
    attempt: c.attempt,
    mode: c.mode,
    group: c.group,
    customContext: c.customContext,
    signalAborted: c.signal.aborted,
  };
  const grandchild: unknown = withGrandchild ? await contextOfChild(false) : null;
  return { mine, grandchild };
});

async function startScenario(body: () => Promise<unknown>): Promise<flyte.Run> {
  scenario = body;
  return flyte.run(root);
}

async function runScenario(body: () => Promise<unknown>): Promise<flyte.Run> {
  const run = await startScenario(body);
  await run.outputs();
  return run;
}

function childrenOf(actions: readonly flyte.ActionRecord[]): flyte.ActionRecord[] {
  return actions.filter((a) => a.parentName === 'a0');
}

describe('parallel primitives', { timeout: SUITE_TIMEOUT_MS }, () => {
  useFlyteRoot('flyte-parallel-', { store: 'memory:' });
  beforeEach(() => {
    gates = new Gates();
    tracker = new Tracker();
    consumer = new Tracker();
  });

  describe('flyte.gather', () => {
    it('is Promise.all over task calls: results in order, the first rejection rejects', async () => {
      let results: unknown;
      let error: unknown;
      await runScenario(async () => {
        results = await flyte.gather([quick(1), quick(2), quick(3)]);
        error = await flyte.gather([quick(1), quick(-2), quick(-3)]).then(
          () => undefined,
          (err: unknown) => err,
        );
      });
      assert.deepEqual(results, [1, 2, 3]);
      assert.ok(error instanceof flyte.errors.RuntimeUserError, String(error));
      assert.equal(error.code, 'RangeError');
      assert.equal(error.message, 'negative: -2');
    });

    it('with returnExceptions, puts each error in its place', async () => {
      let results: unknown[] = [];
      await runScenario(async () => {
        results = await flyte.gather([quick(1), quick(-2), quick(3)], { returnExceptions: true });
      });
      assert.equal(results[0], 1);
      assert.ok(results[1] instanceof flyte.errors.RuntimeUserError);
      assert.equal(results[1].code, 'RangeError');
      assert.equal(results[2], 3);
    });

    it('works on plain promises outside a run, wrapping non-Error rejections', async () => {
      const results = await flyte.gather(
        [Promise.resolve(1), Promise.reject(new Error('x')), 3, Promise.reject('bare')],
        {
          returnExceptions: true,
        },
      );
      assert.equal(results[0], 1);
      assert.ok(results[1] instanceof Error && results[1].message === 'x');
      assert.equal(results[2], 3);
      assert.ok(results[3] instanceof Error && results[3].message === 'bare');
      await assert.rejects(flyte.gather([Promise.resolve(1), Promise.reject(new Error('y'))]), /y/);
      await assert.rejects(flyte.gather('nope' as never), TypeError);
    });
  });

  describe('flyte.asCompleted', () => {
    it('yields task results in completion order', async () => {
      const run = await startScenario(async () => {
        for await (const id of flyte.asCompleted([gated('a'), gated('b'), gated('c')])) consumer.enter(id);
      });
      await tracker.untilStarted(3);
      for (const [i, id] of ['b', 'c', 'a'].entries()) {
        gates.open(id);
        await consumer.untilStarted(i + 1);
      }
      await run.outputs();
      assert.deepEqual(consumer.started, ['b', 'c', 'a']);
    });

    it('throws a rejection at its turn, after the values that settled before it', async () => {
      let error: unknown;
      const run = await startScenario(async () => {
        try {
          for await (const id of flyte.asCompleted([gated('ok1'), gated('fail2'), gated('ok3')])) consumer.enter(id);
        } catch (err) {
          error = err;
        }
      });
      await tracker.untilStarted(3);
      gates.open('ok3');
      await consumer.untilStarted(1);
      gates.open('fail2');
      await tracker.untilFinished(2);
      gates.open('ok1');
      await run.outputs();
      assert.deepEqual(consumer.started, ['ok3']);
      assert.ok(error instanceof flyte.errors.RuntimeUserError, String(error));
      assert.equal(error.code, 'RangeError');
      assert.equal(error.message, 'fail2 failed');
    });

    it('works on plain promises and values, and refuses a non-iterable', async () => {
      const seen: number[] = [];
      let release!: () => void;
      const later = new Promise<number>((resolve) => (release = () => resolve(1)));
      const iterating = (async () => {
        for await (const v of flyte.asCompleted([later, Promise.resolve(2), 3])) {
          seen.push(v);
          if (seen.length === 2) release();
        }
      })();
      await iterating;
      assert.deepEqual(seen, [2, 3, 1]);
      assert.throws(() => flyte.asCompleted(42 as never), TypeError, 'a bad argument throws at the call');
    });
  });

  describe('flyte.Semaphore', () => {
    it('bounds concurrent task calls with run()', async () => {
      const ids = ['s0', 's1', 's2', 's3', 's4', 's5'];
      let results: unknown;
      const run = await startScenario(async () => {
        const sem = new flyte.Semaphore(2);
        results = await Promise.all(ids.map((id) => sem.run(() => gated(id))));
      });
      for (let done = 0; done < ids.length; done++) {
        const expected = Math.min(done + 2, ids.length);
        await tracker.untilStarted(expected);
        await settle();
        assert.equal(tracker.started.length, expected);
        gates.open(tracker.started[done]!);
        await tracker.untilFinished(done + 1);
      }
      await run.outputs();
      assert.equal(tracker.maxInFlight, 2);
      assert.deepEqual(results, ids);
    });

    it('acquire waits for a release, first come first served', async () => {
      const sem = new flyte.Semaphore(2);
      await sem.acquire();
      await sem.acquire();
      assert.equal(sem.available, 0);
      assert.equal(sem.tryAcquire(), false);
      const order: string[] = [];
      const third = sem.acquire().then(() => order.push('third'));
      const fourth = sem.acquire().then(() => order.push('fourth'));
      await settle();
      assert.deepEqual(order, [], 'no permit is free');
      sem.release();
      await third;
      await settle();
      assert.deepEqual(order, ['third']);
      sem.release();
      await fourth;
      assert.deepEqual(order, ['third', 'fourth']);
      sem.release();
      sem.release();
      assert.equal(sem.available, 2);
    });

    it('run() releases its permit when the function throws', async () => {
      const sem = new flyte.Semaphore(1);
      await assert.rejects(
        sem.run(() => {
          throw new Error('inside');
        }),
        /inside/,
      );
      await assert.rejects(
        sem.run(() => Promise.reject(new Error('async inside'))),
        /async inside/,
      );
      assert.equal(sem.available, 1);
      assert.equal(await sem.run(() => 'value'), 'value');
    });

    it('refuses a permit count that is not a positive integer', () => {
      for (const n of [0, -1, 1.5, NaN]) assert.throws(() => new flyte.Semaphore(n), RangeError);
    });
  });

  describe('flyte.group', () => {
    it('sets the group of the actions created inside; the innermost group wins', async () => {
      const groupsSeen: Array<string | null | undefined> = [];
      const run = await runScenario(async () => {
        await quick(0);
        await flyte.group('prep', async () => {
          groupsSeen.push(flyte.ctx()?.group);
          await Promise.all([quick(1), quick(2)]);
          await flyte.group('inner', () => quick(3));
          await quick(4);
        });
        groupsSeen.push(flyte.ctx()?.group);
        await quick(5);
      });
      assert.deepEqual(groupsSeen, ['prep', null]);
      const byInput = new Map<unknown, string | null>();
      for (const c of childrenOf(await run.actions())) {
        byInput.set((await run.action(c.name).inputs())?.[0], c.group);
      }
      assert.deepEqual(
        [...byInput.entries()].sort((a, b) => (a[0] as number) - (b[0] as number)),
        [
          [0, null],
          [1, 'prep'],
          [2, 'prep'],
          [3, 'inner'],
          [4, 'prep'],
          [5, null],
        ],
      );
    });

    it('outside a run just calls the function; refuses a bad name', async () => {
      assert.equal(
        flyte.group('g', () => 7),
        7,
      );
      assert.equal(await flyte.group('g', async () => quick(8)), 8);
      assert.throws(() => flyte.group('', () => 1), TypeError);
      assert.throws(() => flyte.group('g', 'not a function' as never), TypeError);
    });
  });

  describe('flyte.ctx and flyte.customContext', () => {
    it('ctx() is undefined outside a task', () => {
      assert.equal(flyte.ctx(), undefined);
    });

    it('ctx() describes the running action', async () => {
      let rootCtx: flyte.TaskContext | undefined;
      let childCtx: unknown;
      const run = await runScenario(async () => {
        rootCtx = flyte.ctx();
        childCtx = await flyte.group('looked-at', () => contextOfChild(false));
      });
      assert.ok(rootCtx !== undefined);
      assert.equal(rootCtx.runName, run.name);
      assert.deepEqual(rootCtx.action, { name: 'a0', runName: run.name });
      assert.equal(rootCtx.taskName, 'partest.root');
      assert.equal(rootCtx.attempt, 1);
      assert.equal(rootCtx.mode, 'local');
      assert.equal(rootCtx.group, null);
      assert.deepEqual(rootCtx.customContext, {});
      assert.ok(rootCtx.signal instanceof AbortSignal);
      assert.equal(rootCtx.signal.aborted, false);
      const [child] = childrenOf(await run.actions());
      assert.deepEqual((childCtx as { mine: unknown }).mine, {
        runName: run.name,
        action: { name: child!.name, runName: run.name },
        taskName: 'partest.contextOfChild',
        attempt: 1,
        mode: 'local',
        group: null, // the group is where the action was created, not inside its body
        customContext: {},
        signalAborted: false,
      });
      assert.equal(child!.group, 'looked-at');
    });

    it('customContext reaches children and grandchildren, merged with the run context', async () => {
      let seen: unknown;
      let after: unknown;
      scenario = async () => {
        seen = await flyte.customContext({ region: 'us', job: '42' }, () => contextOfChild(true));
        after = flyte.ctx()!.customContext;
      };
      const run = await flyte.withRunContext({ customContext: { tenant: 'acme', region: 'eu' } }).run(root);
      await run.outputs();
      const { mine, grandchild } = seen as {
        mine: { customContext: unknown };
        grandchild: { mine: { customContext: unknown } };
      };
      assert.deepEqual(mine.customContext, { tenant: 'acme', region: 'us', job: '42' });
      assert.deepEqual(grandchild.mine.customContext, { tenant: 'acme', region: 'us', job: '42' });
      assert.deepEqual(after, { tenant: 'acme', region: 'eu' }, 'the block does not leak into its caller');
    });

    it('customContext outside a run calls the function; refuses non-string values', () => {
      assert.equal(
        flyte.customContext({ a: 'b' }, () => 'called'),
        'called',
      );
      assert.throws(() => flyte.customContext({ n: 1 } as never, () => 0), TypeError);
      assert.throws(() => flyte.customContext(null as never, () => 0), TypeError);
    });
  });

  describe('Promise combinators over task calls', () => {
    it('Promise.allSettled and Promise.race behave as in plain JavaScript', async () => {
      let settled: PromiseSettledResult<number>[] = [];
      let winner: unknown;
      const run = await startScenario(async () => {
        settled = await Promise.allSettled([quick(1), quick(-1)]);
        winner = await Promise.race([gated('slow'), gated('fast')]);
        gates.open('slow');
      });
      await tracker.untilStarted(2);
      gates.open('fast');
      await run.outputs();
      assert.equal(settled[0]?.status, 'fulfilled');
      assert.equal(settled[1]?.status, 'rejected');
      const reason: unknown = settled[1].reason;
      assert.ok(reason instanceof flyte.errors.RuntimeUserError);
      assert.equal(winner, 'fast');
    });
  });
});
