/**
 * Option types of environments and tasks, and their validation.
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { toCache, type Cache, type CacheRequest } from './cache.js';
import { describe, toMs } from './internal/duration.js';
import { MAX_TIMER_MS } from './internal/timer.js';
import type { Duration } from './types.js';

/** Compute resources requested for a task (recorded locally; used by distributed workers). */
export interface Resources {
  /** CPU cores, as a number or a Kubernetes-style quantity (`'500m'`). */
  readonly cpu?: number | string;
  /** Memory, as a Kubernetes-style quantity (`'4Gi'`). */
  readonly memory?: string;
  /** Number of GPUs. */
  readonly gpu?: number;
}

/** A secret made available to tasks as an environment variable. */
export interface Secret {
  /** The secret's name (its key within `group`). */
  readonly key: string;
  /** The group the secret belongs to, if the secret store has groups. */
  readonly group?: string;
  /** @default the key, upper-cased */
  readonly envVar?: string;
}

/** Secrets requested by an environment: names or {@link Secret} objects. */
export type SecretRequest = string | Secret | readonly (string | Secret)[];

/** Reusable-container policy (Flyte's `ReusePolicy`), honoured by distributed workers. */
export interface ReusePolicy {
  /** Replicas to keep: a fixed number, or `[min, max]`. */
  readonly replicas?: number | readonly [min: number, max: number];
  /** Actions one replica runs at once. */
  readonly concurrency?: number;
  /** How long an idle replica is kept before it is stopped. */
  readonly idleTtl?: Duration;
}

/**
 * How an action is retried: `count` more attempts after the first, waiting `backoff`, then `backoff *
 * backoffFactor`, ... up to `maxBackoff` between them.
 */
export interface RetryStrategy {
  /** Attempts after the first one: `count` retries, `count + 1` attempts in all. */
  readonly count: number;
  /** @default 100 (ms) */
  readonly backoff?: Duration;
  /** @default 2 */
  readonly backoffFactor?: number;
  /** At most 2^31 - 1 ms (about 24.8 days). @default '30s' */
  readonly maxBackoff?: Duration;
}

/** A timeout with its parts; `maxRuntime` bounds each attempt. */
export interface Timeout {
  /** Bound on the run time of each attempt; an attempt that runs longer fails with `TaskTimeoutError`. */
  readonly maxRuntime: Duration;
  /**
   * Bound on the time an action may wait for a `maxActionConcurrency` slot (locally, and in a remote run across
   * its workers). Past it the action ends `timed_out` without running.
   */
  readonly maxQueuedTime?: Duration;
}

/** Options of `env.task(options, fn)`. */
export interface TaskOptions<Args extends unknown[] = unknown[]> {
  /** @default the function's name */
  readonly name?: string;
  /** Display name in the CLI and UI. @default the task name */
  readonly shortName?: string;
  /** @default the environment's cache, `'disable'` unless set */
  readonly cache?: CacheRequest;
  /** `N` means N + 1 attempts. @default 0 */
  readonly retries?: number | RetryStrategy;
  /** Bound on each attempt's run time. @default none */
  readonly timeout?: Duration | Timeout;
  /** Whether the task produces a report (recorded; rendered by the UI). @default false */
  readonly report?: boolean;
  /** Inputs or outputs larger than this many bytes (encoded) are offloaded to the data store. @default 10 MiB */
  readonly maxInlineIoBytes?: number;
  /**
   * Flyte's queue name: recorded with the task (the distributed engine routes jobs by environment and code
   * version, not by this name).
   */
  readonly queue?: string;
  /** A Standard Schema (zod, valibot, arktype, ...) validating the argument tuple at the action boundary. */
  readonly inputs?: StandardSchemaV1<unknown, Args>;
}

/** What `task.override(...)` may change. The task keeps its identity (name). */
export interface TaskOverrides {
  /** Display name in the CLI and UI; see {@link TaskOptions.shortName}. */
  readonly shortName?: string;
  /** Retries of the overridden task; see {@link TaskOptions.retries}. */
  readonly retries?: number | RetryStrategy;
  /** Per-attempt bound of the overridden task; see {@link TaskOptions.timeout}. */
  readonly timeout?: Duration | Timeout;
  /** Cache of the overridden task; see {@link TaskOptions.cache}. */
  readonly cache?: CacheRequest;
  /** Resources requested for the overridden task. */
  readonly resources?: Resources;
  /** Environment variables of the overridden task (distributed workers; recorded locally). */
  readonly envVars?: Readonly<Record<string, string>>;
  /** Flyte's queue name; see {@link TaskOptions.queue}. */
  readonly queue?: string;
  /** Offload threshold of the overridden task; see {@link TaskOptions.maxInlineIoBytes}. */
  readonly maxInlineIoBytes?: number;
  /** Reusable-container policy of the overridden task. */
  readonly reusable?: ReusePolicy;
}

