/**
 * `flyte.map` through the public API: order, concurrency, errors, streaming, zipping, partial, groups, abort,
 * laziness and argument checks. Each scenario runs as the body of one top-level root task, so it can hold the
 * map's results (errors included) in variables and the test can orchestrate the items with gates.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';
import { Gates, Tracker, settle } from './support/gates.js';

/** A hang (e.g. a gate never opened) fails the suite instead of blocking the test run. */
const SUITE_TIMEOUT_MS = 30_000;

const env = new flyte.TaskEnvironment({ name: 'maptest' });

let gates = new Gates();
/** Item bodies: started, finished, in flight. */
let tracker = new Tracker();
/** What the consumer of a map received, in order (entered as it receives). */
let consumer = new Tracker();
/** Items whose signal fired. */
let aborted = new Set<string>();
let scenario: () => Promise<unknown> = () => Promise.resolve();

export const root = env.task(async function root() {
  await scenario();
});

/** Waits for its gate; ids starting with `fail` then throw a TypeError. */
export const gated = env.task(async function gated(id: string): Promise<string> {
  const t = tracker;
  const seenAborts = aborted;
  flyte.ctx()?.signal.addEventListener('abort', () => seenAborts.add(id));
  t.enter(id);
  try {
    await gates.wait(id);
  } finally {
    t.leave(id);
  }
  if (id.startsWith('fail')) throw new TypeError(`item ${id} failed`);
  return id;
});

/** Doubles `x` at once; a negative `x` throws a TypeError. */
export const instant = env.task(async function instant(x: number): Promise<number> {
  tracker.enter(String(x));
  tracker.leave(String(x));
  if (x < 0) throw new TypeError(`negative: ${x}`);
  return x * 2;
});

/** Doubles `x` after a delay that makes later items finish first. */
export const gatedInstantly = env.task(async function gatedInstantly(x: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, (20 - x) * 2));
  return x * 2;
});

export const add = env.task(async function add(a: number, b: number) {
  return a + b;
});

export const add3 = env.task(async function add3(a: number, b: number, c: string) {
  return `${c}${a + b}`;
});

export const scale = env.task(async function scale(factor: number, x: number) {
  return factor * x;
});

/** Starts a run of `body`; the caller orchestrates it and then awaits `run.outputs()`. */
async function startScenario(body: () => Promise<unknown>): Promise<flyte.Run> {
  scenario = body;
  return flyte.run(root);
}

/** Runs `body` as the root of a run to its end; rejects with the run's error. */
async function runScenario(body: () => Promise<unknown>): Promise<flyte.Run> {
  const run = await startScenario(body);
  await run.outputs();
  return run;
}

function childrenOf(actions: readonly flyte.ActionRecord[]): flyte.ActionRecord[] {
  return actions.filter((a) => a.parentName === 'a0');
}

/** The first argument each child action was called with, by child name. */
async function childInputs(run: flyte.Run): Promise<Map<unknown, flyte.ActionRecord>> {
  const byInput = new Map<unknown, flyte.ActionRecord>();
  for (const c of childrenOf(await run.actions())) {
    const inputs = await run.action(c.name).inputs();
    byInput.set(inputs?.[0], c);
  }
  return byInput;
}

/** A generator that counts how many items were pulled from it. */
function counted<T>(items: readonly T[]): { iterable: Iterable<T>; pulled: () => number } {
  let pulled = 0;
  return {
    iterable: (function* () {
      for (const item of items) {
        pulled++;
        yield item;
      }
    })(),
    pulled: () => pulled,
  };
}

