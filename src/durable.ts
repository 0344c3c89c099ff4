/**
 * `flyte.durable`: time that a recovered run sees the same way as the run that recorded it.
 * @module
 */
import { NotInTaskContextError } from './errors.js';
import { toMs } from './internal/duration.js';
import { currentFrame } from './internal/frame.js';
import { setLongTimeout } from './internal/timer.js';
import type { Duration } from './types.js';

/**
 * The current time in ms since the epoch, recorded as a step of the running action: when the run is recovered,
 * the same call returns the same value. Outside a task: `Date.now()`.
 *
 * @example
 * ```ts
 * const startedAt = flyte.durable.now();
 * ```
 */
function now(): number {
  const frame = currentFrame();
  if (frame === undefined) return Date.now();
  const step = frame.run.controller.beginStep(frame, 'durable', 'now', []);
  if (step.replayed) return step.value as number;
  const value = Date.now();
  step.succeed(value);
  return value;
}

/**
 * Sleeps until `duration` after the (durable) moment of the call. When the run is recovered, a sleep that had
 * ended returns at once and one that had not sleeps only what is left. Rejects when the action is aborted or
 * times out.
 *
 * @example
 * ```ts
 * await flyte.durable.sleep('5m'); // wait for an external system, survives a crash of the process
 * ```
 * @throws NotInTaskContextError outside a task.
 */
async function sleep(duration: Duration): Promise<void> {
  const ms = toMs(duration, 'durable.sleep');
  const frame = currentFrame();
  if (frame === undefined) throw new NotInTaskContextError('durable.sleep: expected to be called inside a task');
  const wakeAt = now() + ms;
  const step = frame.run.controller.beginStep(frame, 'durable', 'sleep', [wakeAt]);
  if (step.replayed) return;
  const signal = frame.action.signal;
  try {
    await new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const timer = setLongTimeout(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, wakeAt - Date.now()),
      );
      const onAbort = (): void => {
        timer.clear();
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  } catch (err) {
    step.fail(err);
    throw err;
  }
  step.succeed(wakeAt);
}

/** Replay-safe time inside tasks: {@link durable.now} and {@link durable.sleep}. */
export const durable = {
  /** The time (ms since the epoch), recorded at the first call and the same on a recovered run's replay. */
  now,
  /** Sleeps until `duration` after the durable moment of the call; a recovered run sleeps only what is left. */
  sleep,
} as const;
