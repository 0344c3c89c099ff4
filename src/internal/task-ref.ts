/**
 * A task reference: the plain-data form of a {@link TaskDefinition} that crosses a boundary where functions cannot
 * (a pool thread asking the main thread to run a child today; a distributed job payload later).
 *
 * A reference names the task by its identity (fully qualified name and module) and carries every setting that
 * `task.override(...)` can change, so an overridden task stays overridden on the other side. The receiver finds
 * the task's definition by name (its function, schema and environment) and applies the settings with
 * {@link fromTaskRef}. The reference is JSON and structured-clone safe: no functions, no class instances, `null`
 * for "none".
 * @module
 */
import { Cache, type CacheBehavior } from '../cache.js';
import type { ResolvedRetries, Resources, ReusePolicy } from '../options.js';
import type { TaskDefinition } from './task-definition.js';

/** The version of {@link TaskRef} this code writes; a receiver refuses references of another version. */
export const TASK_REF_VERSION = 1;

/**
 * The plain form of a {@link Cache}. Cache policies are functions: each is carried as the version string it
 * contributes (what the cache key uses), and rebuilt as a policy returning that string.
 */
export interface CacheRef {
  readonly behavior: CacheBehavior;
  readonly versionOverride: string | null;
  readonly ignoredInputs: readonly string[];
  readonly salt: string;
  readonly policyVersions: readonly string[];
}

/** A task and its (possibly overridden) settings, as plain data. Version {@link TASK_REF_VERSION}. */
export interface TaskRef {
  readonly version: typeof TASK_REF_VERSION;
  /** Fully qualified name, `${env}.${name}`: with `module`, the task's identity. */
  readonly name: string;
  /** Absolute path of the module that defines the task, or `null` when unknown. */
  readonly module: string | null;
  readonly shortName: string;
  readonly retries: ResolvedRetries;
  readonly timeoutMs: number | null;
  readonly queuedTimeoutMs: number | null;
  readonly cache: CacheRef;
  readonly maxInlineIoBytes: number;
  readonly resources: Resources;
  readonly envVars: Readonly<Record<string, string>>;
  readonly queue: string | null;
  readonly reusable: ReusePolicy | null;
}

/** Definitions are immutable: each one's reference is made once. */
const refs = new WeakMap<TaskDefinition, TaskRef>();

/** The reference of `def`, with its settings as they are (overrides included). */
export function toTaskRef(def: TaskDefinition): TaskRef {
  let ref = refs.get(def);
  if (ref === undefined) {
    ref = {
      version: TASK_REF_VERSION,
      name: def.name,
      module: def.module,
      shortName: def.shortName,
      retries: { ...def.retries },
      timeoutMs: def.timeoutMs ?? null,
      queuedTimeoutMs: def.queuedTimeoutMs ?? null,
      cache: toCacheRef(def),
      maxInlineIoBytes: def.maxInlineIoBytes,
      resources: structuredClone(def.resources),
      envVars: { ...def.envVars },
      queue: def.queue ?? null,
      reusable: def.reusable === undefined ? null : structuredClone(def.reusable),
    };
    refs.set(def, ref);
  }
  return ref;
}

function toCacheRef(def: TaskDefinition): CacheRef {
  const { cache } = def;
  const source = cache.policies.length === 0 ? '' : Function.prototype.toString.call(def.fn);
  return {
    behavior: cache.behavior,
    versionOverride: cache.versionOverride ?? null,
    ignoredInputs: [...cache.ignoredInputs],
    salt: cache.salt,
    policyVersions: cache.policies.map((p) => p.getVersion({ name: def.name, source })),
  };
}

/**
 * Rebuilt caches by their plain form, per definition: the same settings give the same `Cache`, so the cache
 * key's per-cache plan is computed once. Bounded: overrides made per item (say a salt per item) do not grow it
 * without limit.
 */
const caches = new WeakMap<TaskDefinition, Map<string, Cache>>();
const MAX_CACHES_PER_TASK = 64;

function fromCacheRef(def: TaskDefinition, ref: CacheRef): Cache {
  const key = JSON.stringify(ref);
  let known = caches.get(def);
  if (known === undefined || (known.size >= MAX_CACHES_PER_TASK && !known.has(key))) {
    // The definition's own cache first: a task that was not overridden keeps it.
    known = new Map<string, Cache>([[JSON.stringify(toTaskRef(def).cache), def.cache]]);
    caches.set(def, known);
  }
  let cache = known.get(key);
  if (cache === undefined) {
    cache = new Cache({
      behavior: ref.behavior,
      versionOverride: ref.versionOverride ?? undefined,
      ignoredInputs: ref.ignoredInputs,
      salt: ref.salt,
      policies: ref.policyVersions.map((version) => ({ getVersion: () => version })),
    });
    known.set(key, cache);
  }
  return cache;
}

/**
 * The definition `ref` stands for: `def` (the task found by `ref.name` on this side) with the reference's
 * settings applied.
 * @throws TypeError when `ref` is of another version, or names another task than `def`.
 */
export function fromTaskRef(ref: TaskRef, def: TaskDefinition): TaskDefinition {
  const version: unknown = ref.version; // from another process or release, it may be any
  if (version !== TASK_REF_VERSION) {
    throw new TypeError(`task reference: expected version ${TASK_REF_VERSION}; received ${JSON.stringify(version)}`);
  }
  if (ref.name !== def.name) {
    throw new TypeError(`task reference: expected task ${def.name}; received a reference to ${ref.name}`);
  }
  return {
    ...def,
    shortName: ref.shortName,
    retries: ref.retries,
    timeoutMs: ref.timeoutMs ?? undefined,
    queuedTimeoutMs: ref.queuedTimeoutMs ?? undefined,
    cache: fromCacheRef(def, ref.cache),
    maxInlineIoBytes: ref.maxInlineIoBytes,
    resources: ref.resources,
    envVars: ref.envVars,
    queue: ref.queue ?? undefined,
    reusable: ref.reusable ?? undefined,
  };
}
