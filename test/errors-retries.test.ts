/**
 * Failure and its handling through the public API: child errors as RuntimeUserError, retries and backoff,
 * NonRecoverableError, timeouts, run abort, and the values (and refusals) at an action boundary.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { beforeEach, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { storedAttemptRows, useFlyteRoot } from './support/flyte-root.js';
import { z } from 'zod';
import { Gates, Tracker, settle } from './support/gates.js';

/** A hang (e.g. a gate never opened) fails the suite instead of blocking the test run. */
const SUITE_TIMEOUT_MS = 30_000;

const env = new flyte.TaskEnvironment({ name: 'errtest' });

let tracker = new Tracker();
/** Signals that fired, by action name, with their reasons. */
let aborted = new Map<string, unknown>();
/** What the current test wants the root to do; the root is the one top-level task every scenario runs under. */
let scenario: () => Promise<unknown> = () => Promise.resolve();

class QuotaExceeded extends Error {}

class ValueError extends Error {
  override name = 'ValueError';
}

export const scenarioRoot = env.task(async function scenarioRoot() {
  await scenario();
});

export const throwsTypeError = env.task(async function throwsTypeError(message: string): Promise<number> {
  throw new TypeError(message);
});

export const throwsCustom = env.task(async function throwsCustom(kind: string): Promise<number> {
  if (kind === 'quota') throw new QuotaExceeded('over quota');
  if (kind === 'value') throw new ValueError('bad value');
  throw new Error(`unknown kind ${kind}`);
});

/** Fails every attempt with a message naming the attempt. */
export const alwaysFails = env.task(
  { retries: { count: 2, backoff: 0 } },
  async function alwaysFails(): Promise<number> {
    throw new Error(`attempt ${flyte.ctx()!.attempt} failed`);
  },
);

/** Succeeds on its third attempt. */
export const thirdTime = env.task({ retries: { count: 3, backoff: 0 } }, async function thirdTime() {
  const { attempt } = flyte.ctx()!;
  console.log(`attempt ${attempt}`);
  if (attempt < 3) throw new Error(`attempt ${attempt} failed`);
  return attempt;
});

export const backsOff = env.task(
  { retries: { count: 2, backoff: 40, backoffFactor: 2 } },
  async function backsOff(): Promise<number> {
    throw new Error('again');
  },
);

export const cappedBackoff = env.task(
  { retries: { count: 2, backoff: 30, backoffFactor: 100, maxBackoff: 40 } },
  async function cappedBackoff(): Promise<number> {
    throw new Error('again');
  },
);

export const nonRecoverable = env.task({ retries: 3 }, async function nonRecoverable(): Promise<number> {
  throw new flyte.errors.NonRecoverableError('retrying cannot help');
});

class BadRecord extends flyte.errors.NonRecoverableError {}

export const nonRecoverableSubclass = env.task(
  { retries: 3 },
  async function nonRecoverableSubclass(): Promise<number> {
    throw new BadRecord('record 7 is malformed');
  },
);

export const returnsFunction = env.task({ retries: 2 }, async function returnsFunction() {
  return { ok: true, callback: () => 1 } as unknown as { ok: boolean };
});

/** Never finishes by itself: it waits for its signal, and notes that it fired. */
export const waitsForSignal = env.task({ timeout: 50 }, async function waitsForSignal(): Promise<string> {
  const c = flyte.ctx()!;
  await new Promise<void>((resolve) =>
    c.signal.addEventListener('abort', () => {
      aborted.set(c.action.name, c.signal.reason);
      resolve();
    }),
  );
  return 'stopped';
});

/** Times out on its first attempt (ignoring its signal), succeeds on the second. */
export const slowThenFast = env.task(
  { timeout: { maxRuntime: 50 }, retries: { count: 1, backoff: 0 } },
  async function slowThenFast() {
    const c = flyte.ctx()!;
    if (c.attempt === 1) await new Promise<void>(() => undefined); // never settles
    return c.attempt;
  },
);

let gates = new Gates();
/** What the late body of a timed-out attempt got when it called a task. */
let lateCall: unknown;

