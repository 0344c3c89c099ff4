/**
 * The errors flyte-ts throws and records, after Flyte 2's `flyte.errors`.
 *
 * Every error the runtime produces derives from {@link BaseRuntimeError}, which carries a stable string `code`
 * and a `kind` (`'user' | 'system' | 'unknown'`). Errors cross the store as {@link SerializedError} records and
 * are rebuilt on the way back with {@link fromSerialized}, so a parent awaiting a child gets a real error object.
 *
 * @example
 * ```ts
 * import * as flyte from 'flyte-ts';
 * try {
 *   await risky(1);
 * } catch (e) {
 *   if (e instanceof flyte.errors.RuntimeUserError && e.code === 'ValueError') { ... }
 * }
 * ```
 * @module
 */

/** Who is to blame for an error: the user's code, the runtime, or nobody knows. */
export type ErrorKind = 'user' | 'system' | 'unknown';

/** The form in which an error is stored and sent between processes. */
export interface SerializedError {
  /** Stable code: the flyte error class name, or the class name of the user's original error. */
  readonly code: string;
  /** Whose fault the error is. */
  readonly kind: ErrorKind;
  /** The error's message. */
  readonly message: string;
  /** The stack trace, when there was one. */
  readonly stack?: string | undefined;
  /** The action that raised it, when known. */
  readonly actionName?: string | undefined;
  /** The flyte error class to rebuild; absent for plain user errors. */
  readonly type?: string | undefined;
  /** Fields of that class beyond the message (e.g. `path`, `timeoutMs`), given back to it when it is rebuilt. */
  readonly details?: Readonly<Record<string, string | number>> | undefined;
}

/** Options shared by all flyte errors. */
export interface RuntimeErrorOptions {
  /** The error that caused this one (ES2022 `cause`). */
  readonly cause?: unknown;
  /** Name of the action the error belongs to. */
  readonly actionName?: string | undefined;
}

/**
 * Root of every error flyte-ts raises.
 *
 * `code` is stable and safe to branch on; `kind` says whose fault it is.
 */
export class BaseRuntimeError extends Error {
  /** A stable string, e.g. `'TaskTimeoutError'` or, for a child's user error, its class name (`'TypeError'`). */
  readonly code: string;
  /** Whose fault it is: `'user'`, `'system'` or `'unknown'`. */
  readonly kind: ErrorKind;
  /** The action the error belongs to, if any. */
  readonly actionName: string | undefined;

  constructor(code: string, kind: ErrorKind, message: string, options: RuntimeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.kind = kind;
    this.actionName = options.actionName;
  }

  /** The class name, e.g. `'TaskTimeoutError'`. */
  override get name(): string {
    return this.constructor.name;
  }

  /** The stored form of this error. */
  toJSON(): SerializedError {
    return {
      code: this.code,
      kind: this.kind,
      message: this.message,
      stack: this.stack,
      actionName: this.actionName,
      type: this.constructor.name,
    };
  }
}

/**
 * An error raised by user code. A child action's failure reaches its parent as a `RuntimeUserError` whose `code`
 * is the original error's class name and whose `actionName` is the child's action name.
 */
export class RuntimeUserError extends BaseRuntimeError {
  constructor(code: string, message: string, options: RuntimeErrorOptions = {}) {
    super(code, 'user', message, options);
  }
}

/** A failure of the runtime itself (store, thread pool, worker), not of the user's code. */
export class RuntimeSystemError extends BaseRuntimeError {
  constructor(code: string, message: string, options: RuntimeErrorOptions = {}) {
    super(code, 'system', message, options);
  }
}

/** A failure whose origin could not be determined. */
export class RuntimeUnknownError extends BaseRuntimeError {
  constructor(code: string, message: string, options: RuntimeErrorOptions = {}) {
    super(code, 'unknown', message, options);
  }
}

/**
 * Thrown by user code to say "retrying cannot help": the action fails at once, whatever its `retries`.
 *
 * @example
 * ```ts
 * if (!valid(x)) throw new flyte.errors.NonRecoverableError(`bad record ${x}`);
 * ```
 */
export class NonRecoverableError extends RuntimeUserError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('NonRecoverableError', message, options);
  }
}