describe('flyte.map', { timeout: SUITE_TIMEOUT_MS }, () => {
  useFlyteRoot('flyte-map-', { store: 'memory:' });
  beforeEach(() => {
    gates = new Gates();
    tracker = new Tracker();
    consumer = new Tracker();
    aborted = new Set();
  });

  it('returns results in input order whatever the completion order', async () => {
    let results: unknown;
    const run = await startScenario(async () => {
      results = await flyte.map(gated, ['a', 'b', 'c', 'd']);
    });
    await tracker.untilStarted(4);
    for (const [i, id] of ['d', 'b', 'c', 'a'].entries()) {
      gates.open(id);
      await tracker.untilFinished(i + 1);
    }
    await run.outputs();
    assert.deepEqual(tracker.finished, ['d', 'b', 'c', 'a']);
    assert.deepEqual(results, ['a', 'b', 'c', 'd']);
  });

  it('runs exactly `concurrency` items at a time', async () => {
    const ids = ['i0', 'i1', 'i2', 'i3', 'i4', 'i5', 'i6'];
    let results: unknown;
    const run = await startScenario(async () => {
      results = await flyte.map(gated, ids, { concurrency: 3 });
    });
    for (let done = 0; done < ids.length; done++) {
      const expected = Math.min(done + 3, ids.length);
      await tracker.untilStarted(expected);
      await settle();
      assert.equal(tracker.started.length, expected, `with ${done} finished, ${expected} have started`);
      assert.equal(tracker.inFlight, expected - done);
      // Finish them out of order: the newest running item first.
      const running = tracker.started.filter((id) => !tracker.finished.includes(id));
      gates.open(running[running.length - 1]!);
      await tracker.untilFinished(done + 1);
    }
    await run.outputs();
    assert.equal(tracker.maxInFlight, 3);
    assert.deepEqual(results, ids);
  });

  it('runs every item at once with concurrency 0, the default', { timeout: 10_000 }, async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `u${i}`);
    for (const options of [{ concurrency: 0 }, {}]) {
      tracker = new Tracker();
      gates = new Gates();
      let results: unknown;
      const run = await startScenario(async () => {
        results = await flyte.map(gated, ids, options);
      });
      await tracker.untilStarted(ids.length); // would never resolve if the map held items back
      assert.equal(tracker.inFlight, ids.length);
      gates.openAll();
      await run.outputs();
      assert.deepEqual(results, ids);
    }
  });

  it('returns failed items as RuntimeUserError in place by default, and runs every item', async () => {
    let results: unknown[] = [];
    const run = await runScenario(async () => {
      results = await flyte.map(instant, [1, -2, 3, -4]);
    });
    assert.equal(results[0], 2);
    assert.equal(results[2], 6);
    const byInput = await childInputs(run);
    for (const i of [1, 3]) {
      const err = results[i];
      assert.ok(err instanceof flyte.errors.RuntimeUserError, String(err));
      assert.equal(err.code, 'TypeError');
      assert.equal(err.message, `negative: ${-(i + 1)}`);
      assert.equal(err.actionName, byInput.get(-(i + 1))?.name);
    }
    assert.equal(byInput.size, 4);
    assert.deepEqual(
      [...byInput.entries()].map(([x, a]) => [x, a.phase]),
      [
        [1, 'succeeded'],
        [-2, 'failed'],
        [3, 'succeeded'],
        [-4, 'failed'],
      ],
    );
  });

  it('with returnExceptions false, rejects at the first failure and aborts the items in flight', async () => {
    let error: unknown;
    const run = await startScenario(async () => {
      try {
        await flyte.map(gated, ['s0', 's1', 'fail2', 's3'], { returnExceptions: false });
      } catch (err) {
        error = err;
      }
    });
    await tracker.untilStarted(4);
    gates.open('fail2');
    await run.outputs();
    assert.ok(error instanceof flyte.errors.RuntimeUserError, String(error));
    assert.equal(error.code, 'TypeError');
    assert.equal(error.message, 'item fail2 failed');
    const byInput = await childInputs(run);
    assert.equal(byInput.get('fail2')?.phase, 'failed');
    for (const id of ['s0', 's1', 's3']) {
      assert.equal(byInput.get(id)?.phase, 'aborted', id);
      assert.equal(byInput.get(id)?.error?.code, 'ActionAbortedError');
      assert.ok(aborted.has(id), `${id} saw its signal fire`);
    }
    assert.ok(!aborted.has('fail2'));
  });

  it('with returnExceptions false, starts no new item after the failure', async () => {
    let error: unknown;
    const run = await startScenario(async () => {
      error = await flyte.map(gated, ['fail0', 'n1', 'n2'], { returnExceptions: false, concurrency: 1 }).then(
        () => undefined,
        (err: unknown) => err,
      );
    });
    await tracker.untilStarted(1);
    gates.open('fail0');
    await run.outputs();
    await settle();
    assert.ok(error instanceof flyte.errors.RuntimeUserError);
    assert.deepEqual(tracker.started, ['fail0']);
    assert.equal(childrenOf(await run.actions()).length, 1);
  });

  it('streams in input order with for await', async () => {
    const run = await startScenario(async () => {
      for await (const id of flyte.map(gated, ['a', 'b', 'c'])) consumer.enter(id as string);
    });
    await tracker.untilStarted(3);
    gates.open('b');
    gates.open('c');
    await tracker.untilFinished(2);
    await settle();
    assert.deepEqual(consumer.started, [], 'nothing is yielded before the first item is done');
    gates.open('a');
    await run.outputs();
    assert.deepEqual(consumer.started, ['a', 'b', 'c']);
  });

  it('yields each result as soon as it is its turn, before later items finish', async () => {
    const run = await startScenario(async () => {
      for await (const id of flyte.map(gated, ['first', 'second'])) consumer.enter(id as string);
    });
    await tracker.untilStarted(2);
    gates.open('first');
    await consumer.untilStarted(1);
    assert.deepEqual(tracker.finished, ['first'], 'the second item is still running');
    gates.open('second');
    await run.outputs();
    assert.deepEqual(consumer.started, ['first', 'second']);
  });

  it('streams in completion order with .asCompleted()', async () => {
    const run = await startScenario(async () => {
      for await (const id of flyte.map(gated, ['a', 'b', 'c']).asCompleted()) consumer.enter(id as string);
    });
    await tracker.untilStarted(3);
    for (const [i, id] of ['c', 'a', 'b'].entries()) {
      gates.open(id);
      await consumer.untilStarted(i + 1);
    }
    await run.outputs();
    assert.deepEqual(consumer.started, ['c', 'a', 'b']);
  });

  it('honours concurrency in completion order too', async () => {
    const ids = ['c0', 'c1', 'c2', 'c3', 'c4'];
    const run = await startScenario(async () => {
      for await (const id of flyte.map(gated, ids, { concurrency: 2 }).asCompleted()) consumer.enter(id as string);
    });
    for (let done = 0; done < ids.length; done++) {
      const expected = Math.min(done + 2, ids.length);
      await tracker.untilStarted(expected);
      await settle();
      assert.equal(tracker.started.length, expected, `with ${done} finished, ${expected} have started`);
      const running = tracker.started.filter((id) => !tracker.finished.includes(id));
      gates.open(running[running.length - 1]!);
      await consumer.untilStarted(done + 1);
    }
    await run.outputs();
    assert.equal(tracker.maxInFlight, 2);
    assert.deepEqual(consumer.started, ['c1', 'c2', 'c3', 'c4', 'c0']);
  });

  it('returns errors in place when streaming, or throws them with returnExceptions false', async () => {
    const streamed: unknown[] = [];
    let thrown: unknown;
    await runScenario(async () => {
      for await (const r of flyte.map(instant, [1, -1, 2])) streamed.push(r);
      try {
        for await (const r of flyte.map(instant, [3, -3, 4], { returnExceptions: false }).asCompleted()) {
          streamed.push(r);
        }
      } catch (err) {
        thrown = err;
      }
    });
    assert.equal(streamed[0], 2);
    assert.ok(streamed[1] instanceof flyte.errors.RuntimeUserError);
    assert.equal(streamed[2], 4);
    assert.ok(thrown instanceof flyte.errors.RuntimeUserError);
    assert.equal(thrown.code, 'TypeError');
  });

  it('keeps at most `concurrency` items ahead of a slow consumer', async () => {
    const source = counted([1, 2, 3, 4, 5, 6, 7, 8]);
    let startedWhileHeld = -1;
    let pulledWhileHeld = -1;
    const results: unknown[] = [];
    await runScenario(async () => {
      for await (const r of flyte.map(instant, source.iterable, { concurrency: 2 })) {
        if (results.length === 0) {
          await settle();
          startedWhileHeld = tracker.started.length;
          pulledWhileHeld = source.pulled();
        }
        results.push(r);
      }
    });
    assert.deepEqual(results, [2, 4, 6, 8, 10, 12, 14, 16]);
    assert.ok(startedWhileHeld <= 3, `1 yielded + 2 ahead; started ${startedWhileHeld}`);
    assert.ok(pulledWhileHeld <= 3, `pulled ${pulledWhileHeld}`);
  });

  it('zips several iterables, the shortest wins', async () => {
    let sums: unknown;
    let labelled: unknown;
    let fromGenerators: unknown;
    await runScenario(async () => {
      sums = await flyte.map(add, [1, 2, 3], [10, 20]);
      labelled = await flyte.map(add3, [1, 2], [10, 20], ['x', 'y', 'z']);
      fromGenerators = await flyte.map(add, counted([1, 2, 3]).iterable, new Set([100, 200, 300, 400]));
    });
    assert.deepEqual(sums, [11, 22]);
    assert.deepEqual(labelled, ['x11', 'y22']);
    assert.deepEqual(fromGenerators, [101, 202, 303]);
  });

  it('binds leading arguments with flyte.partial; the item goes last', async () => {
    let scaled: unknown;
    let labelled: unknown;
    const run = await runScenario(async () => {
      scaled = await flyte.map(flyte.partial(scale, 10), [1, 2, 3]);
      labelled = await flyte.map(flyte.partial(add3, 1), [2, 3], ['p', 'q']);
    });
    assert.deepEqual(scaled, [10, 20, 30]);
    assert.deepEqual(labelled, ['p3', 'q4']);
    const scaleChildren = childrenOf(await run.actions()).filter((a) => a.taskName === 'maptest.scale');
    const inputs = await Promise.all(scaleChildren.map((c) => run.action(c.name).inputs()));
    assert.deepEqual(
      inputs.sort((a, b) => (a![1] as number) - (b![1] as number)),
      [
        [10, 1],
        [10, 2],
        [10, 3],
      ],
    );
    assert.equal(await flyte.partial(scale, 3)(5), 15, 'a partial is callable like the task');
  });

  it('puts its actions in the group `${task.name}_map`, or `${task.name}_${groupName}`', async () => {
    const run = await runScenario(async () => {
      await flyte.map(instant, [1, 2]);
      await flyte.map(instant, [3], { groupName: 'batch' });
      await flyte.group('outer', () => flyte.map(instant, [4]));
    });
    const groups = [...(await childInputs(run)).entries()].map(([x, a]) => [x, a.group]);
    assert.deepEqual(groups, [
      [1, 'maptest.instant_map'],
      [2, 'maptest.instant_map'],
      [3, 'maptest.instant_batch'],
      [4, 'maptest.instant_map'],
    ]);
  });

  it('records each item\'s position in its map as itemIndex; other calls have none', async () => {
    const run = await runScenario(async () => {
      await instant(100);
      // Out-of-order completion and a concurrency limit do not change an item's index.
      await flyte.map(gatedInstantly, [10, 11, 12, 13], { concurrency: 2 });
      await flyte.map(flyte.partial(scale, 3), [20, 21]);
      await flyte.map(add, [30, 31, 32], [1, 1]);
      for await (const _ of flyte.map(instant, [40, 41]).asCompleted()) void _;
    });
    const indexes: [string, number | null][] = [];
    for (const c of childrenOf(await run.actions())) {
      indexes.push([JSON.stringify(await run.action(c.name).inputs()), c.itemIndex]);
    }
    assert.deepEqual(indexes, [
      ['[100]', null],
      ['[10]', 0],
      ['[11]', 1],
      ['[12]', 2],
      ['[13]', 3],
      ['[3,20]', 0],
      ['[3,21]', 1],
      ['[30,1]', 0],
      ['[31,1]', 1],
      ['[40]', 0],
      ['[41]', 1],
    ]);
  });

  it('stops when its signal fires: in-flight items are aborted, the rest never start', async () => {
    const controller = new AbortController();
    let error: unknown;
    const run = await startScenario(async () => {
      try {
        await flyte.map(gated, ['a', 'b', 'c', 'd'], { concurrency: 2, signal: controller.signal });
      } catch (err) {
        error = err;
      }
    });
    await tracker.untilStarted(2);
    controller.abort('user cancelled');
    await run.outputs();
    assert.ok(error instanceof flyte.errors.ActionAbortedError, String(error));
    const byInput = await childInputs(run);
    assert.deepEqual(
      [...byInput.entries()].map(([id, a]) => [id, a.phase]),
      [
        ['a', 'aborted'],
        ['b', 'aborted'],
      ],
    );
    assert.deepEqual([...aborted].sort(), ['a', 'b']);
    assert.deepEqual(tracker.started, ['a', 'b']);
  });

  it('starts nothing when its signal has already fired', async () => {
    let error: unknown;
    const run = await runScenario(async () => {
      error = await flyte.map(instant, [1, 2], { signal: AbortSignal.abort('too late') }).then(
        () => undefined,
        (err: unknown) => err,
      );
    });
    assert.ok(error instanceof flyte.errors.ActionAbortedError, String(error));
    assert.deepEqual(tracker.started, []);
    assert.equal(childrenOf(await run.actions()).length, 0);
  });

  it('is lazy: nothing is pulled or started until it is awaited or iterated', async () => {
    const source = counted([1, 2, 3]);
    let startedBefore = -1;
    let pulledBefore = -1;
    let childrenBefore = -1;
    let results: unknown;
    await runScenario(async () => {
      const pending = flyte.map(instant, source.iterable);
      await settle();
      startedBefore = tracker.started.length;
      pulledBefore = source.pulled();
      childrenBefore = childrenOf(await (await flyte.getRun(flyte.ctx()!.runName)).actions()).length;
      results = await pending;
    });
    assert.equal(startedBefore, 0);
    assert.equal(pulledBefore, 0);
    assert.equal(childrenBefore, 0);
    assert.deepEqual(results, [2, 4, 6]);
  });

  it('pulls items lazily: with concurrency 2, only two are pulled while two run', async () => {
    const source = counted(['p0', 'p1', 'p2', 'p3', 'p4']);
    const run = await startScenario(async () => {
      await flyte.map(gated, source.iterable, { concurrency: 2 });
    });
    await tracker.untilStarted(2);
    await settle();
    assert.equal(source.pulled(), 2);
    gates.openAll();
    for (let i = 2; i < 5; i++) {
      await tracker.untilStarted(i + 1);
      gates.openAll();
    }
    await run.outputs();
    assert.equal(source.pulled(), 5);
  });

  it('can be awaited twice (one execution), but not consumed in two different ways', async () => {
    let first: unknown;
    let second: unknown;
    const errors: unknown[] = [];
    await runScenario(async () => {
      const m = flyte.map(instant, [1, 2, 3]);
      first = await m;
      second = await m;
      try {
        for await (const _ of m) break;
      } catch (err) {
        errors.push(err);
      }
      const n = flyte.map(instant, [4]);
      for await (const _ of n) break;
      try {
        await n;
      } catch (err) {
        errors.push(err);
      }
      try {
        for await (const _ of n.asCompleted()) break;
      } catch (err) {
        errors.push(err);
      }
    });
    assert.deepEqual(first, [2, 4, 6]);
    assert.deepEqual(second, [2, 4, 6]);
    assert.equal(errors.length, 3);
    assert.deepEqual(tracker.started, ['1', '2', '3', '4'], 'awaiting twice ran the items once');
    for (const err of errors) {
      assert.ok(err instanceof TypeError, String(err));
      assert.match(err.message, /already consumed/);
    }
  });

  it('cannot be iterated twice: a second iteration throws instead of yielding nothing', async () => {
    const firstPass: unknown[] = [];
    const errors: unknown[] = [];
    await runScenario(async () => {
      const m = flyte.map(instant, [1, 2]);
      for await (const r of m) firstPass.push(r);
      try {
        for await (const r of m) firstPass.push(r);
      } catch (err) {
        errors.push(err);
      }
      const c = flyte.map(instant, [3]).asCompleted();
      for await (const r of c) firstPass.push(r);
      try {
        for await (const r of c) firstPass.push(r);
      } catch (err) {
        errors.push(err);
      }
    });
    assert.deepEqual(firstPass, [2, 4, 6]);
    assert.equal(errors.length, 2);
    for (const err of errors) {
      assert.ok(err instanceof TypeError, String(err));
      assert.match(err.message, /already consumed/);
    }
  });

  it('runs nothing for no items', async () => {
    let results: unknown;
    const run = await runScenario(async () => {
      results = await flyte.map(instant, []);
    });
    assert.deepEqual(results, []);
    assert.equal(childrenOf(await run.actions()).length, 0);
  });

  it('refuses bad arguments at once with TypeError or RangeError', () => {
    const throwsWith = (fn: () => unknown, type: new (...args: never[]) => Error, fragment: string): void => {
      assert.throws(fn, (err: unknown) => {
        assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
        assert.ok(err.message.includes(fragment), err.message);
        return true;
      });
    };
    const notATask = async (x: number): Promise<number> => x;
    throwsWith(() => flyte.map(notATask as never, [1]), TypeError, 'expected a task');
    throwsWith(() => (flyte.map as (...a: unknown[]) => unknown)(instant), TypeError, 'at least one iterable');
    throwsWith(() => flyte.map(instant, 5 as never), TypeError, 'expected an iterable');
    throwsWith(() => flyte.map(add, [1], 7 as never), TypeError, 'argument 3');
    throwsWith(() => flyte.map(instant, [1], { concurrency: -1 }), RangeError, 'received number -1');
    throwsWith(() => flyte.map(instant, [1], { concurrency: 1.5 }), RangeError, 'non-negative integer');
    throwsWith(() => flyte.map(instant, [1], { returnExceptions: 'yes' as never }), TypeError, 'boolean');
    throwsWith(() => flyte.map(instant, [1], { groupName: '' }), TypeError, 'groupName');
    throwsWith(() => flyte.map(instant, [1], { signal: {} as never }), TypeError, 'AbortSignal');
    throwsWith(() => flyte.partial(notATask as never, 1), TypeError, 'expected a task');
    throwsWith(() => Array.from(flyte.map(instant, [1])), TypeError, 'only inside a sync task');
  });
});

