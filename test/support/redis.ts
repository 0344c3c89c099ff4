/**
 * Redis for tests: where it is (`FLYTE_TEST_REDIS_URL`, else `redis://127.0.0.1:6379`), whether it answers, a
 * fresh key prefix per test, and the removal of that prefix's keys afterwards.
 *
 * A machine without Redis skips the Redis tests with a message saying why; under `CI=true` they fail instead, so
 * that CI never passes by skipping them.
 * @module
 */
import { Redis } from 'ioredis';
import { hidePasswords } from '../../src/internal/secrets.js';

/** The Redis the engine tests use. */
export const REDIS_TEST_URL = process.env['FLYTE_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

let reachable: Promise<string | undefined> | undefined;

/** Resolves `undefined` when Redis answers at {@link REDIS_TEST_URL}, or the reason it does not. Asked once. */
export function redisUnreachable(): Promise<string | undefined> {
  reachable ??= (async () => {
    const client = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    let reason: string | undefined;
    client.on('error', (e: Error) => (reason ??= e.message)); // More telling than connect()'s "Connection is closed."
    try {
      await client.connect();
      await client.ping();
      return undefined;
    } catch (e) {
      return reason ?? (e instanceof Error ? e.message : String(e));
    } finally {
      client.disconnect();
    }
  })();
  return reachable;
}

/**
 * What to pass as `skip` to `describe`/`it` for Redis tests: `false` when Redis answers, a message when it does
 * not. Under `CI=true` a missing Redis throws, so the test file fails.
 */
export async function redisSkip(): Promise<string | false> {
  const reason = await redisUnreachable();
  if (reason === undefined) return false;
  const message = `Redis is not reachable at ${hidePasswords(REDIS_TEST_URL)} (${reason}); set FLYTE_TEST_REDIS_URL`;
  if (process.env['CI'] === 'true') throw new Error(`${message}. Under CI=true the Redis tests must run.`);
  return `${message} to run these tests`;
}

let prefixes = 0;

/** A key prefix of its own for one test: `flyte_test_engine_<pid>_<n>`. */
export function freshPrefix(): string {
  return `flyte_test_engine_${process.pid}_${++prefixes}`;
}

/** {@link REDIS_TEST_URL} with `?prefix=NAME`. */
export function urlWithPrefix(prefix: string): string {
  const url = new URL(REDIS_TEST_URL);
  url.searchParams.set('prefix', prefix);
  return url.toString();
}

/** A plain connection to the test Redis, for peeking and poking; disconnect it after. */
export function rawRedis(): Redis {
  return new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: 1 });
}

/** Deletes every key that starts with `prefix:` (found with SCAN). */
export async function deletePrefix(prefix: string): Promise<void> {
  const client = rawRedis();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