/** Thrown when an attempt runs longer than its task's `timeout`. The action ends in phase `timed_out`. */
export class TaskTimeoutError extends RuntimeUserError {
  /** The timeout that was exceeded (ms), when known. */
  readonly timeoutMs: number | undefined;
  constructor(message: string, options: RuntimeErrorOptions & { timeoutMs?: number } = {}) {
    super('TaskTimeoutError', message, options);
    this.timeoutMs = options.timeoutMs;
  }

  override toJSON(): SerializedError {
    return { ...super.toJSON(), details: this.timeoutMs === undefined ? undefined : { timeoutMs: this.timeoutMs } };
  }
}

/** Thrown when every attempt of an action failed; `cause` is the last attempt's error. */
export class RetriesExhaustedError extends RuntimeUserError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('RetriesExhaustedError', message, options);
  }
}

/** Thrown into (and returned from) an action that was aborted, with `run.abort()` or by an aborted ancestor. */
export class ActionAbortedError extends RuntimeUserError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('ActionAbortedError', message, options);
  }
}

/** Thrown by APIs that only make sense inside a running task (e.g. `flyte.durable.sleep`). */
export class NotInTaskContextError extends RuntimeUserError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('NotInTaskContextError', message, options);
  }
}

/** Thrown when async code calls a sync task directly; use `await task.aio(...)` instead. */
export class SyncTaskCallInAsyncContextError extends RuntimeUserError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('SyncTaskCallInAsyncContextError', message, options);
  }
}

/** Thrown when a function wrapped by `flyte.trace` calls a task. */
export class TraceDoesNotAllowNestedTasksError extends RuntimeUserError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('TraceDoesNotAllowNestedTasksError', message, options);
  }
}

/** Thrown when a value is too large to keep inline and cannot be offloaded. */
export class InlineIOMaxBytesBreached extends RuntimeUserError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('InlineIOMaxBytesBreached', message, options);
  }
}

/** Thrown when the module that defines a task cannot be loaded, or does not define the task. */
export class ModuleLoadError extends RuntimeSystemError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('ModuleLoadError', message, options);
  }
}

/**
 * Thrown when a value cannot cross an action boundary (a function, a class instance with methods, a cycle) or
 * fails the task's `inputs` schema. `path` names the offending place, e.g. `args[0].items[3]`.
 */
export class RuntimeDataValidationError extends RuntimeUserError {
  /** Where the value failed its schema, e.g. `args[0].items[3]`, when known. */
  readonly path: string | undefined;
  constructor(message: string, options: RuntimeErrorOptions & { path?: string } = {}) {
    super('RuntimeDataValidationError', message, options);
    this.path = options.path;
  }

  override toJSON(): SerializedError {
    return { ...super.toJSON(), details: this.path === undefined ? undefined : { path: this.path } };
  }
}

/** Thrown when flyte-ts is used before `flyte.init` could set it up, or `init` got a bad configuration. */
export class InitializationError extends RuntimeSystemError {
  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super('InitializationError', message, options);
  }
}

/**
 * Thrown (or rejected with) when a run store is used after its `close()`.
 *
 * @example
 * ```ts
 * await store.close();
 * await store.getRun('r1'); // rejects with StoreClosedError
 * ```
 */
export class StoreClosedError extends RuntimeSystemError {
  constructor(description: string, options: RuntimeErrorOptions = {}) {
    super('StoreClosedError', `the run store ${description} is closed; open a new store to use it again`, options);
  }
}

/**
 * Thrown (or rejected with) by a store whose database has not answered for longer than its outage limit
 * (`maxOutageMs` of the Postgres store): an operation that waits on the store gives up with it. Buffered writes
 * are not dropped: they stay pending and are retried until the database is back.
 *
 * @example
 * ```ts
 * try {
 *   await run.outputs();
 * } catch (e) {
 *   if (e instanceof flyte.errors.StoreUnavailableError) console.error(`${e.message}; the run goes on once the store is back`);
 * }
 * ```
 */
export class StoreUnavailableError extends RuntimeSystemError {
  /** How long the store had not answered, in ms, when this was thrown. */
  readonly downForMs: number;
  constructor(description: string, downForMs: number, limitMs: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'StoreUnavailableError',
      `the run store ${description} has not answered for ${Math.round(downForMs)} ms: expected it back within ` +
        `its outage limit of ${limitMs} ms (maxOutageMs); the last error was: ${reason}. Buffered writes are kept ` +
        'and retried until it answers',
      { cause },
    );
    this.downForMs = downForMs;
  }
}