describe('flyte.map outside a run', { timeout: SUITE_TIMEOUT_MS }, () => {
  useFlyteRoot('flyte-map-', { store: 'memory:' });
  beforeEach(() => {
    gates = new Gates();
    tracker = new Tracker();
  });

  it('calls the functions directly, errors in place by default', async () => {
    const results = await flyte.map(instant, [1, -1, 2]);
    assert.equal(results[0], 2);
    assert.ok(results[1] instanceof flyte.errors.RuntimeUserError);
    assert.equal(results[1].code, 'TypeError');
    assert.equal(results[2], 4);
    assert.deepEqual(await flyte.map(flyte.partial(scale, 2), [5]), [10]);
    await assert.rejects(async () => flyte.map(instant, [-5], { returnExceptions: false }), /negative: -5/);
  });

  it('honours concurrency', async () => {
    const pending = flyte.map(gated, ['o1', 'o2', 'o3'], { concurrency: 2 }).then((r) => r);
    await tracker.untilStarted(2);
    await settle();
    assert.equal(tracker.started.length, 2);
    gates.open('o1');
    await tracker.untilStarted(3);
    gates.openAll();
    assert.deepEqual(await pending, ['o1', 'o2', 'o3']);
    assert.equal(tracker.maxInFlight, 2);
  });
});