/** Retry settings after validation. */
export interface ResolvedRetries {
  readonly count: number;
  readonly backoffMs: number;
  readonly backoffFactor: number;
  readonly maxBackoffMs: number;
}

/** Default inline I/O limit: 10 MiB. */
export const DEFAULT_MAX_INLINE_IO_BYTES = 10 * 1024 * 1024;

/** Validates `retries`. */
export function resolveRetries(value: number | RetryStrategy | undefined, what: string): ResolvedRetries {
  const strategy: RetryStrategy = typeof value === 'number' || value === undefined ? { count: value ?? 0 } : value;
  if (typeof strategy !== 'object' || strategy === null) {
    throw new TypeError(`${what}: expected a number of retries or a RetryStrategy; received ${describe(value)}`);
  }
  if (!Number.isInteger(strategy.count) || strategy.count < 0) {
    throw new RangeError(
      `${what}: expected a non-negative integer count of retries; received ${describe(strategy.count)}`,
    );
  }
  const backoffFactor = strategy.backoffFactor ?? 2;
  if (typeof backoffFactor !== 'number' || !(backoffFactor >= 1)) {
    throw new RangeError(`${what}.backoffFactor: expected a number >= 1; received ${describe(backoffFactor)}`);
  }
  const maxBackoffMs = toMs(strategy.maxBackoff ?? '30s', `${what}.maxBackoff`);
  if (maxBackoffMs > MAX_TIMER_MS) {
    throw new RangeError(
      `${what}.maxBackoff: expected at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest wait between attempts); received ${maxBackoffMs} ms`,
    );
  }
  return {
    count: strategy.count,
    backoffMs: toMs(strategy.backoff ?? 100, `${what}.backoff`),
    backoffFactor,
    maxBackoffMs,
  };
}

/** Validates `timeout`; `undefined` when there is none. */
export function resolveTimeout(value: Duration | Timeout | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'object' && value !== null) return toMs(value.maxRuntime, `${what}.maxRuntime`);
  return toMs(value, what);
}

/** Validates the `maxQueuedTime` part of `timeout`; `undefined` when there is none. */
export function resolveQueuedTimeout(value: Duration | Timeout | undefined, what: string): number | undefined {
  if (typeof value !== 'object' || value === null || value.maxQueuedTime === undefined) return undefined;
  return toMs(value.maxQueuedTime, `${what}.maxQueuedTime`);
}

/** Validates `maxInlineIoBytes`. */
export function resolveMaxInline(value: number | undefined, what: string): number {
  if (value === undefined) return DEFAULT_MAX_INLINE_IO_BYTES;
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${what}: expected a positive integer number of bytes; received ${describe(value)}`);
  }
  return value;
}

/** Validates a cache request, allowing `undefined`. */
export function resolveCache(value: CacheRequest | undefined, fallback: Cache, what: string): Cache {
  return value === undefined ? fallback : toCache(value, what);
}

/** Options of a run (`flyte.withRunContext(options).run(...)`). */
export interface RunContextOptions {
  /** @default 'remote' when `init` configured a distributed backend, else 'local' */
  readonly mode?: 'local' | 'remote';
  /** The run's name. @default a generated short readable name */
  readonly name?: string;
  /** Execute every action and rewrite its cache entry, as if each task had `cache: 'override'`. @default false */
  readonly overwriteCache?: boolean;
  /** Neither read nor write the cache in this run. @default false */
  readonly disableRunCache?: boolean;
  /**
   * At most this many actions of the run execute their bodies at once (0 = no limit). A parent stops counting
   * against the limit once it has called its first child, so deep trees never deadlock; the root never counts.
   * A remote run counts across all its workers (a semaphore in the engine; an action admitted but still in its
   * queue counts too). @default 0
   */
  readonly maxActionConcurrency?: number;
  /** Environment variables of the run's tasks (distributed workers; recorded locally). */
  readonly envVars?: Readonly<Record<string, string>>;
  /** Free-form labels, stored with the run. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Custom context seen by every action of the run (`flyte.ctx().customContext`). */
  readonly customContext?: Readonly<Record<string, string>>;
}
