/**
 * How long a running fan-out (a `flyte.map`, a `flyte.group`) has left, from the rate at which its members
 * complete. Pure: the caller passes the clock, so the estimate is the same function of what was seen, wherever it
 * runs.
 *
 * **The rate is measured over a recent window**, not since the start: {@link EtaEstimator} keeps the history of
 * the done count it saw and divides the completions of the last `windowMs` (30 s) by that time. A slow start is
 * forgotten once it leaves the window, and a map that speeds up or slows down is seen doing so within it. The
 * window always reaches back far enough to hold the last `minDone` completions, so a stall does not freeze the
 * estimate: while nothing completes the window only gets longer for the same completions, the rate falls and the
 * time left **grows**, without bound while the stall lasts.
 *
 * **No estimate** before `minDone` (2) members are done or the fan-out has run `minElapsedMs` (1 s), and none once
 * every member is done (or before any started). Members are done when they ended, however (succeeded, failed,
 * aborted, timed out); cache hits count as done, and so make the rate optimistic while they come.
 *
 * The web UI, which sees snapshots of a group's counts rather than a stream, uses the stateless form of the same
 * gates, `remaining × elapsed / done` since the group started (its `static/format.js`): a stall makes it grow
 * there too, but a slow start stays in it.
 * @module
 */

/** What an estimate is made from: a fan-out's size, how many of its members are done, when its first started. */
export interface FanOutProgress {
  /** Members in all (for a map of known size, its items, started or not). */
  readonly total: number;
  /** Members that ended, whatever how. */
  readonly done: number;
  /** When its first member started (ms since the epoch); `null` while none has. */
  readonly startedAt: number | null;
}

/** Options of {@link EtaEstimator}. */
export interface EtaOptions {
  /** The completion rate is measured over this many recent milliseconds. @default 30_000 */
  readonly windowMs?: number;
  /**
   * No estimate before this many members are done; the window also stretches back to hold at least this many
   * completions. @default 2
   */
  readonly minDone?: number;
  /** No estimate before the fan-out has run this long. @default 1000 */
  readonly minElapsedMs?: number;
}

/** One point of the done count's history: `done` members were done at time `t`. */
interface Point {
  readonly t: number;
  readonly done: number;
}

/**
 * Estimates the time a fan-out has left from the completions it saw recently (see the module's notes). Feed it the
 * fan-out's progress each time it is looked at, with the time; it keeps a history of a few points per completion
 * in the window.
 *
 * @example
 * ```ts
 * const eta = new EtaEstimator();
 * eta.update({ total: 100, done: 0, startedAt: 0 }, 0); // null: nothing done yet
 * eta.update({ total: 100, done: 10, startedAt: 0 }, 5_000); // 45_000: 10 done in 5 s, 90 to go
 * ```
 */
export class EtaEstimator {
  readonly #windowMs: number;
  readonly #minDone: number;
  readonly #minElapsedMs: number;
  /**
   * The done count over time, piecewise linear: the first point is the start (nothing done) or, once older
   * points are dropped, the last one before the window; then for each increase seen, the last time the old count
   * was seen and the time the new one was.
   */
  #points: Point[] = [];
  /** When the last update came. */
  #seenAt = 0;

  constructor(options: EtaOptions = {}) {
    this.#windowMs = positive(options.windowMs ?? 30_000, 'windowMs');
    this.#minDone = options.minDone ?? 2;
    if (!Number.isInteger(this.#minDone) || this.#minDone < 1) {
      throw new RangeError(
        `EtaOptions.minDone: expected an integer of at least 1; received ${String(options.minDone)}`,
      );
    }
    this.#minElapsedMs = options.minElapsedMs ?? 1000;
    if (!Number.isFinite(this.#minElapsedMs) || this.#minElapsedMs < 0) {
      throw new RangeError(
        `EtaOptions.minElapsedMs: expected a non-negative number of milliseconds; received ${String(options.minElapsedMs)}`,
      );
    }
  }

  /**
   * Records the fan-out's progress as seen at `now` (ms, the clock of `startedAt`) and returns the time it has
   * left in milliseconds, or `null` when there is no estimate (see the module's notes). A done count that went
   * down (members run again) or a clock that went back starts the history again.
   */
  update(progress: FanOutProgress, now: number): number | null {
    const { total, done, startedAt } = progress;
    if (startedAt === null || done >= total) {
      this.#points = [];
      return null;
    }
    this.#observe(done, startedAt, now);
    if (done < this.#minDone || now - startedAt < this.#minElapsedMs) return null;
    const from = this.#windowStart(done, now);
    const rate = (done - this.#doneAt(from)) / (now - from);
    return rate > 0 ? (total - done) / rate : null;
  }

  #observe(done: number, startedAt: number, now: number): void {
    const last = this.#points.at(-1);
    if (last === undefined || done < last.done || now < this.#seenAt) {
      // What happened before the first look is not known: the start, nothing done, is the only point, and the
      // done count rises in a straight line from it to what is seen now.
      this.#points = [{ t: Math.min(startedAt, now), done: 0 }];
    } else if (done > last.done) {
      // The count rose at some time since it was last seen unchanged.
      if (this.#seenAt > last.t) this.#points.push({ t: this.#seenAt, done: last.done });
    }
    if (done > (this.#points.at(-1)?.done ?? 0)) this.#points.push({ t: now, done });
    this.#seenAt = now;
    // Drop points before the window, keeping the one just before it (to interpolate) and enough recent ones to
    // hold `minDone` completions: each increase adds at most two points.
    const keep = 2 * this.#minDone + 1;
    while (this.#points.length > keep && (this.#points[1] as Point).t <= now - this.#windowMs) this.#points.shift();
  }

  /** Where the window starts: `windowMs` ago (not before the history), or earlier to hold `minDone` completions. */
  #windowStart(done: number, now: number): number {
    const first = this.#points[0] as Point;
    const from = Math.max(first.t, now - this.#windowMs);
    if (done - this.#doneAt(from) >= this.#minDone) return from;
    return Math.min(from, this.#timeOf(done - this.#minDone));
  }

  /** The done count at time `t`, on the history's straight lines (flat after its last point). */
  #doneAt(t: number): number {
    return this.#along('t', t);
  }

  /** The last time the done count was at most `target`, on the history's straight lines. */
  #timeOf(target: number): number {
    return this.#along('done', target);
  }

  /**
   * On the history's straight lines, the other coordinate of the last place where `x` (the time or the done count,
   * both never decreasing) is at most `at`.
   */
  #along(x: 't' | 'done', at: number): number {
    const y = x === 't' ? 'done' : 't';
    const points = this.#points;
    for (let i = points.length - 1; i >= 0; i--) {
      const p = points[i] as Point;
      if (p[x] > at) continue;
      const next = points[i + 1];
      if (next === undefined || next[x] === p[x]) return p[y];
      return p[y] + ((next[y] - p[y]) * (at - p[x])) / (next[x] - p[x]);
    }
    return (points[0] as Point)[y];
  }
}

function positive(value: number, what: string): number {
  if (Number.isFinite(value) && value > 0) return value;
  throw new RangeError(`EtaOptions.${what}: expected a positive number of milliseconds; received ${String(value)}`);
}
