/**
 * The resolved, validated definition behind a `Task` handle: what the controllers execute.
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Cache } from '../cache.js';
import type { ResolvedRetries, Resources, ReusePolicy } from '../options.js';

/** Everything a controller needs to run a task. Immutable; `task.override` makes a new one. */
export interface TaskDefinition {
  /** Name of the environment. */
  readonly envName: string;
  /** Fully qualified name, `${env}.${name}`: the task's identity. */
  readonly name: string;
  readonly shortName: string;
  readonly fn: (...args: never[]) => unknown;
  /** Declared `async` (or returning an async generator): runs on the caller's event loop. */
  readonly isAsync: boolean;
  readonly retries: ResolvedRetries;
  readonly timeoutMs: number | undefined;
  /** Bound on the wait before the first attempt starts (`Timeout.maxQueuedTime`). */
  readonly queuedTimeoutMs: number | undefined;
  readonly cache: Cache;
  readonly maxInlineIoBytes: number;
  readonly inputs: StandardSchemaV1 | undefined;
  /** Absolute path of the module that defined the task, or `null` when unknown. */
  readonly module: string | null;
  readonly resources: Resources;
  readonly envVars: Readonly<Record<string, string>>;
  readonly queue: string | undefined;
  readonly reusable: ReusePolicy | undefined;
  readonly report: boolean;
}
