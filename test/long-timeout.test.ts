/**
 * Timeouts longer than Node's timer limit (2^31 - 1 ms, ~24.8 days): honoured through chained timers, not fired
 * after 1 ms as a bare `setTimeout` would; and the long-timer helper itself, with small chunks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as flyte from 'flyte-ts';
import { MAX_TIMER_MS, setLongTimeout } from '../src/internal/timer.js';
import { useFlyteRoot } from './support/flyte-root.js';
import { Gate } from './support/gates.js';

const env = new flyte.TaskEnvironment({ name: 'long_timeout' });
const holding = new Gate();
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const slow = env.task({ timeout: '600h' }, async function slow(ms: number) {
  await pause(ms);
  return 'done';
});

export const hold = env.task(async function hold() {
  holding.open(undefined);
  await pause(50);
  return 'held';
});

export const patient = env.task({ timeout: { maxRuntime: '600h', maxQueuedTime: '600h' } }, async function patient() {
  await pause(50);
  return 'ran';
});

export const queued = env.task(async function queued() {
  const first = hold();
  await holding.promise; // `hold` has the only slot: `patient` waits in the queue while it pauses
  return [await first, await patient()];
});

describe('timeouts of 2^31 ms or more', () => {
  useFlyteRoot('flyte-long-timeout-');

  it("a task with timeout '600h' that takes 50 ms succeeds", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const run = await flyte.run(slow, 50);
      assert.equal(await run.outputs(), 'done');
      const rec = (await run.actions()).find((a) => a.taskName === 'long_timeout.slow');
      assert.equal(rec?.phase, 'succeeded');
      assert.equal(rec?.attempts, 1);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.filter((name) => name === 'TimeoutOverflowWarning'),
      [],
    );
  });

  it("an action queued for a slot under maxQueuedTime '600h' waits and runs", async () => {
    const run = await flyte.withRunContext({ maxActionConcurrency: 1 }).run(queued);
    assert.deepEqual(await run.outputs(), ['held', 'ran']);
    const rec = (await run.actions()).find((a) => a.taskName === 'long_timeout.patient');
    assert.equal(rec?.phase, 'succeeded');
  });

  it('a retry backoff beyond the timer limit is refused with the limit', () => {
    assert.throws(
      () => env.task({ retries: { count: 1, maxBackoff: '600h' } }, async function tooPatient() {}),
      (err: unknown) =>
        err instanceof RangeError &&
        err.message.includes(`at most ${MAX_TIMER_MS} ms`) &&
        /2160000000 ms/.test(err.message),
    );
  });
});

describe('setLongTimeout', () => {
  it('a delay of several chunks fires once, after the whole delay', async () => {
    const start = performance.now();
    const fired = new Gate<number>();
    let calls = 0;
    setLongTimeout(
      () => {
        calls += 1;
        fired.open(performance.now() - start);
      },
      75,
      10,
    );
    const elapsed = await fired.promise;
    assert.ok(elapsed >= 75, `fired after ${elapsed} ms, before the 75 ms asked for`);
    await pause(30); // a second call would come one chunk later
    assert.equal(calls, 1);
  });

  it('a cleared timer never fires, also when cleared between chunks', async () => {
    let calls = 0;
    const timer = setLongTimeout(() => (calls += 1), 40, 10);
    await pause(15); // at least one chunk has passed
    timer.clear();
    await pause(50);
    assert.equal(calls, 0);
  });

  it('refuses delays that are not finite, and chunks beyond the limit', () => {
    assert.throws(() => setLongTimeout(() => {}, Infinity), /expected a finite delay >= 0 ms; received Infinity/);
    assert.throws(() => setLongTimeout(() => {}, 1, MAX_TIMER_MS + 1), RangeError);
  });
});