/**
 * Thrown (recorded as the action's error) when the workers running an action of a distributed run were lost
 * too many times: after `takeovers` takeovers (a worker died, or lost its job's lock, and another claimed the
 * action) the action fails instead of being taken over again. `workers` names the last workers that lost it,
 * oldest first. The limit is `flyte worker --max-takeovers N` (`WorkerOptions.maxTakeovers`), 5 by default.
 *
 * @example
 * ```ts
 * if (e instanceof flyte.errors.WorkerLostError) console.error(`lost on ${e.workers.join(', ')}`);
 * ```
 */
export class WorkerLostError extends RuntimeSystemError {
  /** How many times the action was taken over, when known. */
  readonly takeovers: number | undefined;
  /** The last workers (`host:pid`) that lost the action, oldest first. */
  readonly workers: readonly string[];
  /** `workers`: a list, or the space-separated form it is stored in. */
  constructor(
    message: string,
    options: RuntimeErrorOptions & { takeovers?: number; workers?: readonly string[] | string } = {},
  ) {
    super('WorkerLostError', message, options);
    this.takeovers = options.takeovers;
    const workers = options.workers ?? [];
    this.workers = typeof workers === 'string' ? workers.split(' ').filter((w) => w !== '') : [...workers];
  }

  override toJSON(): SerializedError {
    const details: Record<string, string | number> = { workers: this.workers.join(' ') };
    if (this.takeovers !== undefined) details['takeovers'] = this.takeovers;
    return { ...super.toJSON(), details };
  }
}

/** One failed item of a `flyte.map`, as {@link MapFailureBudgetExceeded} reports it. */
export interface MapItemFailure {
  /** The item's 0-based position in the map's input. */
  readonly index: number;
  /** The error's `code` (the original error's class name for a user error). */
  readonly code: string;
  /** The error's message. */
  readonly message: string;
  /** The item's action, when known. */
  readonly actionName?: string | undefined;
}

/** How many failed items a {@link MapFailureBudgetExceeded} lists in `firstErrors`. */
export const MAP_FAILURES_LISTED = 5;

/**
 * Thrown (rejected with) by a `flyte.map` with a failure budget (`minSuccessRatio`, `maxFailures`) the moment the
 * budget can no longer hold: the map's items still running are aborted and those not started never start. It
 * carries the counts at that moment and the first failed items (at most {@link MAP_FAILURES_LISTED}, in the
 * order they failed). A task that lets it escape fails with `code` `'MapFailureBudgetExceeded'`.
 *
 * @example
 * ```ts
 * try {
 *   await flyte.map(fetchPage, urls, { minSuccessRatio: 0.95 });
 * } catch (e) {
 *   if (e instanceof flyte.errors.MapFailureBudgetExceeded) {
 *     console.error(`${e.failed} of ${e.total} failed; first: #${e.firstErrors[0]?.index} ${e.firstErrors[0]?.message}`);
 *   }
 * }
 * ```
 */
export class MapFailureBudgetExceeded extends RuntimeUserError {
  /** The map's number of items, or `null` when its input has no known size and was not exhausted yet. */
  readonly total: number | null;
  /** Items that succeeded before the budget broke. */
  readonly succeeded: number;
  /** Items that failed (the one that broke the budget included). */
  readonly failed: number;
  /** Items running when the budget broke: they were aborted. */
  readonly cancelled: number;
  /** Items that never started, or `null` when `total` is unknown. */
  readonly notStarted: number | null;
  /** How many failures the budget allowed (it broke at the next one). */
  readonly allowedFailures: number;
  /** The map's `minSuccessRatio`, or `null`. */
  readonly minSuccessRatio: number | null;
  /** The map's `maxFailures`, or `null`. */
  readonly maxFailures: number | null;
  /** The first failed items, in the order they failed. */
  readonly firstErrors: readonly MapItemFailure[];

  /**
   * `options` holds the counts (absent ones are `0`, or `null` where allowed) and `firstErrors`: a list, or the
   * JSON text it is stored as.
   */
  constructor(
    message: string,
    options: RuntimeErrorOptions &
      Partial<MapFailureBudgetCounts> & { readonly firstErrors?: readonly MapItemFailure[] | string } = {},
  ) {
    super('MapFailureBudgetExceeded', message, options);
    this.total = options.total ?? null;
    this.succeeded = options.succeeded ?? 0;
    this.failed = options.failed ?? 0;
    this.cancelled = options.cancelled ?? 0;
    this.notStarted = options.notStarted ?? null;
    this.allowedFailures = options.allowedFailures ?? 0;
    this.minSuccessRatio = options.minSuccessRatio ?? null;
    this.maxFailures = options.maxFailures ?? null;
    const first = options.firstErrors ?? [];
    this.firstErrors = typeof first === 'string' ? parseFailures(first) : [...first];
  }

