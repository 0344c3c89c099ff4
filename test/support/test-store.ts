/**
 * The one switch that runs the SDK and CLI behaviour tests on another store: `FLYTE_TEST_STORE=sqlite` (the
 * default: each state directory's own `flyte.db`, or `memory:` where a test asks for it) or
 * `FLYTE_TEST_STORE=postgres` (each state directory gets a fresh schema of the test Postgres instead,
 * `test/support/postgres.ts`, dropped when the test file ends). `.ci/run` runs the suite a second time that way.
 *
 * Everything a test does with a state directory goes through {@link storeOfRoot}: `flyte.init` in the test's
 * process ({@link initOptions}, `useFlyteRoot`) and the `flyte` processes it spawns (`test/support/cli.ts` sets
 * their `FLYTE_STORE`), so a run recorded by one is read by the other whatever the store.
 *
 * Importing this module under `FLYTE_TEST_STORE=postgres` registers two file-level hooks: a `before` that fails
 * every test of the file when Postgres does not answer (the switch asked for it: never a silent pass on SQLite),
 * and an `after` that drops the schemas the file used, and fails the file if one of its state directories holds
 * a `flyte.db` (a process that fell back to SQLite).
 * @module
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before } from 'node:test';
import type * as flyte from 'flyte-ts';
import { PG_TEST_URL, dropSchema, freshSchema, postgresUnreachable, urlWithSchema } from './postgres.js';

/** The stores the switch selects. */
export type TestStore = 'sqlite' | 'postgres';

/**
 * The store selected by `FLYTE_TEST_STORE`. Thrown at import when the variable is set to anything but `sqlite`
 * or `postgres`.
 */
export const TEST_STORE: TestStore = selectedStore();

/** Whether the tests run on Postgres (`FLYTE_TEST_STORE=postgres`) rather than SQLite. */
export const ON_POSTGRES = TEST_STORE === 'postgres';

/**
 * What to pass as `skip` to a test or suite that is about SQLite itself (its file, its messages): `false`
 * normally, the reason under `FLYTE_TEST_STORE=postgres`.
 */
export function sqliteOnly(why: string): string | false {
  return ON_POSTGRES ? `SQLite only: ${why}` : false;
}

function selectedStore(): TestStore {
  const value = process.env['FLYTE_TEST_STORE'] || 'sqlite';
  if (value !== 'sqlite' && value !== 'postgres') {
    throw new Error(`FLYTE_TEST_STORE: expected 'sqlite' or 'postgres'; received '${value}'`);
  }
  return value;
}

const schemaOfRoot = new Map<string, string>();

/**
 * The store URL for the state directory `root`: `undefined` normally (the root's own SQLite file, or the
 * `fallback` a test asked for, e.g. `'memory:'`); under `FLYTE_TEST_STORE=postgres`, a schema of its own, the
 * same one for every call with the same directory, dropped when the file's tests end (or by
 * {@link dropStoreOfRoot}).
 */
export function storeOfRoot(root: string, fallback?: string): string | undefined {
  if (!ON_POSTGRES) return fallback;
  const key = resolve(root);
  let schema = schemaOfRoot.get(key);
  if (schema === undefined) {
    schema = freshSchema();
    schemaOfRoot.set(key, schema);
  }
  return urlWithSchema(schema);
}

/**
 * How `flyte` and the UI name the store of the state directory `root` (a store's `description`), as the source
 * of a regular expression: `sqlite:<root>/flyte.db`, or the root's Postgres URL.
 */
export function storeShown(root: string): string {
  return escapeRegExp(storeOfRoot(root) ?? `sqlite:${resolve(root)}/flyte.db`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Drops the schema {@link storeOfRoot} gave `root`, if any: call it after the stores on it are closed. Thrown
 * (after the drop) when the directory holds a `flyte.db`: something in the test opened the root's SQLite store
 * instead of its schema, so that part of it did not run on Postgres.
 */
export async function dropStoreOfRoot(root: string): Promise<void> {
  const key = resolve(root);
  const schema = schemaOfRoot.get(key);
  if (schema === undefined) return;
  schemaOfRoot.delete(key);
  await dropSchema(schema);
  const file = join(key, 'flyte.db');
  if (existsSync(file)) {
    throw new Error(
      `FLYTE_TEST_STORE=postgres: expected no SQLite file in a test's state directory; received ${file}. ` +
        `Give the processes on it the root's store (initOptions, rootEnv from test/support/test-store.ts).`,
    );
  }
}

/**
 * The environment that puts a spawned process on the state directory `root` and on its store: `FLYTE_ROOT`,
 * and under `FLYTE_TEST_STORE=postgres` the directory's schema as `FLYTE_STORE`. `{}` for no root.
 */
export function rootEnv(root: string | undefined): Record<string, string> {
  if (root === undefined) return {};
  const store = storeOfRoot(root);
  return store === undefined ? { FLYTE_ROOT: root } : { FLYTE_ROOT: root, FLYTE_STORE: store };
}

/**
 * `flyte.init` options for a test on the state directory `root`: `{ root, echoLogs: false, ...extra }` on the
 * store the switch selects. `extra.store` (e.g. `'memory:'`) is kept on SQLite and replaced by the root's
 * schema on Postgres.
 *
 * @example
 * ```ts
 * flyte.init(initOptions(root, { threads: 2 }));
 * ```
 */
export function initOptions(root: string, extra: Omit<flyte.InitOptions, 'root'> = {}): flyte.InitOptions {
  const store = storeOfRoot(root, extra.store);
  return { echoLogs: false, ...extra, root, ...(store === undefined ? {} : { store }) };
}

if (ON_POSTGRES) {
  before(async () => {
    const reason = await postgresUnreachable();
    if (reason !== undefined) {
      throw new Error(
        `FLYTE_TEST_STORE=postgres: expected Postgres at ${new URL(PG_TEST_URL).host}; received: ${reason}`,
      );
    }
  });
  after(async () => {
    const errors: unknown[] = [];
    for (const root of [...schemaOfRoot.keys()]) await dropStoreOfRoot(root).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, errors.map(String).join('\n'));
  });
}
