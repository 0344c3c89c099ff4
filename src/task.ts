/**
 * The `Task` handle returned by `env.task(...)`: callable with the function's own signature.
 * @module
 */
import type { Cache } from './cache.js';
import {
  SyncTaskCallInAsyncContextError,
  TraceDoesNotAllowNestedTasksError,
} from './errors.js';
import { currentFrame } from './internal/frame.js';
import type { TaskDefinition } from './internal/task-definition.js';
import {
  resolveCache,
  resolveMaxInline,
  resolveRetries,
  resolveQueuedTimeout,
  resolveTimeout,
  type ResolvedRetries,
  type TaskOverrides,
} from './options.js';

const DEFINITION = Symbol.for('flyte-ts.task-definition');

/** Methods and properties every task handle has, besides being callable. */
export interface TaskMethods<Args extends unknown[], R> {
  /** Fully qualified name, `${env.name}.${name}`. */
  readonly name: string;
  /** Display name. */
  readonly shortName: string;
  /** Name of the environment the task belongs to. */
  readonly envName: string;
  /** `true` for `async` task bodies. */
  readonly isAsync: boolean;
  /**
   * Calls the task from async code, sync or async task alike: inside a run, a child action; outside, a plain call.
   *
   * @example
   * ```ts
   * const y = await step1.aio(3);
   * ```
   */
  aio(...args: Args): Promise<Awaited<R>>;
  /** Calls the function in this process without creating an action (no record, no retries, no cache). */
  forward(...args: Args): R;
  /**
   * A handle to the same task (same identity and name) with some options changed.
   *
   * @example
   * ```ts
   * await flyte.map(processItem.override({ retries: 3, timeout: '10s' }), items);
   * ```
   */
  override(overrides: TaskOverrides): Task<Args, R>;
  /** Retry settings after validation. */
  readonly retries: ResolvedRetries;
  /** Per-attempt timeout in ms, if any. */
  readonly timeoutMs: number | undefined;
  /** The task's cache settings. */
  readonly cache: Cache;
}

/**
 * A task: call it like the function it wraps. Inside a run each call is a recorded child action; outside any run
 * it is a plain function call.
 */
export type Task<Args extends unknown[] = never[], R = unknown> = ((...args: Args) => R) & TaskMethods<Args, R>;

/** Any task, whatever its signature. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTask = Task<any[], any>;

/** The definition behind a task handle, or `undefined` when `value` is not a task. */
export function taskDefinition(value: unknown): TaskDefinition | undefined {
  if (typeof value !== 'function') return undefined;
  return (value as unknown as { [DEFINITION]?: TaskDefinition })[DEFINITION];
}

/** Runs a call of `def` from wherever the caller is: a child action inside a run, a plain call outside. */
function invoke(def: TaskDefinition, args: unknown[], viaAio: boolean): unknown {
  const frame = currentFrame();
  if (frame === undefined) {
    return viaAio ? Promise.resolve().then(() => def.fn(...(args as never[]))) : def.fn(...(args as never[]));
  }
  if (frame.kind === 'trace') {
    throw new TraceDoesNotAllowNestedTasksError(
      `task ${def.name} was called inside a trace; a traced function must not call tasks (call them from the task instead)`,
    );
  }
  if (!def.isAsync && !viaAio) {
    if (!frame.sync) {
      throw new SyncTaskCallInAsyncContextError(
        `sync task ${def.name} was called from async code; use \`await ${def.shortName}.aio(...)\` instead`,
      );
    }
    return frame.run.controller.submitSync(frame, def, args);
  }
  return frame.run.controller.submit(frame, def, args);
}

/** Wraps a definition into a callable handle. */
export function makeTask<Args extends unknown[], R>(def: TaskDefinition): Task<Args, R> {
  const handle = function (...args: unknown[]): unknown {
    return invoke(def, args, false);
  } as unknown as Task<Args, R>;
  const methods: TaskMethods<Args, R> & { [DEFINITION]: TaskDefinition } = {
    [DEFINITION]: def,
    name: def.name,
    shortName: def.shortName,
    envName: def.envName,
    isAsync: def.isAsync,
    retries: def.retries,
    timeoutMs: def.timeoutMs,
    cache: def.cache,
    aio: (...args: Args) => invoke(def, args, true) as Promise<Awaited<R>>,
    forward: (...args: Args) => def.fn(...(args as unknown as never[])) as R,
    override: (overrides: TaskOverrides) => makeTask<Args, R>(applyOverrides(def, overrides)),
  };
  for (const [key, value] of [...Object.entries(methods), [DEFINITION, def] as const]) {
    Object.defineProperty(handle, key, { value, enumerable: key !== DEFINITION, configurable: false });
  }
  return handle;
}

function applyOverrides(def: TaskDefinition, o: TaskOverrides): TaskDefinition {
  if (typeof o !== 'object' || o === null) {
    throw new TypeError(`${def.name}.override: expected an options object; received ${String(o)}`);
  }
  const what = `${def.name}.override`;
  return {
    ...def,
    shortName: o.shortName ?? def.shortName,
    retries: o.retries === undefined ? def.retries : resolveRetries(o.retries, `${what}: retries`),
    timeoutMs: o.timeout === undefined ? def.timeoutMs : resolveTimeout(o.timeout, `${what}: timeout`),
    queuedTimeoutMs:
      o.timeout === undefined ? def.queuedTimeoutMs : resolveQueuedTimeout(o.timeout, `${what}: timeout`),
    cache: resolveCache(o.cache, def.cache, `${what}: cache`),
    maxInlineIoBytes:
      o.maxInlineIoBytes === undefined ? def.maxInlineIoBytes : resolveMaxInline(o.maxInlineIoBytes, `${what}: maxInlineIoBytes`),
    resources: o.resources ?? def.resources,
    envVars: o.envVars ?? def.envVars,
    queue: o.queue ?? def.queue,
    reusable: o.reusable ?? def.reusable,
  };
}
