/**
 * Cache requests: whether an action may reuse a finished action's output with the same cache key.
 * @module
 */

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
  readonly behavior: CacheBehavior;
  readonly versionOverride: string | undefined;
  readonly ignoredInputs: readonly string[];
  readonly salt: string;
  readonly policies: readonly CachePolicy[];

  constructor(options: CacheOptions = {}) {
    const behavior = options.behavior ?? 'auto';
    if (!BEHAVIORS.has(behavior)) {
      throw new TypeError(`Cache.behavior: expected 'auto', 'override' or 'disable'; received ${JSON.stringify(behavior)}`);
    }
    this.behavior = behavior;
    this.versionOverride = options.versionOverride;
    this.ignoredInputs = [...(options.ignoredInputs ?? [])];
    this.salt = options.salt ?? '';
    this.policies = [...(options.policies ?? [])];
  }
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
