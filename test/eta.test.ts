/**
 * The fan-out ETA estimator (`src/internal/eta.ts`), fed progress with explicit clocks: no sleeps, no wall time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EtaEstimator, type FanOutProgress } from '../src/internal/eta.js';

/** Equal up to floating-point rounding. */
function near(actual: number | null, expected: number, what = ''): void {
  assert.ok(
    actual !== null && Math.abs(actual - expected) < 1e-6 * Math.max(1, expected),
    `${what}: ${actual} ≠ ${expected}`,
  );
}

/** Feeds `eta` one look every `stepMs` from `from` to `to` (inclusive), `done(t)` members done at time t. */
function feed(
  eta: EtaEstimator,
  total: number,
  from: number,
  to: number,
  stepMs: number,
  done: (t: number) => number,
): (number | null)[] {
  const out: (number | null)[] = [];
  for (let t = from; t <= to; t += stepMs) out.push(eta.update({ total, done: done(t), startedAt: 0 }, t));
  return out;
}

describe('EtaEstimator', () => {
  it('has no estimate before 2 are done or 1 s has passed, before any started, or once all are done', () => {
    const eta = new EtaEstimator();
    const at = (done: number, now: number, p: Partial<FanOutProgress> = {}): number | null =>
      eta.update({ total: 10, done, startedAt: 0, ...p }, now);
    assert.equal(at(0, 0, { startedAt: null }), null, 'nothing started');
    assert.equal(at(0, 0), null);
    assert.equal(at(1, 2000), null, 'one done');
    const early = new EtaEstimator();
    assert.equal(early.update({ total: 10, done: 5, startedAt: 0 }, 999), null, 'under a second');
    near(early.update({ total: 10, done: 5, startedAt: 0 }, 1000), 1000, 'at a second, 5 done in 1 s');
    near(at(2, 4000), 16_000, '2 done in 4 s, 8 to go');
    assert.equal(at(10, 5000), null, 'all done');
    assert.equal(at(12, 5000, { total: 12 }), null, 'all done, more than were known');
  });

  it('at a steady rate, gives the remaining items at that rate', () => {
    const eta = new EtaEstimator();
    // One item every 100 ms, looked at ten times a second.
    const etas = feed(eta, 100, 0, 2000, 100, (t) => t / 100);
    near(etas.at(-1) ?? null, 80 * 100, '20 done, 80 to go at 10/s');
    near(eta.update({ total: 100, done: 20, startedAt: 0 }, 2000), 8000, 'a second look at the same time');
  });

  it('forgets a slow start: the rate is that of the last 30 s', () => {
    const eta = new EtaEstimator();
    // Nothing for 60 s, then 10 a second.
    const done = (t: number): number => Math.max(0, Math.floor((t - 60_000) / 100));
    feed(eta, 1000, 0, 100_000, 100, done);
    // 400 done, 600 to go at 10/s: 60 s (done / elapsed since the start would say 4/s, 150 s).
    near(eta.update({ total: 1000, done: 400, startedAt: 0 }, 100_000), 60_000);
  });

  it('grows while nothing completes, past the window too, and comes back when completions do', () => {
    const eta = new EtaEstimator();
    // One a second for 60 s (60 of 100), then a stall, looked at every second.
    feed(eta, 100, 0, 60_000, 1000, (t) => t / 1000);
    const stalled = feed(eta, 100, 61_000, 120_000, 1000, () => 60);
    for (let i = 1; i < stalled.length; i++) {
      assert.ok(
        (stalled[i] ?? 0) > (stalled[i - 1] ?? Infinity),
        `ETA did not grow at ${i + 1} s of stall: ${stalled.join(' ')}`,
      );
    }
    // 10 s in: 20 of the window's 30 s had completions at 1/s: 20 in 30 s, 40 to go.
    near(stalled[9] ?? null, 60_000, '10 s of stall');
    // Past the window: the last 2 completions (from 58 s) over the 62 s since.
    near(stalled.at(-1) ?? null, (40 * 62_000) / 2, '60 s of stall');
    // Then 10 complete at once: they came in the last second, so the last 30 s saw 10 (a line drawn from the last
    // completion before the stall would spread them over the stall, and see about 5).
    near(eta.update({ total: 100, done: 70, startedAt: 0 }, 121_000), 30 * 3000, 'after the stall');
  });

  it('assumes a steady rate before its first look, and starts again when the done count goes down', () => {
    const late = new EtaEstimator();
    near(late.update({ total: 100, done: 50, startedAt: 0 }, 40_000), 40_000, 'first look at 40 s, 50 done');
    const eta = new EtaEstimator();
    feed(eta, 100, 0, 10_000, 1000, (t) => (t / 1000) * 8);
    // Members run again (a recovery): 30 done where 80 were.
    near(eta.update({ total: 100, done: 30, startedAt: 0 }, 12_000), (70 * 12_000) / 30);
  });

  it('refuses options that are not what they should be', () => {
    assert.throws(
      () => new EtaEstimator({ windowMs: 0 }),
      /EtaOptions\.windowMs: expected a positive number of milliseconds; received 0/,
    );
    assert.throws(
      () => new EtaEstimator({ minDone: 1.5 }),
      /EtaOptions\.minDone: expected an integer of at least 1; received 1\.5/,
    );
    assert.throws(
      () => new EtaEstimator({ minElapsedMs: -1 }),
      /EtaOptions\.minElapsedMs: expected a non-negative number/,
    );
  });
});
