/**
 * flyte-ts: the Flyte 2 programming model in TypeScript.
 *
 * Plain functions become **tasks** of a {@link TaskEnvironment}. Inside a run, every task call is a recorded
 * child **action** (inputs, outputs, errors, attempts, timings, logs); fan out with {@link map},
 * `Promise.all` or {@link asCompleted}. Runs are recorded in embedded SQLite under `.flyte/` by default.
 *
 * @example
 * ```ts
 * import * as flyte from 'flyte-ts';
 *
 * const env = new flyte.TaskEnvironment({ name: 'demo' });
 *
 * export const double = env.task(async function double(x: number) {
 *   return x * 2;
 * });
 *
 * export const main = env.task(async function main(items: number[]) {
 *   return flyte.map(double, items, { concurrency: 5, returnExceptions: false });
 * });
 *
 * const run = await flyte.run(main, [1, 2, 3]);
 * console.log(run.name, await run.outputs()); // [2, 4, 6]
 * ```
 * @module
 */
export * as errors from './errors.js';
export * as io from './io.js';
export { TaskEnvironment, type TaskEnvironmentOptions } from './task-environment.js';
export type { Task, TaskMethods, AnyTask } from './task.js';
export { Cache, type CacheBehavior, type CacheOptions, type CachePolicy, type CacheRequest } from './cache.js';
export type {
  Resources,
  RetryStrategy,
  ReusePolicy,
  RunContextOptions,
  Secret,
  SecretRequest,
  TaskOptions,
  TaskOverrides,
  Timeout,
} from './options.js';
export { run, withRunContext, getRun, Run, RunActions, ActionHandle, type RunContext } from './run.js';
export { init, shutdown, type InitOptions } from './internal/runtime.js';
export { map, partial, type MapOptions, type MapResult, type PartialTask } from './map.js';
export { gather, asCompleted, type GatherOptions } from './parallel.js';
export { Semaphore } from './internal/semaphore.js';
export { ctx, customContext, group, type TaskContext } from './context.js';
export { trace } from './trace.js';
export { durable } from './durable.js';
export { rerun, type RerunOptions } from './rerun.js';
export type {
  ActionCounts,
  ActionError,
  ActionPhase,
  ActionRecord,
  AttemptRecord,
  Duration,
  LogLine,
  RunMode,
  RunPhase,
  RunRecord,
} from './types.js';
