/**
 * A timeout that honours any delay. Node's `setTimeout` fires after 1 ms (with a `TimeoutOverflowWarning`) for
 * delays of 2^31 ms (~24.8 days) or more; {@link setLongTimeout} waits in chunks no longer than that, measuring
 * the total on the monotonic clock, so `timeout: '600h'` means 600 hours.
 *
 * @example
 * ```ts
 * const timer = setLongTimeout(() => controller.abort(), 600 * 3_600_000);
 * timer.clear(); // when the work ends first
 * ```
 * @module
 */

/** The longest delay Node's `setTimeout` honours: 2^31 - 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending {@link setLongTimeout}. */
export interface LongTimer {
  /** Cancels the timer; harmless after it fired or when called twice. */
  clear(): void;
}

/**
 * Calls `fn` once, `ms` milliseconds from now (never earlier), whatever the size of `ms`.
 *
 * @param ms - the delay; non-finite or negative delays are refused.
 * @param chunkMs - the longest single `setTimeout` used; only tests pass a smaller one. @default MAX_TIMER_MS
 * @throws RangeError when `ms` is not a finite number >= 0, or `chunkMs` is not an integer from 1 to 2^31 - 1.
 */
export function setLongTimeout(fn: () => void, ms: number, chunkMs: number = MAX_TIMER_MS): LongTimer {
  if (!(Number.isFinite(ms) && ms >= 0)) {
    throw new RangeError(`setLongTimeout: expected a finite delay >= 0 ms; received ${ms}`);
  }
  if (!Number.isInteger(chunkMs) || chunkMs < 1 || chunkMs > MAX_TIMER_MS) {
    throw new RangeError(`setLongTimeout: expected a chunk of 1 to ${MAX_TIMER_MS} ms; received ${chunkMs}`);
  }
  const deadline = performance.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  let cleared = false;
  const arm = (): void => {
    if (cleared) return;
    const left = deadline - performance.now();
    if (left <= 0) {
      cleared = true;
      fn();
    } else {
      // Round up: a timer may fire up to a millisecond before a fractional deadline.
      timer = setTimeout(arm, Math.min(Math.ceil(left), chunkMs));
    }
  };
  timer = setTimeout(arm, Math.min(Math.ceil(ms), chunkMs));
  return {
    clear(): void {
      cleared = true;
      clearTimeout(timer);
    },
  };
}