/** Its first attempt times out but goes on (ignoring its signal) until the test opens `wake`, then calls a task. */
export const outlivesItsAttempt = env.task(
  { timeout: 30, retries: { count: 1, backoff: 0 } },
  async function outlivesItsAttempt() {
    const c = flyte.ctx()!;
    if (c.attempt === 2) return 'second attempt';
    const t = tracker;
    await gates.wait('wake');
    try {
      lateCall = await quick(1);
    } catch (err) {
      lateCall = err;
    }
    t.enter('late call done');
    return 'first attempt';
  },
);

/** Starts a child that waits for its signal, then waits for its own. */
export const timesOutWithChild = env.task({ timeout: 50 }, async function timesOutWithChild() {
  const child = blocksUntilAborted('child-of-timed-out');
  const c = flyte.ctx()!;
  await new Promise<void>((resolve) => c.signal.addEventListener('abort', () => resolve()));
  await child.catch(() => undefined);
  return 'parent stopped';
});

/** Enters the tracker, then waits until its signal fires (recording it). */
export const blocksUntilAborted = env.task(async function blocksUntilAborted(id: string): Promise<string> {
  const c = flyte.ctx()!;
  const t = tracker;
  const seenAborts = aborted;
  c.signal.addEventListener('abort', () => seenAborts.set(id, c.signal.reason));
  t.enter(id);
  await new Promise<void>((resolve) => c.signal.addEventListener('abort', () => resolve()));
  return id;
});

/** Never settles and ignores its signal: abort must end it anyway. */
export const ignoresSignal = env.task(async function ignoresSignal(id: string): Promise<string> {
  tracker.enter(id);
  await new Promise<void>(() => undefined);
  return id;
});

export const quick = env.task(async function quick(x: number) {
  return x;
});

/** A tree for abort: a finished child, a running child with a running grandchild, and a body that ignores abort. */
export const abortTree = env.task(async function abortTree() {
  const c = flyte.ctx()!;
  const seenAborts = aborted;
  c.signal.addEventListener('abort', () => seenAborts.set('root', c.signal.reason));
  await quick(1);
  return Promise.all([blocksUntilAborted('child'), withGrandchild(), ignoresSignal('stubborn')]);
});

export const withGrandchild = env.task(async function withGrandchild(): Promise<string> {
  const c = flyte.ctx()!;
  const seenAborts = aborted;
  c.signal.addEventListener('abort', () => seenAborts.set('middle', c.signal.reason));
  return blocksUntilAborted('grandchild');
});

export const echo = env.task(async function echo(value: unknown): Promise<unknown> {
  return value;
});

export const echoPair = env.task(async function echoPair(a: unknown, b: unknown): Promise<unknown[]> {
  return [a, b];
});

/** Describes what it received, to show that the child got real instances, not look-alikes. */
export const describeTypes = env.task(async function describeTypes(value: Record<string, unknown>) {
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      v === null ? 'null' : typeof v === 'object' ? v.constructor.name : typeof v,
    ]),
  );
});

export const validated = env.task(
  { inputs: z.tuple([z.number().int().nonnegative(), z.string().trim().min(1)]), retries: 2 },
  async function validated(count: number, label: string) {
    return `${label}:${count}`;
  },
);

function childrenOf(actions: readonly flyte.ActionRecord[], parent = 'a0'): flyte.ActionRecord[] {
  return actions.filter((a) => a.parentName === parent);
}

/** Runs `body` as the root of a run; resolves with the run once it succeeded (rejects with its error). */
async function runScenario(body: () => Promise<unknown>): Promise<flyte.Run> {
  scenario = body;
  const run = await flyte.run(scenarioRoot);
  await run.outputs();
  return run;
}

/** Calls `fn` and returns what it threw (failing if it did not throw). */
async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

