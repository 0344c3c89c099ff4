/**
 * `TaskEnvironment`: a named group of tasks sharing defaults (cache, resources, environment, secrets, ...).
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { Cache, type CacheRequest } from './cache.js';
import { validateCache } from './internal/cache-key.js';
import { callerModule } from './internal/caller.js';
import { describe } from './internal/duration.js';
import type { TaskDefinition } from './internal/task-definition.js';
import { assertUnregistered, registerTask } from './internal/task-registry.js';
import {
  resolveCache,
  resolveMaxInline,
  resolveRetries,
  resolveQueuedTimeout,
  resolveTimeout,
  type Resources,
  type ReusePolicy,
  type SecretRequest,
  type TaskOptions,
} from './options.js';
import { makeTask, type Task } from './task.js';

/** The registry of the tasks defined in this process (it lives in `internal/`; re-exported here). */
export { lookupTask, registeredTasks } from './internal/task-registry.js';

/** Options of {@link TaskEnvironment}. */
export interface TaskEnvironmentOptions {
  /** Required; lower-case letters and digits, words joined by `_` or `-` (`/^[a-z0-9]+([_-][a-z0-9]+)*$/`). */
  readonly name: string;
  /** Default cache of the environment's tasks. @default 'disable' */
  readonly cache?: CacheRequest;
  /** Resources requested for the environment's tasks. @default none */
  readonly resources?: Resources;
  /** Environment variables set for the tasks (distributed workers; recorded locally). */
  readonly envVars?: Readonly<Record<string, string>>;
  /** Secrets made available to the environment's tasks as environment variables. */
  readonly secrets?: SecretRequest;
  /** Reusable-container policy of the environment's workers (Flyte's `ReusePolicy`). */
  readonly reusable?: ReusePolicy;
  /** Environments whose workers must be deployed alongside this one. */
  readonly dependsOn?: readonly TaskEnvironment[];
  /** Flyte's queue name for the environment's tasks; see {@link TaskOptions.queue}. */
  readonly queue?: string;
  /** A description of the environment, for people. */
  readonly description?: string;
}

const NAME_RULE = /^[a-z0-9]+([_-][a-z0-9]+)*$/;

/**
 * A group of tasks that share a configuration, as in Flyte 2.
 *
 * @example
 * ```ts
 * const env = new flyte.TaskEnvironment({ name: 'my_env' });
 * export const double = env.task(async function double(x: number) { return x * 2; });
 * export const slow = env.task({ retries: 3, timeout: '30s' }, async function slow(x: number) { ... });
 * ```
 */
export class TaskEnvironment {
  /** The environment's name: the first part of its tasks' names (`${env}.${task}`). */
  readonly name: string;
  /** The default cache of the environment's tasks. */
  readonly cache: Cache;
  /** Resources requested for the environment's tasks (`{}` when none). */
  readonly resources: Resources;
  /** Environment variables set for the environment's tasks. */
  readonly envVars: Readonly<Record<string, string>>;
  /** Secrets requested for the environment's tasks. */
  readonly secrets: SecretRequest | undefined;
  /** Reusable-container policy, when one was given. */
  readonly reusable: ReusePolicy | undefined;
  /** Environments whose workers must be deployed alongside this one. */
  readonly dependsOn: readonly TaskEnvironment[];
  /** Flyte's queue name, when one was given. */
  readonly queue: string | undefined;
  /** The environment's description, when one was given. */
  readonly description: string | undefined;
  readonly #tasks = new Map<string, TaskDefinition>();

