/**
 * Cache keys: a hash of the task's identity, interface and version, and of its inputs minus the ignored ones.
 * @module
 */
import type { Cache } from '../cache.js';
import { sha256Hex } from './hash.js';
import { paramsOf } from './params.js';
import { encodeValue } from './serde.js';
import type { TaskDefinition } from './task-definition.js';

/** What is fixed per task (and cache setting): everything in the key except the inputs. */
interface CachePlan {
  readonly prefix: string;
  /** Positions of `ignoredInputs`. */
  readonly ignored: ReadonlySet<number>;
  /** Position of an ignored rest parameter: every argument from there on is left out. */
  readonly ignoredFrom: number;
}

const plans = new WeakMap<Cache, WeakMap<TaskDefinition['fn'], CachePlan>>();

/** The default cache version of a task: a hash of its function's source, so editing the body changes it. */
export function sourceVersion(fn: TaskDefinition['fn']): string {
  return sha256Hex(Function.prototype.toString.call(fn)).slice(0, 16);
}

function planFor(task: TaskDefinition, cache: Cache): CachePlan {
  let byFn = plans.get(cache);
  if (byFn === undefined) plans.set(cache, (byFn = new WeakMap()));
  const known = byFn.get(task.fn);
  if (known !== undefined) return known;
  const params = paramsOf(task.fn);
  const ignored = new Set<number>();
  let ignoredFrom = Number.POSITIVE_INFINITY;
  for (const name of cache.ignoredInputs) {
    const param = params.find((p) => p.name === name);
    if (param === undefined) {
      throw new TypeError(
        `task ${task.name}: cache.ignoredInputs: expected parameter names of the task (${params.map((p) => p.name).join(', ') || 'none'}); received ${JSON.stringify(name)}`,
      );
    }
    ignored.add(param.index);
    if (param.rest) ignoredFrom = param.index;
  }
  const source = Function.prototype.toString.call(task.fn);
  const version =
    cache.versionOverride ??
    [sourceVersion(task.fn), ...cache.policies.map((p) => p.getVersion({ name: task.name, source }))].join('+');
  const iface = params.map((p) => (p.rest ? `...${p.name}` : p.name)).join(',');
  const prefix = `${task.name}\0${iface}\0${version}\0${cache.salt}\0`;
  const plan = { prefix, ignored, ignoredFrom };
  byFn.set(task.fn, plan);
  return plan;
}

/** Checks `ignoredInputs` against the task's parameters, throwing a TypeError at definition time. */
export function validateCache(task: TaskDefinition): void {
  planFor(task, task.cache);
}

/**
 * The cache key of a call of `task` with `args`, whose canonical inputs hash is `inputsHash`. Ignored inputs
 * are dropped (and the rest hashed again) only when there are some; an ignored rest parameter drops every
 * argument it collects.
 */
export function cacheKey(task: TaskDefinition, args: readonly unknown[], inputsHash: string): string {
  const plan = planFor(task, task.cache);
  let hash = inputsHash;
  if (plan.ignored.size > 0) {
    hash = encodeValue(
      args.filter((_, i) => !plan.ignored.has(i) && i < plan.ignoredFrom),
      'args',
    ).hash;
  }
  return sha256Hex(plan.prefix + hash);
}
