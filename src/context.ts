/**
 * `flyte.ctx()`, `flyte.customContext()` and `flyte.group()`: what the running code can know about where it runs.
 * @module
 */
import { describe } from './internal/duration.js';
import { currentFrame, runInFrame } from './internal/frame.js';

/** The running action, as `flyte.ctx()` shows it. */
export interface TaskContext {
  /** The run the action belongs to. */
  readonly runName: string;
  /** The running action: its name and its run's name. */
  readonly action: {
    /** The action's name (`'a0'` for the root). */
    readonly name: string;
    /** The run the action belongs to. */
    readonly runName: string;
  };
  /** Fully qualified task name. */
  readonly taskName: string;
  /** 1-based. */
  readonly attempt: number;
  /** The run's mode: `'local'` when the process that started it runs its actions, `'remote'` when workers do. */
  readonly mode: 'local' | 'remote';
  /** The innermost `flyte.group` around the code, or `null`. */
  readonly group: string | null;
  /** The run's custom context (`flyte.customContext`), inherited by every action. */
  readonly customContext: Readonly<Record<string, string>>;
  /** Fires when the action is aborted or its attempt times out; pass it to `fetch`, timers, child processes. */
  readonly signal: AbortSignal;
}

/**
 * The context of the running task, or `undefined` outside any task.
 *
 * @example
 * ```ts
 * const { runName, action, attempt, signal } = flyte.ctx()!;
 * await fetch(url, { signal });
 * ```
 */
export function ctx(): TaskContext | undefined {
  const frame = currentFrame();
  if (frame === undefined) return undefined;
  const { action } = frame;
  return {
    runName: frame.run.name,
    action: { name: action.name, runName: action.runName },
    taskName: action.taskName,
    attempt: frame.attempt,
    mode: frame.run.mode,
    group: frame.group,
    customContext: frame.customContext,
    get signal() {
      return action.signal;
    },
  };
}

/**
 * Runs `fn` with extra string metadata in the custom context, seen by it and by every action it creates (and
 * their descendants). Never part of a cache key. Outside a run it simply calls `fn`.
 *
 * @example
 * ```ts
 * await flyte.customContext({ tenant: 'acme' }, () => processItem(1)); // processItem sees ctx().customContext.tenant
 * ```
 */
export function customContext<T>(values: Readonly<Record<string, string>>, fn: () => T): T {
  if (typeof values !== 'object' || values === null) {
    throw new TypeError(`customContext: expected an object of string values; received ${describe(values)}`);
  }
  for (const [key, value] of Object.entries(values)) {
    if (typeof value !== 'string') {
      throw new TypeError(`customContext: expected string values; received ${describe(value)} for key ${JSON.stringify(key)}`);
    }
  }
  if (typeof fn !== 'function') throw new TypeError(`customContext: expected a function; received ${describe(fn)}`);
  const frame = currentFrame();
  if (frame === undefined) return fn();
  return runInFrame({ ...frame, customContext: { ...frame.customContext, ...values } }, fn);
}

/**
 * Runs `fn` in a named group: the actions it creates carry the group's name, and the CLI and UI fold them into
 * one node. The innermost group wins. Works with sync and async functions; outside a run it simply calls `fn`.
 *
 * @example
 * ```ts
 * const results = await flyte.group('preprocess', () => Promise.all(files.map((f) => clean(f))));
 * ```
 */
export function group<T>(name: string, fn: () => T): T {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`group: expected a non-empty group name; received ${describe(name)}`);
  }
  if (typeof fn !== 'function') throw new TypeError(`group: expected a function; received ${describe(fn)}`);
  const frame = currentFrame();
  if (frame === undefined) return fn();
  return runInFrame({ ...frame, group: name }, fn);
}
