/**
 * Traces, durable time and the recovery of failed runs, through the public API.
 *
 * Recovery here is `flyte.rerun(name, { recover: true })` of a run that failed (or was aborted) in this process:
 * the same machinery as after a crash (test/recovery.test.ts kills a real process), without the process. Bodies
 * count their executions, so "replayed" means the record answered and the function did not run again.
 */
import assert from 'node:assert/strict';

import { beforeEach, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';
import { Gates } from './support/gates.js';

const env = new flyte.TaskEnvironment({ name: 'tracedurable' });

const calls = new Map<string, number>();
function count(name: string): void {
  calls.set(name, (calls.get(name) ?? 0) + 1);
}
const called = (name: string): number => calls.get(name) ?? 0;

/** Names of the bodies that should fail on their next execution. */
const failing = new Set<string>();
let gates = new Gates();

// ---------------------------------------------------------------------------------------------------------------
// Traced functions and tasks.
// ---------------------------------------------------------------------------------------------------------------

const addOne = flyte.trace(function addOne(x: number) {
  count('addOne');
  return x + 1;
});

const fetchDouble = flyte.trace(async function fetchDouble(x: number) {
  count('fetchDouble');
  await new Promise((resolve) => setImmediate(resolve));
  return x * 2;
});

const countUp = flyte.trace(async function* countUp(n: number) {
  count('countUp');
  try {
    for (let i = 0; i < n; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      yield i * 10;
    }
  } finally {
    count('countUp:closed');
  }
});

const makesFunction = flyte.trace(function makesFunction() {
  count('makesFunction');
  return () => 1;
});

const boom = flyte.trace(async function boom(message: string): Promise<never> {
  count('boom');
  throw new RangeError(message);
});

export const child = env.task(async function child(x: number) {
  count(`child:${x}`);
  if (failing.has(`child:${x}`)) throw new Error(`child ${x} failed`);
  return x * 100;
});

const callsTask = flyte.trace(async function callsTask(x: number) {
  return child(x);
});

export const usesTraces = env.task(async function usesTraces(x: number) {
  const a = addOne(x);
  const syncIsPlain = typeof a === 'number';
  const b = await fetchDouble(a);
  const seen: number[] = [];
  for await (const v of countUp(3)) seen.push(v);
  if (failing.has('usesTraces')) throw new Error('usesTraces failed after its traces');
  return { a, b, seen, syncIsPlain };
});

export const takesTwo = env.task(async function takesTwo(n: number) {
  const seen: number[] = [];
  for await (const v of countUp(n)) {
    seen.push(v);
    if (seen.length === 2) break;
  }
  if (failing.has('takesTwo')) throw new Error('takesTwo failed');
  return seen;
});

export const recordsBadOutput = env.task(async function recordsBadOutput() {
  try {
    makesFunction();
    return 'no error';
  } catch (err) {
    return err instanceof flyte.errors.RuntimeDataValidationError ? err.code : `other: ${String(err)}`;
  }
});

export const catchesNestedTask = env.task(async function catchesNestedTask() {
  try {
    await callsTask(1);
    return 'no error';
  } catch (err) {
    return err instanceof flyte.errors.TraceDoesNotAllowNestedTasksError ? err.code : `other: ${String(err)}`;
  }
});

export const nestedTaskFails = env.task(async function nestedTaskFails() {
  return callsTask(2);
});

export const triesBoom = env.task(async function triesBoom() {
  let message = '';
  try {
    await boom('bad input');
  } catch (err) {
    message = (err as Error).message;
  }
  if (failing.has('triesBoom')) throw new Error('triesBoom failed');
  return message;
});

// ---------------------------------------------------------------------------------------------------------------
// Durable time.
// ---------------------------------------------------------------------------------------------------------------

export const stamps = env.task(async function stamps() {
  const first = flyte.durable.now();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const second = flyte.durable.now();
  count('stamps');
  if (failing.has('stamps')) throw new Error('stamps failed');
  return [first, second];
});

export const naps = env.task(async function naps(duration: flyte.Duration) {
  const t0 = Date.now();
  await flyte.durable.sleep(duration);
  const slept = Date.now() - t0;
  count('naps');
  if (failing.has('naps')) throw new Error('naps failed');
  return slept;
});

let sleepRejection: unknown;
export const longNap = env.task(async function longNap(duration: flyte.Duration) {
  gates.open(`napping:${String(duration)}`);
  const t0 = Date.now();
  try {
    await flyte.durable.sleep(duration);
  } catch (err) {
    sleepRejection = err;
    throw err;
  }
  return Date.now() - t0;
});

// ---------------------------------------------------------------------------------------------------------------
// Recovery of a failed fan-out.
// ---------------------------------------------------------------------------------------------------------------

export const fanOut = env.task(async function fanOut(xs: number[]) {
  const settled = await Promise.allSettled(xs.map((x) => child(x)));
  const failed = settled.filter((s) => s.status === 'rejected');
  if (failed.length > 0) throw new Error(`${failed.length} of ${xs.length} children failed`);
  return settled.map((s) => (s as PromiseFulfilledResult<number>).value);
});

async function actionsOf(run: flyte.Run, taskName: string): Promise<flyte.ActionRecord[]> {
  return (await run.actions()).filter((a) => a.taskName === taskName);
}

async function only(run: flyte.Run, taskName: string): Promise<flyte.ActionRecord> {
  const found = await actionsOf(run, taskName);
  assert.equal(found.length, 1, `one ${taskName} action in ${JSON.stringify(found)}`);
  return found[0] as flyte.ActionRecord;
}

describe('traces, durable time and recovery', () => {
  useFlyteRoot('flyte-trace-durable-');
  beforeEach(() => {
    calls.clear();
    failing.clear();
    gates = new Gates();
    sleepRejection = undefined;
  });

  describe('flyte.trace', () => {
    it('records sync, async and async-generator calls as pseudo-actions with inputs and outputs', async () => {
      const run = await flyte.run(usesTraces, 4);
      assert.deepEqual(await run.outputs(), { a: 5, b: 10, seen: [0, 10, 20], syncIsPlain: true });

      const expected: Array<[string, unknown[], unknown]> = [
        ['addOne', [4], 5],
        ['fetchDouble', [5], 10],
        ['countUp', [3], [0, 10, 20]],
      ];
      for (const [fn, inputs, outputs] of expected) {
        const step = await only(run, `trace:${fn}`);
        assert.equal(step.parentName, 'a0');
        assert.equal(step.shortName, fn);
        assert.equal(step.phase, 'succeeded');
        assert.equal(step.cacheHit, false);
        assert.ok(step.startedAt !== null && step.endedAt !== null && step.endedAt >= step.startedAt);
        assert.deepEqual(await run.action(step.name).inputs(), inputs);
        assert.deepEqual(await run.action(step.name).outputs(), outputs);
      }
    });

    it('replays recorded traces when a failed run is recovered, so each traced function runs once', async () => {
      failing.add('usesTraces');
      const run = await flyte.run(usesTraces, 7);
      await assert.rejects(run.outputs(), /usesTraces failed after its traces/);
      const before = await run.actions();
      assert.deepEqual([called('addOne'), called('fetchDouble'), called('countUp')], [1, 1, 1]);

      failing.delete('usesTraces');
      const recovered = await flyte.rerun(run.name, { recover: true });
      assert.equal(recovered.name, run.name);
      assert.deepEqual(await recovered.outputs(), { a: 8, b: 16, seen: [0, 10, 20], syncIsPlain: true });
      assert.equal(recovered.phase, 'succeeded');
      assert.deepEqual(
        [called('addOne'), called('fetchDouble'), called('countUp')],
        [1, 1, 1],
        'replayed from the record, not run again',
      );
      const after = await recovered.actions();
      for (const step of before.filter((a) => a.taskName.startsWith('trace:'))) {
        const now = after.find((a) => a.name === step.name);
        assert.equal(now?.endedAt, step.endedAt, `${step.taskName} kept its record`);
      }
      assert.equal(after.length, before.length, 'no new steps');
    });

    it('records what an async generator yielded before its consumer stopped, closes it, and replays that', async () => {
      failing.add('takesTwo');
      const run = await flyte.run(takesTwo, 5);
      await assert.rejects(run.outputs(), /takesTwo failed/);
      const step = await only(run, 'trace:countUp');
      assert.equal(step.phase, 'succeeded');
      assert.deepEqual(await run.action(step.name).outputs(), [0, 10]);
      assert.deepEqual([called('countUp'), called('countUp:closed')], [1, 1], 'the traced generator was closed');

      failing.delete('takesTwo');
      const recovered = await flyte.rerun(run.name, { recover: true });
      assert.deepEqual(await recovered.outputs(), [0, 10]);
      assert.equal(called('countUp'), 1, 'replayed');
    });

    it('fails the call and the step when the result cannot be recorded', async () => {
      const run = await flyte.run(recordsBadOutput);
      assert.equal(await run.outputs(), 'RuntimeDataValidationError');
      const step = await only(run, 'trace:makesFunction');
      assert.equal(step.phase, 'failed');
      assert.equal(step.error?.code, 'RuntimeDataValidationError');
    });

    it('is a plain call outside a task', async () => {
      assert.equal(addOne(1), 2);
      assert.equal(await fetchDouble(2), 4);
      const seen: number[] = [];
      for await (const v of countUp(2)) seen.push(v);
      assert.deepEqual(seen, [0, 10]);
      assert.deepEqual([called('addOne'), called('fetchDouble'), called('countUp')], [1, 1, 1]);
    });

    it('throws TraceDoesNotAllowNestedTasksError for a task called inside a trace', async () => {
      const caught = await flyte.run(catchesNestedTask);
      assert.equal(await caught.outputs(), 'TraceDoesNotAllowNestedTasksError');
      assert.equal(called('child:1'), 0, 'the task did not run');
      assert.equal((await actionsOf(caught, 'tracedurable.child')).length, 0, 'and no action was created');
      const step = await only(caught, 'trace:callsTask');
      assert.equal(step.phase, 'failed');
      assert.equal(step.error?.code, 'TraceDoesNotAllowNestedTasksError');

      const uncaught = await flyte.run(nestedTaskFails);
      await assert.rejects(uncaught.outputs(), flyte.errors.TraceDoesNotAllowNestedTasksError);
    });

    it('records a failing trace as failed, and runs it again on recovery', async () => {
      failing.add('triesBoom');
      const run = await flyte.run(triesBoom);
      await assert.rejects(run.outputs(), /triesBoom failed/);
      const step = await only(run, 'trace:boom');
      assert.equal(step.phase, 'failed');
      assert.equal(step.error?.code, 'RangeError');
      assert.match(step.error?.message ?? '', /bad input/);
      assert.equal(await run.action(step.name).outputs(), undefined);

      failing.delete('triesBoom');
      const recovered = await flyte.rerun(run.name, { recover: true });
      assert.equal(await recovered.outputs(), 'bad input');
      assert.equal(called('boom'), 2, 'a failed trace is not replayed');
    });
  });

  describe('flyte.durable', () => {
    it('now() is recorded and replays the same values on recovery', async () => {
      failing.add('stamps');
      const run = await flyte.run(stamps);
      await assert.rejects(run.outputs(), /stamps failed/);
      const steps = await actionsOf(run, 'durable:now');
      assert.equal(steps.length, 2, 'two calls, two steps');
      const recorded = await Promise.all(steps.map((s) => run.action(s.name).outputs()));
      assert.ok(recorded.every((t) => typeof t === 'number'));

      failing.delete('stamps');
      await new Promise((resolve) => setTimeout(resolve, 10)); // so that Date.now() has moved on
      const recovered = await flyte.rerun(run.name, { recover: true });
      const [first, second] = (await recovered.outputs()) as [number, number];
      assert.deepEqual(new Set([first, second]), new Set(recorded), 'the recorded times');
      assert.ok(second > first, 'in order');
      assert.equal(called('stamps'), 2);
    });

    it('now() is Date.now() outside a task', () => {
      const before = Date.now();
      const t = flyte.durable.now();
      assert.ok(t >= before && t <= Date.now());
    });

    it("sleep('50ms') sleeps and is recorded", async () => {
      const run = await flyte.run(naps, '50ms');
      const slept = await run.outputs();
      assert.ok(slept >= 45, `slept ${slept} ms`);
      const step = await only(run, 'durable:sleep');
      assert.equal(step.phase, 'succeeded');
      const [wakeAt] = (await run.action(step.name).inputs()) as [number];
      const [start] = (await Promise.all(
        (await actionsOf(run, 'durable:now')).map((s) => run.action(s.name).outputs()),
      )) as [number];
      assert.equal(wakeAt - start, 50, 'wakes 50 ms after the durable moment of the call');
    });

    it('a finished sleep replays instantly on recovery', async () => {
      failing.add('naps');
      const run = await flyte.run(naps, 300);
      await assert.rejects(run.outputs(), /naps failed/);
      failing.delete('naps');
      const recovered = await flyte.rerun(run.name, { recover: true });
      const slept = (await recovered.outputs()) as number;
      assert.ok(slept < 100, `the recovered sleep took ${slept} ms, not 300`);
      assert.equal(called('naps'), 2);
    });

    it('rejects when the run is aborted, and a recovered sleep waits only for what is left', async () => {
      const run = await flyte.run(longNap, '600ms');
      await gates.wait('napping:600ms');
      const abortedAt = Date.now();
      await run.abort('enough');
      assert.ok(Date.now() - abortedAt < 300, 'abort did not wait for the sleep');
      assert.equal(run.phase, 'aborted');
      assert.ok(sleepRejection instanceof flyte.errors.ActionAbortedError, `rejected with ${String(sleepRejection)}`);
      await assert.rejects(run.outputs(), flyte.errors.ActionAbortedError);
      const step = await only(run, 'durable:sleep');
      assert.equal(step.phase, 'failed');
      const [wakeAt] = (await run.action(step.name).inputs()) as [number];

      await new Promise((resolve) => setTimeout(resolve, 250)); // time passes while nothing runs
      const resumedAt = Date.now();
      const recovered = await flyte.rerun(run.name, { recover: true });
      const slept = (await recovered.outputs()) as number;
      const endedAt = Date.now();
      const left = wakeAt - resumedAt;
      // The body's sleep starts once the recovery is under way (a few store round trips after resumedAt, more on
      // Postgres): what it must not do is wake before the recorded wake time, nor sleep the whole duration again.
      assert.ok(endedAt >= wakeAt - 2, `ended ${wakeAt - endedAt} ms before the recorded wake time`);
      assert.ok(slept <= left + 150, `slept ${slept} ms; ${left} ms were left of 600`);
      assert.ok(slept < 450, 'not the whole duration again');
    });

    it("sleeps longer than setTimeout's limit of about 24.8 days", async () => {
      const run = await flyte.run(longNap, '700h');
      await gates.wait('napping:700h');
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(run.phase, 'running', 'still asleep');
      await run.abort('not waiting a month');
      assert.equal(run.phase, 'aborted');
    });

    it('sleep outside a task rejects with NotInTaskContextError', async () => {
      await assert.rejects(flyte.durable.sleep('50ms'), flyte.errors.NotInTaskContextError);
      await assert.rejects(flyte.durable.sleep('soon' as flyte.Duration), TypeError);
    });
  });

  describe('recovery of a failed run', () => {
    it('runs again only the failed child; succeeded children keep their records', async () => {
      failing.add('child:2');
      const run = await flyte.run(fanOut, [1, 2, 3]);
      await assert.rejects(run.outputs(), /1 of 3 children failed/);
      const before = await actionsOf(run, 'tracedurable.child');
      assert.deepEqual(before.map((a) => a.phase).sort(), ['failed', 'succeeded', 'succeeded']);
      assert.deepEqual([called('child:1'), called('child:2'), called('child:3')], [1, 1, 1]);

      failing.delete('child:2');
      const recovered = await flyte.rerun(run.name, { recover: true });
      assert.deepEqual(await recovered.outputs(), [100, 200, 300]);
      assert.equal(recovered.phase, 'succeeded');
      assert.deepEqual([called('child:1'), called('child:2'), called('child:3')], [1, 2, 1]);

      const after = await actionsOf(recovered, 'tracedurable.child');
      assert.equal(after.length, 3, 'the same three actions');
      for (const was of before) {
        const now = after.find((a) => a.name === was.name) ?? assert.fail(`${was.name} is still recorded`);
        if (was.phase === 'succeeded') assert.equal(now.endedAt, was.endedAt, `${was.name} did not run again`);
        else assert.equal(now.phase, 'succeeded', `${was.name} ran again and succeeded`);
      }
      assert.equal((await recovered.record()).phase, 'succeeded');
    });
  });
});
