/**
 * The distributed engine: BullMQ queues and a pub/sub wake bus on Redis, behind the {@link Engine} contract.
 * Only this folder imports bullmq and ioredis.
 *
 * @example
 * ```ts
 * const engine = openEngine('redis://127.0.0.1:6379?prefix=flyte');
 * await engine.enqueue({ queue: queueName('etl'), runName: 'r1', actionName: 'a0', taskName: 'etl.main',
 *   module: 'src/etl.ts', customContext: {} });
 * const consumer = engine.consume([queueName('etl')], { concurrency: 8 }, (lease) => { ... });
 * await consumer.drain(10_000);
 * await engine.close();
 * ```
 * @module
 */
import { parseEngineUrl } from './engine-url.js';
import type { Engine } from './engine.js';
import { RedisEngine } from './redis-engine.js';
import type { RedisEngineOptions } from './redis-engine.js';

export type { AbortNotice, ActionJob, ConsumeOptions, Consumer, Engine, JobRef, Lease, Unwatch } from './engine.js';
export { SLOTS_TTL_MS, queueName } from './engine.js';
export type { EngineUrl } from './engine-url.js';
export { DEFAULT_ENGINE_PREFIX, parseEngineUrl } from './engine-url.js';
export type { RedisEngineOptions as OpenEngineOptions } from './redis-engine.js';

/**
 * The engine at `url` (`redis://[user:pass@]host:port[/db][?prefix=NAME]`, or `rediss://`). Nothing connects
 * until the first call; a Redis that cannot be reached fails that call with an `InitializationError` (within
 * `connectTimeoutMs`) instead of hanging.
 *
 * @throws `InitializationError` at once when the URL is malformed.
 */
export function openEngine(url: string, options: RedisEngineOptions = {}): Engine {
  return new RedisEngine(parseEngineUrl(url), options);
}
