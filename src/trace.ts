/**
 * `flyte.trace`: record a function's calls inside a task as light steps, replayed when the run is recovered.
 * @module
 */
import { describe } from './internal/duration.js';
import type { StepHandle } from './internal/controller.js';
import { currentFrame, runInFrame } from './internal/frame.js';

/**
 * Wraps `fn` so that each call inside a task is recorded as a step of that task's action (inputs, output,
 * timing) and, when the run is recovered with `flyte.rerun(name, { recover: true })`, answered from the record
 * instead of running again. Works for sync and async functions and async generators (whose yielded values are
 * recorded and replayed). A traced function must not call tasks (`TraceDoesNotAllowNestedTasksError`). Outside a
 * task it is a plain call.
 *
 * @example
 * ```ts
 * const callModel = flyte.trace(async function callModel(prompt: string) {
 *   return (await fetch(url, { method: 'POST', body: prompt })).text();
 * });
 * export const agent = env.task(async function agent(q: string) { return callModel(q); });
 * ```
 *
 * @typeParam F - the wrapped function's type, kept by the wrapper.
 */
export function trace<F extends (...args: never[]) => unknown>(fn: F): F {
  if (typeof fn !== 'function') throw new TypeError(`trace: expected a function; received ${describe(fn)}`);
  const name = fn.name || 'anonymous';
  const kind = (fn as { constructor?: { name?: string } }).constructor?.name;
  if (kind === 'AsyncGeneratorFunction') return traceGenerator(fn, name);
  const traced = function (this: unknown, ...args: Parameters<F>): unknown {
    const frame = currentFrame();
    if (frame === undefined) return fn.apply(this, args);
    const step = frame.run.controller.beginStep(frame, 'trace', name, args);
    if (step.replayed) return kind === 'AsyncFunction' ? Promise.resolve(step.value) : step.value;
    let result: unknown;
    try {
      result = runInFrame(step.frame, () => fn.apply(this, args));
    } catch (err) {
      step.fail(err);
      throw err;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => succeed(step, value),
        (err: unknown) => {
          step.fail(err);
          throw err;
        },
      );
    }
    return succeed(step, result);
  };
  Object.defineProperty(traced, 'name', { value: name });
  return traced as F;
}

/** Records a step's result; a result that cannot be recorded (not serializable) fails the step and the call. */
function succeed(step: StepHandle, value: unknown): unknown {
  try {
    step.succeed(value);
  } catch (err) {
    step.fail(err);
    throw err;
  }
  return value;
}

function traceGenerator<F extends (...args: never[]) => unknown>(fn: F, name: string): F {
  const traced = async function* (this: unknown, ...args: Parameters<F>): AsyncGenerator<unknown> {
    const frame = currentFrame();
    if (frame === undefined) {
      yield* fn.apply(this, args) as AsyncGenerator<unknown>;
      return;
    }
    const step = frame.run.controller.beginStep(frame, 'trace', name, args);
    if (step.replayed) {
      yield* step.value as unknown[];
      return;
    }
    const values: unknown[] = [];
    let gen: AsyncGenerator<unknown> | undefined;
    let completed = false;
    let failed = false;
    try {
      gen = runInFrame(step.frame, () => fn.apply(this, args)) as AsyncGenerator<unknown>;
      for (;;) {
        const next = await runInFrame(step.frame, () => (gen as AsyncGenerator<unknown>).next());
        if (next.done === true) break;
        values.push(next.value);
        yield next.value;
      }
      completed = true;
    } catch (err) {
      failed = true;
      step.fail(err);
      throw err;
    } finally {
      if (!failed) {
        // The consumer stopped early (`break`, `return`): close the traced generator too, and record what it
        // yielded so far, which is what a replay must yield before the consumer stops again.
        if (!completed) await runInFrame(step.frame, () => gen?.return(undefined));
        succeed(step, values);
      }
    }
  };
  Object.defineProperty(traced, 'name', { value: name });
  return traced as unknown as F;
}