  override toJSON(): SerializedError {
    const details: Record<string, string | number> = {
      succeeded: this.succeeded,
      failed: this.failed,
      cancelled: this.cancelled,
      allowedFailures: this.allowedFailures,
      firstErrors: JSON.stringify(this.firstErrors),
    };
    // Unknown counts and unset options are left out: they come back as null.
    const nullable = { total: this.total, notStarted: this.notStarted, minSuccessRatio: this.minSuccessRatio, maxFailures: this.maxFailures };
    for (const [key, value] of Object.entries(nullable)) if (value !== null) details[key] = value;
    return { ...super.toJSON(), details };
  }
}

/** The counts a {@link MapFailureBudgetExceeded} carries, taken at the moment the budget broke. */
export type MapFailureBudgetCounts = Pick<
  MapFailureBudgetExceeded,
  'total' | 'succeeded' | 'failed' | 'cancelled' | 'notStarted' | 'allowedFailures' | 'minSuccessRatio' | 'maxFailures'
>;

/** The stored form of `firstErrors`, read back; what is not a list of failures is left out. */
function parseFailures(text: string): MapItemFailure[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return []; // a damaged record loses its list, not the error
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((f: unknown): MapItemFailure[] => {
    const { index, code, message, actionName } = (f ?? {}) as Record<string, unknown>;
    if (typeof index !== 'number' || typeof code !== 'string' || typeof message !== 'string') return [];
    return [{ index, code, message, actionName: typeof actionName === 'string' ? actionName : undefined }];
  });
}

type Rebuildable = new (message: string, options: RuntimeErrorOptions) => BaseRuntimeError;

const REBUILDABLE: Readonly<Record<string, Rebuildable>> = {
  NonRecoverableError,
  TaskTimeoutError,
  RetriesExhaustedError,
  ActionAbortedError,
  NotInTaskContextError,
  SyncTaskCallInAsyncContextError,
  TraceDoesNotAllowNestedTasksError,
  InlineIOMaxBytesBreached,
  ModuleLoadError,
  RuntimeDataValidationError,
  InitializationError,
  WorkerLostError,
  MapFailureBudgetExceeded,
};

/** The class name of any thrown value, used as the `code` of a user error (`'TypeError'`, `'Error'`, ...). */
export function errorCode(err: unknown): string {
  if (err instanceof BaseRuntimeError) return err.code;
  if (err instanceof Error) return err.constructor?.name || err.name || 'Error';
  return typeof err === 'object' && err !== null ? (err.constructor?.name ?? 'Object') : typeof err;
}

/** Turns anything thrown into its stored form. Non-flyte errors become user errors named after their class. */
export function serializeError(err: unknown, actionName?: string): SerializedError {
  if (err instanceof BaseRuntimeError) {
    return { ...err.toJSON(), actionName: err.actionName ?? actionName };
  }
  if (err instanceof Error) {
    return { code: errorCode(err), kind: 'user', message: err.message, stack: err.stack, actionName };
  }
  return { code: errorCode(err), kind: 'user', message: String(err), actionName };
}

/**
 * Rebuilds an error from its stored form: a flyte error class when `type` names one, else a
 * {@link RuntimeUserError} (or system/unknown error, after `kind`) carrying the original `code`.
 */
export function fromSerialized(s: SerializedError): BaseRuntimeError {
  const options: RuntimeErrorOptions = { ...s.details, actionName: s.actionName };
  let err: BaseRuntimeError;
  const Known = s.type === undefined ? undefined : REBUILDABLE[s.type];
  if (Known !== undefined) err = new Known(s.message, options);
  else if (s.kind === 'system') err = new RuntimeSystemError(s.code, s.message, options);
  else if (s.kind === 'unknown') err = new RuntimeUnknownError(s.code, s.message, options);
  else err = new RuntimeUserError(s.code, s.message, options);
  if (s.stack !== undefined) err.stack = s.stack;
  return err;
}
