/**
 * Postgres for tests: where it is (`FLYTE_TEST_PG_URL`, else `postgres://postgres@127.0.0.1:5432/test`), whether
 * it answers, and fresh schemas that are dropped afterwards.
 *
 * A machine without Postgres skips the Postgres tests with a message saying why; under `CI=true` they fail
 * instead, so that CI never passes by skipping them.
 * @module
 */
import pg from 'pg';
import { hidePasswords } from '../../src/internal/secrets.js';

/** The database the Postgres tests use. */
export const PG_TEST_URL = process.env['FLYTE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<string | undefined> | undefined;

/**
 * Resolves `undefined` when Postgres answers at {@link PG_TEST_URL}, or the reason it does not. Asked once per
 * process.
 */
export function postgresUnreachable(): Promise<string | undefined> {
  // Asked twice before giving up: a test file that rebuilds dist/ (ensureBuilt, synchronous) blocks its event loop
  // past the first try's connection timeout, which then fires although Postgres answered.
  reachable ??= probe().then(async (reason) => (reason === undefined ? undefined : probe()));
  return reachable;
}

async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_TEST_URL, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * What to pass as `skip` to `describe`/`it` for Postgres tests: `false` when Postgres answers, a message when it
 * does not. Under `CI=true` a missing Postgres throws, so the test file fails.
 *
 * @example
 * ```ts
 * const skip = await postgresSkip();
 * describe('PostgresStore', { skip }, () => { ... });
 * ```
 */
export async function postgresSkip(): Promise<string | false> {
  const reason = await postgresUnreachable();
  if (reason === undefined) return false;
  const message = `Postgres is not reachable at ${hidePasswords(PG_TEST_URL)} (${reason}); set FLYTE_TEST_PG_URL`;
  if (process.env['CI'] === 'true') throw new Error(`${message}. Under CI=true the Postgres tests must run.`);
  return `${message} to run these tests`;
}

let schemas = 0;

/** A schema name of its own for one test: `flyte_test_<pid>_<n>`. */
export function freshSchema(): string {
  return `flyte_test_${process.pid}_${++schemas}`;
}

/** {@link PG_TEST_URL} with `?schema=NAME`. */
export function urlWithSchema(schema: string): string {
  const url = new URL(PG_TEST_URL);
  url.searchParams.set('schema', schema);
  return url.toString();
}

/** Drops a schema made by {@link freshSchema}, with everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_TEST_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Runs `sql` on a connection of its own (as another process would) and returns the rows. */
export async function peekPostgres<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_TEST_URL });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}
