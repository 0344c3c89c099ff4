/**
 * TaskEnvironment and the Task handle, through the public API: naming rules, option validation, identity,
 * and how a task behaves when called outside a run, with `forward`, `aio` and `override`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';

/** A hang (e.g. a gate never opened) fails the suite instead of blocking the test run. */
const SUITE_TIMEOUT_MS = 30_000;

const env = new flyte.TaskEnvironment({ name: 'envtest' });

let forwardCalls = 0;
let flakyCalls = 0;

export const double = env.task(async function double(x: number) {
  return x * 2;
});

export const increment = env.task({ shortName: 'inc', retries: 2, timeout: '30s' }, function increment(x: number) {
  return x + 1;
});

export const named = env.task({ name: 'renamed' }, async (x: number) => x - 1);

export const failsPlainly = env.task(async function failsPlainly(message: string): Promise<never> {
  throw new RangeError(message);
});

export const countsForward = env.task(async function countsForward(x: number) {
  forwardCalls++;
  return x + 100;
});

/** Fails on its first two calls of a run. */
export const flaky = env.task({ retries: { count: 0 } }, async function flaky() {
  flakyCalls++;
  if (flakyCalls < 3) throw new Error(`call ${flakyCalls} fails`);
  return flakyCalls;
});

/** Never finishes on its own: only a timeout ends it. */
export const hangs = env.task(async function hangs() {
  await new Promise<void>((resolve) => flyte.ctx()?.signal.addEventListener('abort', () => resolve()));
  return 'unreachable';
});

export const forwardsInRun = env.task(async function forwardsInRun(x: number) {
  return countsForward.forward(x);
});

export const callsOverridden = env.task(async function callsOverridden() {
  flakyCalls = 0;
  return flaky.override({ retries: { count: 2, backoff: 0 } })();
});

export const callsOverriddenTimeout = env.task(async function callsOverriddenTimeout() {
  try {
    await hangs.override({ timeout: 30 })();
    return 'no timeout';
  } catch (err) {
    return err instanceof flyte.errors.TaskTimeoutError ? 'timed out' : `other: ${String(err)}`;
  }
});

export const callsSyncDirectly = env.task(async function callsSyncDirectly() {
  try {
    increment(1);
    return 'no error';
  } catch (err) {
    return err instanceof flyte.errors.SyncTaskCallInAsyncContextError
      ? 'SyncTaskCallInAsyncContextError'
      : String(err);
  }
});

export const callsSyncWithAio = env.task(async function callsSyncWithAio(x: number) {
  return increment.aio(x);
});