describe('errors and retries', { timeout: SUITE_TIMEOUT_MS }, () => {
  const root = useFlyteRoot('flyte-errors-test-');
  beforeEach(() => {
    gates = new Gates();
    lateCall = undefined;
    tracker = new Tracker();
    aborted = new Map();
  });

  describe('child errors', () => {
    it('reach the parent as RuntimeUserError with the original class name as code and the child action name', async () => {
      let error: unknown;
      const run = await runScenario(async () => {
        error = await caught(() => throwsTypeError('no good'));
      });
      const [child] = childrenOf(await run.actions());
      assert.ok(error instanceof flyte.errors.RuntimeUserError, String(error));
      assert.ok(error instanceof flyte.errors.BaseRuntimeError);
      assert.equal(error.code, 'TypeError');
      assert.equal(error.kind, 'user');
      assert.equal(error.message, 'no good');
      assert.equal(error.actionName, child!.name);
      assert.equal(child!.phase, 'failed');
      assert.deepEqual(
        { code: child!.error?.code, kind: child!.error?.kind, message: child!.error?.message },
        { code: 'TypeError', kind: 'user', message: 'no good' },
      );
    });

    it('use the class name of custom errors as code', async () => {
      const codes: string[] = [];
      await runScenario(async () => {
        for (const kind of ['quota', 'value', 'plain']) {
          const err = await caught(() => throwsCustom(kind));
          assert.ok(err instanceof flyte.errors.RuntimeUserError);
          codes.push(err.code);
        }
      });
      assert.deepEqual(codes, ['QuotaExceeded', 'ValueError', 'Error']);
    });

    it('fail the run when nobody catches them, keeping code and origin', async () => {
      scenario = () => throwsTypeError('uncaught');
      const run = await flyte.run(scenarioRoot);
      const rec = await run.wait();
      assert.equal(rec.phase, 'failed');
      assert.equal(rec.error?.code, 'TypeError');
      const [child] = childrenOf(await run.actions());
      await assert.rejects(run.outputs(), (err: unknown) => {
        assert.ok(err instanceof flyte.errors.RuntimeUserError);
        assert.equal(err.code, 'TypeError');
        assert.equal(err.message, 'uncaught');
        assert.equal(err.actionName, child!.name);
        return true;
      });
    });
  });

  describe('retries', () => {
    it('retries N means N + 1 attempts, each recorded with its own error', async () => {
      let error: unknown;
      const run = await runScenario(async () => {
        error = await caught(() => alwaysFails());
      });
      const [child] = childrenOf(await run.actions());
      assert.equal(child!.attempts, 3);
      assert.equal(child!.phase, 'failed');
      const attempts = await run.action(child!.name).attempts();
      assert.deepEqual(
        attempts.map((a) => [a.attempt, a.phase, a.error?.code, a.error?.message]),
        [
          [1, 'failed', 'Error', 'attempt 1 failed'],
          [2, 'failed', 'Error', 'attempt 2 failed'],
          [3, 'failed', 'Error', 'attempt 3 failed'],
        ],
      );
      for (const a of attempts) assert.ok(a.endedAt !== null && a.endedAt >= a.startedAt);
      assert.ok(error instanceof flyte.errors.RuntimeUserError);
      assert.equal(error.message, 'attempt 3 failed', 'the parent sees the last attempt’s error');
    });

    it('records attempts that failed and retries; a first attempt that succeeds is listed from its action', async () => {
      const run = await runScenario(async () => Promise.all([quick(1), thirdTime()]));
      const [first, third] = childrenOf(await run.actions());
      assert.deepEqual(await run.action(first!.name).attempts(), [
        {
          runName: run.name,
          actionName: first!.name,
          attempt: 1,
          phase: 'succeeded',
          startedAt: first!.startedAt,
          endedAt: first!.endedAt,
          error: null,
          // This process ran it: a local run's attempts name its driver.
          worker: `${os.hostname()}:${process.pid}`,
        },
      ]);
      const rows = (name: string): Promise<unknown[]> => storedAttemptRows(root(), run.name, name);
      // One row write less per action in the usual case: its only attempt is the action itself.
      assert.deepEqual(await rows(first!.name), []);
      assert.deepEqual(await rows(third!.name), [
        { attempt: 1, phase: 'failed' },
        { attempt: 2, phase: 'failed' },
        { attempt: 3, phase: 'succeeded' },
      ]);
    });

    it('stops retrying once an attempt succeeds; ctx().attempt and the logs follow the attempts', async () => {
      const run = await runScenario(async () => thirdTime());
      const [child] = childrenOf(await run.actions());
      assert.equal(child!.phase, 'succeeded');
      assert.equal(child!.attempts, 3);
      assert.equal(child!.error, null);
      assert.equal(await run.action(child!.name).outputs(), 3);
      assert.deepEqual(
        (await run.action(child!.name).attempts()).map((a) => a.phase),
        ['failed', 'failed', 'succeeded'],
      );
      assert.deepEqual(
        (await run.action(child!.name).logs()).map((l) => [l.attempt, l.line]),
        [
          [1, 'attempt 1'],
          [2, 'attempt 2'],
          [3, 'attempt 3'],
        ],
      );
    });

    it('waits the backoff between attempts, growing by backoffFactor', async () => {
      const run = await runScenario(async () => caught(() => backsOff()));
      const [child] = childrenOf(await run.actions());
      const [a1, a2, a3] = await run.action(child!.name).attempts();
      const gap1 = a2!.startedAt - a1!.endedAt!;
      const gap2 = a3!.startedAt - a2!.endedAt!;
      assert.ok(gap1 >= 38, `first backoff ~40 ms, was ${gap1}`);
      assert.ok(gap2 >= 78, `second backoff ~80 ms, was ${gap2}`);
    });

    it('caps the backoff at maxBackoff', async () => {
      const run = await runScenario(async () => caught(() => cappedBackoff()));
      const [child] = childrenOf(await run.actions());
      const [, a2, a3] = await run.action(child!.name).attempts();
      const gap2 = a3!.startedAt - a2!.endedAt!;
      assert.ok(gap2 >= 38 && gap2 < 1000, `second backoff capped at 40 ms (uncapped: 3000), was ${gap2}`);
    });

    it('does not retry NonRecoverableError (or its subclasses)', async () => {
      let error: unknown;
      let subclassError: unknown;
      const run = await runScenario(async () => {
        error = await caught(() => nonRecoverable());
        subclassError = await caught(() => nonRecoverableSubclass());
      });
      const children = childrenOf(await run.actions());
      assert.deepEqual(
        children.map((c) => [c.taskName, c.attempts, c.phase, c.error?.code]),
        [
          ['errtest.nonRecoverable', 1, 'failed', 'NonRecoverableError'],
          ['errtest.nonRecoverableSubclass', 1, 'failed', 'NonRecoverableError'],
        ],
      );
      assert.ok(error instanceof flyte.errors.NonRecoverableError, String(error));
      assert.equal(error.message, 'retrying cannot help');
      assert.ok(subclassError instanceof flyte.errors.RuntimeUserError);
      assert.equal(subclassError.code, 'NonRecoverableError');
    });

    it('does not retry an output that cannot cross the boundary', async () => {
      let error: unknown;
      const run = await runScenario(async () => {
        error = await caught(() => returnsFunction());
      });
      const [child] = childrenOf(await run.actions());
      assert.equal(child!.attempts, 1);
      assert.ok(error instanceof flyte.errors.RuntimeDataValidationError, String(error));
      assert.equal(error.code, 'RuntimeDataValidationError');
      assert.equal(error.path, 'output.callback');
      assert.ok(error.message.includes('output.callback'), error.message);
    });
  });

  describe('timeouts', () => {
    it('end the action in phase timed_out with TaskTimeoutError, firing ctx().signal', async () => {
      let error: unknown;
      const run = await runScenario(async () => {
        error = await caught(() => waitsForSignal());
      });
      const [child] = childrenOf(await run.actions());
      assert.equal(child!.phase, 'timed_out');
      assert.equal(child!.error?.code, 'TaskTimeoutError');
      assert.ok(error instanceof flyte.errors.TaskTimeoutError, String(error));
      assert.equal(error.actionName, child!.name);
      assert.equal(error.timeoutMs, 50);
      assert.ok(aborted.has(child!.name), 'the body saw its signal fire');
      assert.ok(aborted.get(child!.name) instanceof flyte.errors.TaskTimeoutError, 'the signal reason is the timeout');
      const [attempt] = await run.action(child!.name).attempts();
      assert.equal(attempt!.phase, 'timed_out');
      assert.ok(attempt!.endedAt! - attempt!.startedAt >= 45, 'not before the timeout');
    });

    it('are retried like other failures, even when the body ignores its signal', async () => {
      let result: unknown;
      const run = await runScenario(async () => {
        result = await slowThenFast();
      });
      assert.equal(result, 2);
      const [child] = childrenOf(await run.actions());
      assert.equal(child!.phase, 'succeeded');
      assert.deepEqual(
        (await run.action(child!.name).attempts()).map((a) => [a.phase, a.error?.code ?? null]),
        [
          ['timed_out', 'TaskTimeoutError'],
          ['succeeded', null],
        ],
      );
    });

    it('do not let the body of a timed-out attempt create children after it was given up', async () => {
      let result: unknown;
      const run = await runScenario(async () => {
        result = await outlivesItsAttempt();
      });
      assert.equal(result, 'second attempt');
      gates.open('wake');
      await tracker.untilStarted(1);
      assert.ok(lateCall instanceof flyte.errors.ActionAbortedError, `the late call got ${String(lateCall)}`);
      await settle();
      const [action] = childrenOf(await run.actions());
      assert.deepEqual(childrenOf(await run.actions(), action!.name), [], 'no child of the given-up attempt');
    });

    it('abort the children of the timed-out action', async () => {
      const run = await runScenario(async () => caught(() => timesOutWithChild()));
      const [parent] = childrenOf(await run.actions());
      assert.equal(parent!.phase, 'timed_out');
      const [child] = childrenOf(await run.actions(), parent!.name);
      assert.equal(child!.phase, 'aborted');
      assert.equal(child!.error?.code, 'ActionAbortedError');
      assert.ok(aborted.has('child-of-timed-out'));
    });
  });

  describe('run.abort', () => {
    it('aborts the root and every running descendant, firing their signals', async () => {
      const run = await flyte.run(abortTree);
      await tracker.untilStarted(3);
      await run.abort('enough');
      assert.equal(run.phase, 'aborted');
      const rec = await run.wait();
      assert.equal(rec.phase, 'aborted');
      assert.equal(rec.error?.code, 'ActionAbortedError');
      assert.ok(rec.error?.message.includes('enough'), rec.error?.message);

      const actions = await run.actions();
      const phaseOf = async (id: unknown): Promise<flyte.ActionPhase | undefined> => {
        for (const a of actions) {
          const inputs = await run.action(a.name).inputs();
          if (inputs?.[0] === id) return a.phase;
        }
        return undefined;
      };
      assert.equal(actions.find((a) => a.name === 'a0')?.phase, 'aborted');
      assert.equal(await phaseOf(1), 'succeeded', 'a child that had finished stays succeeded');
      assert.equal(await phaseOf('child'), 'aborted');
      assert.equal(await phaseOf('grandchild'), 'aborted');
      assert.equal(await phaseOf('stubborn'), 'aborted', 'a body that ignores its signal is aborted too');
      assert.equal(actions.find((a) => a.taskName === 'errtest.withGrandchild')?.phase, 'aborted');
      assert.ok(actions.every((a) => a.endedAt !== null));

      assert.deepEqual([...aborted.keys()].sort(), ['child', 'grandchild', 'middle', 'root']);
      assert.ok([...aborted.values()].every((r) => r instanceof flyte.errors.ActionAbortedError));

      await assert.rejects(run.outputs(), flyte.errors.ActionAbortedError);
    });

    it('does nothing to a finished run', async () => {
      const run = await flyte.run(quick, 3);
      assert.equal(await run.outputs(), 3);
      await run.abort();
      assert.equal(run.phase, 'succeeded');
      assert.equal((await run.wait()).phase, 'succeeded');
    });

    it('lets wait() resolve (not reject) with phase aborted', async () => {
      const run = await flyte.run(blocksUntilAborted, 'solo');
      await tracker.untilStarted(1);
      const waiting = run.wait();
      await settle();
      await run.abort();
      assert.equal((await waiting).phase, 'aborted');
      assert.ok(aborted.has('solo'));
    });
  });

  describe('values at an action boundary', () => {
    it('round-trip Date, Map, Set, BigInt, typed arrays, NaN, ±Infinity, -0 and undefined through a child', async () => {
      const value = {
        when: new Date('2024-02-29T12:34:56.789Z'),
        lookup: new Map<unknown, unknown>([
          ['a', 1],
          [2, new Set(['x', 'y'])],
          [{ composite: true }, [1n]],
        ]),
        tags: new Set([1, 'two', 3n]),
        big: 2n ** 70n,
        bytes: new Uint8Array([0, 1, 255]),
        floats: new Float64Array([0.5, -1.25]),
        ints: new Int32Array([-7, 7]),
        specials: [NaN, Infinity, -Infinity, -0, undefined, null],
        missing: undefined,
        nested: { deeper: { deepest: [{ at: new Date(0) }] } },
      };
      let copy: unknown;
      let types: unknown;
      await runScenario(async () => {
        copy = await echo(value);
        types = await describeTypes(value);
      });
      assert.notEqual(copy, value, 'a copy, not the same object');
      assert.deepStrictEqual(copy, value);
      assert.ok('missing' in (copy as object), 'an undefined property is kept');
      assert.deepEqual(types, {
        when: 'Date',
        lookup: 'Map',
        tags: 'Set',
        big: 'bigint',
        bytes: 'Uint8Array',
        floats: 'Float64Array',
        ints: 'Int32Array',
        specials: 'Array',
        missing: 'undefined',
        nested: 'Object',
      });
    });

    it('round-trip through the run inputs and outputs too', async () => {
      const value = [new Map([[1n, new Date(5)]]), NaN, undefined];
      const run = await flyte.run(echo, value);
      assert.deepStrictEqual(await run.outputs(), value);
      assert.deepStrictEqual(await run.action('a0').inputs(), [value]);
    });

    it('refuse a function, naming its path, and create no action', async () => {
      let error: unknown;
      const run = await runScenario(async () => {
        error = await caught(() => echo({ items: [1, 2, 3, () => 4] }));
      });
      assert.ok(error instanceof flyte.errors.RuntimeDataValidationError, String(error));
      assert.equal(error.path, 'args[0].items[3]');
      assert.ok(error.message.includes('args[0].items[3]'), error.message);
      assert.ok(error.message.includes('function'), error.message);
      assert.equal((await run.actions()).length, 1);
    });

    it('refuse a class instance with methods and a cycle, naming their paths', async () => {
      class Point {
        constructor(readonly x: number) {}
        norm(): number {
          return Math.abs(this.x);
        }
      }
      const cyclic: { name: string; self?: unknown } = { name: 'loop' };
      cyclic.self = { back: cyclic };
      const errors: unknown[] = [];
      await runScenario(async () => {
        errors.push(await caught(() => echoPair(1, new Point(1))));
        errors.push(await caught(() => echo({ points: [new Point(2)] })));
        errors.push(await caught(() => echo(cyclic)));
      });
      const described = errors.map((e) => {
        assert.ok(e instanceof flyte.errors.RuntimeDataValidationError, String(e));
        return [e.path, e.message];
      });
      assert.equal(described[0]![0], 'args[1]');
      assert.match(described[0]![1]!, /Point/);
      assert.equal(described[1]![0], 'args[0].points[0]');
      assert.equal(described[2]![0], 'args[0].self.back');
      assert.match(described[2]![1]!, /cycle/);
    });

    it('refuse run arguments that cannot cross the boundary, before the run is recorded', async () => {
      await assert.rejects(flyte.run(echo, { f: () => 1 }), (err: unknown) => {
        assert.ok(err instanceof flyte.errors.RuntimeDataValidationError);
        assert.equal(err.path, 'args[0].f');
        return true;
      });
    });
  });

  describe('inputs schema (Standard Schema, zod)', () => {
    it('accepts valid arguments and passes the parsed values to the body', async () => {
      const results: unknown[] = [];
      await runScenario(async () => {
        results.push(await validated(3, '  padded  '));
      });
      assert.deepEqual(results, ['padded:3']);
    });

    it('rejects invalid arguments with RuntimeDataValidationError naming the argument, without retrying', async () => {
      const errors: unknown[] = [];
      const run = await runScenario(async () => {
        errors.push(await caught(() => validated(1.5, 'x')));
        errors.push(await caught(() => validated(1, '   ')));
        errors.push(await caught(() => validated.aio(...([1] as unknown as [number, string]))));
      });
      const paths = errors.map((e) => {
        assert.ok(e instanceof flyte.errors.RuntimeDataValidationError, String(e));
        assert.equal(e.code, 'RuntimeDataValidationError');
        assert.ok(e.message.includes('errtest.validated'), e.message);
        return e.path;
      });
      // A missing argument is an issue of the whole tuple in zod (too few items), hence plain `args`.
      assert.deepEqual(paths, ['args[0]', 'args[1]', 'args']);
      const children = childrenOf(await run.actions());
      assert.equal(children.length, 3);
      for (const c of children) {
        assert.equal(c.phase, 'failed');
        assert.equal(c.error?.code, 'RuntimeDataValidationError');
        assert.ok(c.attempts <= 1, 'not retried');
      }
    });

    it('validates the root of a run the same way', async () => {
      const run = await flyte.run(validated, -1, 'neg');
      const rec = await run.wait();
      assert.equal(rec.phase, 'failed');
      await assert.rejects(run.outputs(), flyte.errors.RuntimeDataValidationError);
    });
  });
});
