/**
 * A fresh local state directory for one test file: `flyte.init` on it before the tests, `flyte.shutdown` and
 * removal after them.
 *
 * With `FLYTE_TEST_STORE=postgres` the runs go to a fresh schema of the test Postgres instead
 * (`test/support/postgres.ts`), dropped after the tests: `.ci/run` runs the SDK tests a second time that way.
 * The schema is set as `FLYTE_STORE` for the file's process, so that a test calling `flyte.init({ root })` again
 * (to read back what a new process would) stays on it. The directory is still made, for offloaded values.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import Database from 'better-sqlite3';
import * as flyte from 'flyte-ts';
import { dropSchema, freshSchema, peekPostgres, postgresUnreachable, urlWithSchema } from './postgres.js';

/** Whether the SDK tests run on Postgres (`FLYTE_TEST_STORE=postgres`) rather than SQLite. */
export const ON_POSTGRES = testStore() === 'postgres';

function testStore(): 'sqlite' | 'postgres' {
  const value = process.env['FLYTE_TEST_STORE'] ?? 'sqlite';
  if (value !== 'sqlite' && value !== 'postgres') {
    throw new Error(`FLYTE_TEST_STORE: expected 'sqlite' or 'postgres'; received '${value}'`);
  }
  return value;
}

/**
 * The store options for a test's `flyte.init`: `{}` (the root's SQLite) normally, a fresh Postgres schema under
 * `FLYTE_TEST_STORE=postgres`. Call `drop` after `flyte.shutdown()`.
 */
export async function testStoreOptions(): Promise<{ store?: string; drop: () => Promise<void> }> {
  if (!ON_POSTGRES) return { drop: async () => undefined };
  const reason = await postgresUnreachable();
  if (reason !== undefined) throw new Error(`FLYTE_TEST_STORE=postgres, but Postgres is not reachable: ${reason}`);
  const schema = freshSchema();
  return { store: urlWithSchema(schema), drop: () => dropSchema(schema) };
}

/** Registers the `before`/`after` hooks; the returned function gives the directory once `before` ran. */
export function useFlyteRoot(prefix: string): () => string {
  let root: string | undefined;
  let drop = async (): Promise<void> => undefined;
  const previousStore = process.env['FLYTE_STORE'];
  before(async () => {
    root = mkdtempSync(join(tmpdir(), prefix));
    const options = await testStoreOptions();
    drop = options.drop;
    if (options.store !== undefined) process.env['FLYTE_STORE'] = options.store;
    flyte.init({ root, echoLogs: false });
  });
  after(async () => {
    await flyte.shutdown();
    await drop();
    if (previousStore === undefined) delete process.env['FLYTE_STORE'];
    else process.env['FLYTE_STORE'] = previousStore;
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });
  return () => {
    if (root === undefined) throw new Error('useFlyteRoot: the directory exists only once the tests run');
    return root;
  };
}

/**
 * The `attempts` rows stored for one action, `{ attempt, phase }` in attempt order, read straight from the
 * database of the test store (the root's SQLite file, or the Postgres schema in `FLYTE_STORE`): what a store
 * wrote, not what it answers.
 */
export async function storedAttemptRows(root: string, runName: string, actionName: string): Promise<unknown[]> {
  const store = process.env['FLYTE_STORE'];
  if (ON_POSTGRES && store !== undefined) {
    const schema = new URL(store).searchParams.get('schema') ?? 'flyte';
    return peekPostgres(
      `SELECT attempt, phase FROM "${schema}".attempts WHERE run_name = $1 AND action_name = $2 ORDER BY attempt`,
      [runName, actionName],
    );
  }
  const db = new Database(join(root, 'flyte.db'), { readonly: true });
  try {
    return db
      .prepare('SELECT attempt, phase FROM attempts WHERE run_name = ? AND action_name = ? ORDER BY attempt')
      .all(runName, actionName);
  } finally {
    db.close();
  }
}