/** Asserts that `fn` throws an error of class `type` whose message contains every fragment. */
function assertThrowsWith(fn: () => unknown, type: new (...args: never[]) => Error, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected a ${type.name}, got ${String(err)}`);
    for (const fragment of fragments) {
      assert.ok(
        err.message.includes(fragment),
        `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`,
      );
    }
    return true;
  });
}

describe('TaskEnvironment', { timeout: SUITE_TIMEOUT_MS }, () => {
  useFlyteRoot('flyte-env-', { store: 'memory:' });

  it('accepts names of lower-case words joined by _ or -', () => {
    for (const name of ['a', 'env2', 'my_env', 'my-env', 'a1_b2-c3']) {
      assert.equal(new flyte.TaskEnvironment({ name }).name, name);
    }
  });

  it('refuses other names with a TypeError that states the rule and the name received', () => {
    for (const name of ['', 'My_env', 'my env', 'my__env', '_env', 'env-', 'my.env', 'ümlaut']) {
      assertThrowsWith(
        () => new flyte.TaskEnvironment({ name }),
        TypeError,
        '/^[a-z0-9]+([_-][a-z0-9]+)*$/',
        `received ${JSON.stringify(name)}`,
      );
    }
    assertThrowsWith(
      () => new flyte.TaskEnvironment({ name: 42 as unknown as string }),
      TypeError,
      'received number 42',
    );
    assertThrowsWith(() => new flyte.TaskEnvironment(undefined as never), TypeError, 'expected an options object');
  });

  it('validates dependsOn', () => {
    const base = new flyte.TaskEnvironment({ name: 'envtest-base' });
    assert.deepEqual(new flyte.TaskEnvironment({ name: 'envtest-dep', dependsOn: [base] }).dependsOn, [base]);
    assertThrowsWith(
      () => new flyte.TaskEnvironment({ name: 'envtest-dep2', dependsOn: base as never }),
      TypeError,
      'dependsOn',
    );
    assertThrowsWith(
      () => new flyte.TaskEnvironment({ name: 'envtest-dep3', dependsOn: [{ name: 'x' }] as never }),
      TypeError,
      'TaskEnvironment instances',
    );
  });

  it('caches nothing by default, and its cache is the default of its tasks', () => {
    assert.equal(env.cache.behavior, 'disable');
    assert.equal(double.cache.behavior, 'disable');
    const cached = new flyte.TaskEnvironment({ name: 'envtest-cached', cache: 'auto' });
    const t = cached.task(async function cachedTask() {
      return 1;
    });
    assert.equal(t.cache.behavior, 'auto');
    assertThrowsWith(
      () => new flyte.TaskEnvironment({ name: 'envtest-badcache', cache: 'sometimes' as never }),
      TypeError,
      "'auto', 'override', 'disable'",
      '"sometimes"',
    );
  });
});

describe('env.task', { timeout: SUITE_TIMEOUT_MS }, () => {
  useFlyteRoot('flyte-env-', { store: 'memory:' });

  it('names a task `${env}.${fn.name}`, with the function name as short name', () => {
    assert.equal(double.name, 'envtest.double');
    assert.equal(double.shortName, 'double');
    assert.equal(double.envName, 'envtest');
    assert.equal(double.isAsync, true);
  });

  it('takes (options, fn): shortName, retries and timeout from the options', () => {
    assert.equal(increment.name, 'envtest.increment');
    assert.equal(increment.shortName, 'inc');
    assert.equal(increment.isAsync, false);
    assert.equal(increment.retries.count, 2);
    assert.equal(increment.timeoutMs, 30_000);
  });

  it('uses options.name when given, which also names an arrow function', () => {
    assert.equal(named.name, 'envtest.renamed');
    assert.equal(named.shortName, 'renamed');
  });

  it('refuses a function without a name', () => {
    assertThrowsWith(() => env.task(async () => 1), TypeError, 'needs a name');
    assertThrowsWith(
      () =>
        env.task(function () {
          return 1;
        }),
      TypeError,
      'needs a name',
    );
  });

  it('refuses something that is not a function', () => {
    assertThrowsWith(() => env.task({ retries: 1 } as never), TypeError, 'expected a function', 'received undefined');
    assertThrowsWith(() => env.task({}, 'double' as never), TypeError, 'expected a function', '"double"');
  });

  it('refuses a second task with the same fully qualified name, naming it', () => {
    assertThrowsWith(
      () =>
        env.task(async function double(x: number) {
          return x + x;
        }),
      Error,
      'envtest.double',
      'already defined',
    );
    // Another environment object with the same name shares the namespace.
    const again = new flyte.TaskEnvironment({ name: 'envtest' });
    assertThrowsWith(() => again.task({ name: 'double' }, async () => 0), Error, 'envtest.double', 'already defined');
    // The same function name in another environment is a different task.
    const other = new flyte.TaskEnvironment({ name: 'envtest-other' });
    const t = other.task(async function double(x: number) {
      return x * 3;
    });
    assert.equal(t.name, 'envtest-other.double');
  });

  it('validates retries: a negative or fractional count is a RangeError, a wrong type a TypeError', () => {
    assertThrowsWith(() => env.task({ retries: -1 }, async function r1() {}), RangeError, 'non-negative integer', '-1');
    assertThrowsWith(() => env.task({ retries: 1.5 }, async function r2() {}), RangeError, '1.5');
    assertThrowsWith(() => env.task({ retries: { count: -2 } }, async function r3() {}), RangeError, '-2');
    assertThrowsWith(
      () => env.task({ retries: 'often' as never }, async function r4() {}),
      TypeError,
      'RetryStrategy',
      '"often"',
    );
    assertThrowsWith(
      () => env.task({ retries: { count: 1, backoffFactor: 0.5 } }, async function r5() {}),
      RangeError,
      'backoffFactor',
      '0.5',
    );
    assertThrowsWith(
      () => env.task({ retries: { count: 1, backoff: 'soon' as never } }, async function r6() {}),
      TypeError,
      'backoff',
      '"soon"',
    );
  });

  it('validates timeout, saying what was expected and what was received', () => {
    assertThrowsWith(
      () => env.task({ timeout: 'abc' as never }, async function t1() {}),
      TypeError,
      'timeout',
      'expected a duration',
      "'30s'",
      'received "abc"',
    );
    assertThrowsWith(() => env.task({ timeout: -5 }, async function t2() {}), TypeError, 'received number -5');
    assertThrowsWith(
      () => env.task({ timeout: '10 minutes' as never }, async function t3() {}),
      TypeError,
      '"10 minutes"',
    );
    assertThrowsWith(
      () => env.task({ timeout: { maxRuntime: 'x' as never } }, async function t4() {}),
      TypeError,
      'maxRuntime',
      'received "x"',
    );
  });

  it('reads durations as milliseconds or with a unit', () => {
    const cases: Array<[flyte.Duration, number]> = [
      [1500, 1500],
      ['250ms', 250],
      ['30s', 30_000],
      ['5m', 300_000],
      ['1h', 3_600_000],
      ['1.5s', 1500],
    ];
    cases.forEach(([timeout, ms], i) => {
      const t = env.task({ name: `duration${i}`, timeout }, async () => undefined);
      assert.equal(t.timeoutMs, ms, `timeout ${String(timeout)}`);
    });
    const t = env.task({ timeout: { maxRuntime: '2s' } }, async function timeoutObject() {});
    assert.equal(t.timeoutMs, 2000);
  });

  it('validates the other options', () => {
    assertThrowsWith(
      () => env.task({ maxInlineIoBytes: 0 }, async function m1() {}),
      RangeError,
      'maxInlineIoBytes',
      'received number 0',
    );
    assertThrowsWith(
      () => env.task({ cache: 'always' as never }, async function c1() {}),
      TypeError,
      'cache',
      '"always"',
    );
    assertThrowsWith(
      () => env.task({ inputs: {} as never }, async function i1() {}),
      TypeError,
      'Standard Schema',
      'received an object',
    );
    assertThrowsWith(() => env.task('opts' as never, async function o1() {}), TypeError, 'options', '"opts"');
  });

  it('does not register a task whose options were refused', () => {
    assert.throws(() => env.task({ retries: -1 }, async function refusedOnce() {}), RangeError);
    const t = env.task(async function refusedOnce() {
      return 1;
    });
    assert.equal(t.name, 'envtest.refusedOnce');
  });
});

describe('Task handle', { timeout: SUITE_TIMEOUT_MS }, () => {
  useFlyteRoot('flyte-env-', { store: 'memory:' });

  it('outside a run, is a plain call of the function', async () => {
    const sync = increment(1);
    assert.equal(sync, 2, 'a sync task returns its value, not a promise');
    const pending = double(21);
    assert.ok(pending instanceof Promise);
    assert.equal(await pending, 42);
    assert.equal(flyte.ctx(), undefined);
  });

  it('outside a run, lets errors through unchanged', async () => {
    await assert.rejects(failsPlainly('plain'), (err: unknown) => {
      assert.ok(err instanceof RangeError);
      assert.ok(!(err instanceof flyte.errors.BaseRuntimeError));
      assert.equal(err.message, 'plain');
      return true;
    });
  });

  it('aio returns a promise for sync and async tasks alike', async () => {
    const p = increment.aio(4);
    assert.ok(p instanceof Promise);
    assert.equal(await p, 5);
    assert.equal(await double.aio(4), 8);
  });

  it('forward calls the function without creating an action, inside a run too', async () => {
    assert.equal(await countsForward.forward(1), 101);
    forwardCalls = 0;
    const run = await flyte.run(forwardsInRun, 5);
    assert.equal(await run.outputs(), 105);
    assert.equal(forwardCalls, 1);
    const actions = await run.actions();
    assert.deepEqual(
      actions.map((a) => a.taskName),
      ['envtest.forwardsInRun'],
    );
  });

  it('inside a run, a sync task called from async code throws SyncTaskCallInAsyncContextError; aio works', async () => {
    const direct = await flyte.run(callsSyncDirectly);
    assert.equal(await direct.outputs(), 'SyncTaskCallInAsyncContextError');
    assert.equal((await direct.actions()).length, 1, 'the refused call creates no action');
    const viaAio = await flyte.run(callsSyncWithAio, 9);
    assert.equal(await viaAio.outputs(), 10);
    const child = (await viaAio.actions()).find((a) => a.parentName === 'a0');
    assert.equal(child?.taskName, 'envtest.increment');
    assert.equal(child?.shortName, 'inc');
    assert.equal(child?.phase, 'succeeded');
  });

  it('override keeps the identity and changes retries and timeout, leaving the original alone', async () => {
    const o = flaky.override({ retries: 4, timeout: '2s', shortName: 'flaky2' });
    assert.equal(o.name, flaky.name);
    assert.equal(o.envName, 'envtest');
    assert.equal(o.shortName, 'flaky2');
    assert.equal(o.retries.count, 4);
    assert.equal(o.timeoutMs, 2000);
    assert.equal(flaky.retries.count, 0);
    assert.equal(flaky.timeoutMs, undefined);
    assert.equal(flaky.shortName, 'flaky');
    // Overriding twice registers nothing: no duplicate-name error.
    assert.equal(flaky.override({ retries: 1 }).name, 'envtest.flaky');
  });

  it('override validates like env.task', () => {
    assertThrowsWith(() => flaky.override({ retries: -1 }), RangeError, 'retries', '-1');
    assertThrowsWith(() => flaky.override({ timeout: 'abc' as never }), TypeError, 'timeout', '"abc"');
    assertThrowsWith(() => flaky.override(null as never), TypeError, 'expected an options object');
  });

  it('overridden retries and timeout apply to the action', async () => {
    const retried = await flyte.run(callsOverridden);
    assert.equal(await retried.outputs(), 3);
    const child = (await retried.actions()).find((a) => a.parentName === 'a0');
    assert.equal(child?.taskName, 'envtest.flaky', 'the override runs under the original name');
    assert.equal(child?.attempts, 3);
    assert.equal(child?.phase, 'succeeded');

    const timed = await flyte.run(callsOverriddenTimeout);
    assert.equal(await timed.outputs(), 'timed out');
    const hung = (await timed.actions()).find((a) => a.parentName === 'a0');
    assert.equal(hung?.taskName, 'envtest.hangs');
    assert.equal(hung?.phase, 'timed_out');
  });

  it('flyte.run refuses something that is not a task', async () => {
    await assert.rejects(
      flyte.run((async (x: number) => x) as never, 1),
      (err: unknown) => err instanceof TypeError && err.message.includes('expected a task'),
    );
  });
});
