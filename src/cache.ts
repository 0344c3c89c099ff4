/**
 * Cache requests: whether an action may reuse a finished action's output with the same cache key.
 * @module
 */
import { describe } from './internal/duration.js';

/**
 * - `'auto'`: reuse a cached output when the key matches, and store new outputs;
 * - `'override'`: always run, then store the output (replacing a cached one);
 * - `'disable'`: neither read nor write the cache.
 */
export type CacheBehavior = 'auto' | 'override' | 'disable';

/** Options of {@link Cache}. */
export interface CacheOptions {
  /** @default 'auto' */
  readonly behavior?: CacheBehavior;
  /** Replaces the default version (a hash of the function's source) in the cache key. */
  readonly versionOverride?: string;
  /** Parameter names (or positional names `arg0`, `arg1`, ...) left out of the cache key. */
  readonly ignoredInputs?: readonly string[];
  /** Extra string mixed into the cache key. */
  readonly salt?: string;
  /** Reserved for cache policies (Flyte's `CachePolicy`); each contributes to the version. */
  readonly policies?: readonly CachePolicy[];
}

/** A function that contributes a string to the cache version of a task. */
export interface CachePolicy {
  /** Returns this policy's part of the version of `task` (its name and function source). */
  getVersion(task: { readonly name: string; readonly source: string }): string;
}

const BEHAVIORS: ReadonlySet<string> = new Set(['auto', 'override', 'disable']);

/**
 * A detailed cache request.
 *
 * @example
 * ```ts
 * env.task({ cache: new flyte.Cache({ behavior: 'auto', ignoredInputs: ['verbose'], salt: 'v2' }) }, fn);
 * ```
 */
export class Cache {
  /** When the cache is read and written; see {@link CacheBehavior}. */
  readonly behavior: CacheBehavior;
  /** The version used in the cache key instead of the hash of the function's source, if any. */
  readonly versionOverride: string | undefined;
  /** Parameter names left out of the cache key. */
  readonly ignoredInputs: readonly string[];
  /** Extra string mixed into the cache key (`''` when none). */
  readonly salt: string;
  /** Cache policies, each contributing to the version. */
  readonly policies: readonly CachePolicy[];

  /**
   * @throws TypeError for an unknown behavior, an empty or non-string `versionOverride`, `ignoredInputs` that are
   *   not strings, a non-string `salt`, or policies without `getVersion`. Names in `ignoredInputs` are checked
   *   against the task's parameters when the task is defined.
   */
  constructor(options: CacheOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Cache: expected an options object; received ${describe(options)}`);
    }
    const behavior = options.behavior ?? 'auto';
    if (!BEHAVIORS.has(behavior)) {
      throw new TypeError(
        `Cache.behavior: expected 'auto', 'override' or 'disable'; received ${JSON.stringify(behavior)}`,
      );
    }
    const { versionOverride, ignoredInputs = [], salt = '', policies = [] } = options;
    if (versionOverride !== undefined && (typeof versionOverride !== 'string' || versionOverride === '')) {
      throw new TypeError(`Cache.versionOverride: expected a non-empty string; received ${describe(versionOverride)}`);
    }
    if (!Array.isArray(ignoredInputs) || !ignoredInputs.every((name) => typeof name === 'string')) {
      throw new TypeError(
        `Cache.ignoredInputs: expected an array of parameter names; received ${describe(ignoredInputs)}`,
      );
    }
    if (typeof salt !== 'string') throw new TypeError(`Cache.salt: expected a string; received ${describe(salt)}`);
    if (!Array.isArray(policies) || !policies.every(isPolicy)) {
      throw new TypeError(
        `Cache.policies: expected an array of { getVersion(task) } objects; received ${describe(policies)}`,
      );
    }
    this.behavior = behavior;
    this.versionOverride = versionOverride;
    this.ignoredInputs = [...ignoredInputs];
    this.salt = salt;
    this.policies = [...policies];
  }
}

function isPolicy(value: unknown): value is CachePolicy {
  return typeof value === 'object' && value !== null && typeof (value as CachePolicy).getVersion === 'function';
}

/** What environments, tasks and overrides accept for `cache`. */
export type CacheRequest = CacheBehavior | Cache;

/** Normalizes a cache request to a {@link Cache}, validating it. */
export function toCache(request: CacheRequest, what: string): Cache {
  if (request instanceof Cache) return request;
  if (typeof request === 'string' && BEHAVIORS.has(request)) return new Cache({ behavior: request });
  throw new TypeError(
    `${what}: expected 'auto', 'override', 'disable' or a flyte.Cache; received ${JSON.stringify(request)}`,
  );
}