  constructor(options: TaskEnvironmentOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`TaskEnvironment: expected an options object with a name; received ${describe(options)}`);
    }
    const { name } = options;
    if (typeof name !== 'string' || !NAME_RULE.test(name)) {
      throw new TypeError(
        `TaskEnvironment name: expected lower-case letters and digits, words joined by '_' or '-' (/^[a-z0-9]+([_-][a-z0-9]+)*$/); received ${describe(name)}`,
      );
    }
    if (options.dependsOn !== undefined && !Array.isArray(options.dependsOn)) {
      throw new TypeError(`TaskEnvironment ${name}: dependsOn: expected an array of TaskEnvironment; received ${describe(options.dependsOn)}`);
    }
    for (const dep of options.dependsOn ?? []) {
      if (!(dep instanceof TaskEnvironment)) {
        throw new TypeError(`TaskEnvironment ${name}: dependsOn: expected TaskEnvironment instances; received ${describe(dep)}`);
      }
    }
    this.name = name;
    this.cache = resolveCache(options.cache, new Cache({ behavior: 'disable' }), `TaskEnvironment ${name}: cache`);
    this.resources = options.resources ?? {};
    this.envVars = options.envVars ?? {};
    this.secrets = options.secrets;
    this.reusable = options.reusable;
    this.dependsOn = options.dependsOn ?? [];
    this.queue = options.queue;
    this.description = options.description;
  }

  /** The tasks defined in this environment, by fully qualified name. */
  get tasks(): ReadonlyMap<string, TaskDefinition> {
    return this.#tasks;
  }

  /**
   * Makes `fn` a task of this environment. The function must have a name (a named function or `options.name`).
   * Define tasks at module top level and export them: workers import the defining module to run them.
   *
   * @example
   * ```ts
   * export const double = env.task(async function double(x: number) { return x * 2; });
   * export const step = env.task({ retries: 2, timeout: '5s' }, function step(x: number) { return x + 1; });
   * ```
   *
   * @typeParam F - the task's function; the task keeps its parameter and return types.
   */
  // Generic over the whole function (not its parameters and result separately), so that parameters typed by
  // their default value (`b = 1`) keep that type instead of being contextually typed as unknown. With an
  // `inputs` schema, the argument types come from the schema and the function together.
  task<F extends (...args: never[]) => unknown>(fn: F): Task<Parameters<F>, ReturnType<F>>;
  task<Args extends unknown[], R>(
    options: TaskOptions<Args> & { readonly inputs: StandardSchemaV1<unknown, Args> },
    fn: (...args: Args) => R,
  ): Task<Args, R>;
  /**
   * Makes `fn` a task of this environment, with `options` (retries, timeout, cache, ...).
   *
   * @typeParam F - the task's function; the task keeps its parameter and return types.
   */
  task<F extends (...args: never[]) => unknown>(
    options: TaskOptions<Parameters<F>> & { readonly inputs?: undefined },
    fn: F,
  ): Task<Parameters<F>, ReturnType<F>>;
  task<Args extends unknown[], R>(
    optionsOrFn: TaskOptions<Args> | ((...args: Args) => R),
    maybeFn?: (...args: Args) => R,
  ): Task<Args, R> {
    const options: TaskOptions<Args> = typeof optionsOrFn === 'function' ? {} : optionsOrFn;
    const fn = typeof optionsOrFn === 'function' ? optionsOrFn : maybeFn;
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`${this.name}.task: expected (fn) or (options, fn); received options ${describe(options)}`);
    }
    if (typeof fn !== 'function') {
      throw new TypeError(`${this.name}.task: expected a function to make a task of; received ${describe(fn)}`);
    }
    const localName = options.name ?? fn.name;
    if (typeof localName !== 'string' || localName === '') {
      throw new TypeError(
        `${this.name}.task: the task needs a name; pass a named function (async function fetchData() {...}) or options.name`,
      );
    }
    const fullName = `${this.name}.${localName}`;
    assertUnregistered(fullName, `${this.name}.task`);
    const module = callerModule();
    const what = `task ${fullName}`;
    const def: TaskDefinition = {
      envName: this.name,
      name: fullName,
      shortName: options.shortName ?? localName,
      fn: fn,
      isAsync: isAsyncFunction(fn),
      retries: resolveRetries(options.retries, `${what}: retries`),
      timeoutMs: resolveTimeout(options.timeout, `${what}: timeout`),
      queuedTimeoutMs: resolveQueuedTimeout(options.timeout, `${what}: timeout`),
      cache: resolveCache(options.cache, this.cache, `${what}: cache`),
      maxInlineIoBytes: resolveMaxInline(options.maxInlineIoBytes, `${what}: maxInlineIoBytes`),
      inputs: options.inputs,
      module,
      resources: this.resources,
      envVars: this.envVars,
      queue: options.queue ?? this.queue,
      reusable: this.reusable,
      report: options.report ?? false,
    };
    if (def.inputs !== undefined && typeof def.inputs['~standard']?.validate !== 'function') {
      throw new TypeError(`${what}: inputs: expected a Standard Schema (zod, valibot, arktype, ...); received ${describe(options.inputs)}`);
    }
    if (def.cache.behavior !== 'disable') validateCache(def);
    registerTask(def);
    this.#tasks.set(fullName, def);
    return makeTask<Args, R>(def);
  }
}

function isAsyncFunction(fn: unknown): boolean {
  const ctor = (fn as { constructor?: { name?: string } }).constructor?.name;
  return ctor === 'AsyncFunction' || ctor === 'AsyncGeneratorFunction';
}
