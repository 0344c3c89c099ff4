/**
 * Chooses a {@link RunStore} from the `store` setting of `flyte.init`.
 *
 * @example
 * ```ts
 * import { openStore } from './store/index.js';
 * const store = openStore(undefined, { root: '.flyte' }); // sqlite:<cwd>/.flyte/flyte.db
 * const mem = openStore('memory:', { root: '.flyte' });
 * ```
 * @module
 */
import { join, resolve } from 'node:path';
import { InitializationError } from '../errors.js';
import { hidePasswords } from '../internal/secrets.js';
import { DirBlobStore, type BlobStore } from './blob-store.js';
import { MemoryStore } from './memory-store.js';
import { PgBlobStore } from './postgres/pg-blob-store.js';
import { PostgresStore } from './postgres/postgres-store.js';
import type { RunStore } from './run-store.js';
import { parseSqliteDriver, type SqliteDriverName } from './sqlite/driver.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

export * from './run-store.js';
export { MemoryStore } from './memory-store.js';
export * from './blob-store.js';
export { PgBlobStore, type PgBlobStoreOptions } from './postgres/pg-blob-store.js';
export { SqliteStore, type SqliteStoreOptions, type SqliteStoreStats } from './sqlite/sqlite-store.js';
export { SQLITE_DRIVERS, SqliteError, type SqliteDriverName } from './sqlite/driver.js';
// The Postgres store's driver (pg) loads only when a postgres:// store connects.
export { PostgresStore, type PostgresStoreOptions, type PostgresStoreStats } from './postgres/postgres-store.js';

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** The local state directory (`flyte.init({ root })`); the default store is `${root}/flyte.db`. */
  readonly root: string;
}

const ACCEPTED =
  `'sqlite:PATH' (optionally '?driver=node' or '?driver=better-sqlite3'), 'memory:' or 'postgres://...' ` +
  '(or nothing, for sqlite:<root>/flyte.db)';

/**
 * Opens the store named by `spec`:
 * - `undefined` or `''`: `sqlite:${root}/flyte.db`;
 * - `'sqlite:PATH'`: a {@link SqliteStore} at `PATH` (relative paths are resolved against the current directory);
 *   `'sqlite:PATH?driver=node'` or `?driver=better-sqlite3` chooses its driver (default: `FLYTE_SQLITE_DRIVER`,
 *   else `node:sqlite` where this Node has it, else better-sqlite3; see {@link SqliteStoreOptions.driver});
 * - `'memory:'`: a {@link MemoryStore};
 * - `'postgres://...?schema=NAME'` (or `postgresql://`): a {@link PostgresStore}, returned at once while it
 *   connects and migrates in the background. Await its `ready()` to learn whether it could: until then writes
 *   are buffered and reads wait.
 *
 * @throws {@link InitializationError} for anything it does not recognise, a malformed Postgres URL or schema
 * name, and when the SQLite file was written by a newer flyte-ts. Messages never show a password.
 * @example
 * ```ts
 * const store = openStore('sqlite:./state/runs.db', { root: '.flyte' });
 * ```
 */
export function openStore(spec: string | undefined, options: OpenStoreOptions): RunStore {
  if (spec === undefined || spec === '') return openSqlite(join(resolve(options.root), 'flyte.db'));
  if (spec === 'memory:') return new MemoryStore();
  if (spec.startsWith('sqlite:')) {
    const { path, driver } = parseSqliteSpec(spec);
    if (path === '') {
      throw new InitializationError(`store 'sqlite:' needs a path, e.g. 'sqlite:.flyte/flyte.db'; received '${spec}'`);
    }
    return openSqlite(path, driver);
  }
  if (isPostgres(spec)) return PostgresStore.connect(spec);
  throw new InitializationError(`store must be ${ACCEPTED}; received '${hideStorePassword(spec)}'`);
}

/**
 * Opens the store named by `spec`, like {@link openStore}, and resolves once it is ready (for Postgres: once
 * connected and its schema migrated).
 *
 * @throws {@link InitializationError} (as a rejection) as {@link openStore} does, and when Postgres cannot be
 * reached or its schema was written by a newer flyte-ts; messages never show the password.
 * @example
 * ```ts
 * const store = await openStoreAsync('postgres://me@db/flyte?schema=team_a', { root: '.flyte' });
 * ```
 */
export async function openStoreAsync(spec: string | undefined, options: OpenStoreOptions): Promise<RunStore> {
  const store = openStore(spec, options);
  await store.ready();
  return store;
}

/**
 * The {@link BlobStore} that goes with a store opened by {@link openStore} from the same `spec`: the Postgres
 * store's own tables for `postgres://` (so that it is complete by itself), `${root}/values/` for SQLite, and none
 * for `memory:` (values then stay inline, and a value past `maxInlineIoBytes` is refused).
 *
 * @example
 * ```ts
 * const store = openStore(spec, { root });
 * const blobs = openBlobStore(spec, { root }, store); // DirBlobStore, PgBlobStore or undefined
 * ```
 */
export function openBlobStore(
  spec: string | undefined,
  options: OpenStoreOptions,
  store: RunStore,
): BlobStore | undefined {
  if (spec === 'memory:') return undefined;
  if (spec !== undefined && isPostgres(spec)) return new PgBlobStore(spec, { ready: () => store.ready() });
  return new DirBlobStore(resolve(options.root));
}

function isPostgres(spec: string): boolean {
  return /^postgres(ql)?:\/\//.test(spec);
}

/**
 * The path and the driver of a `sqlite:PATH[?driver=NAME]` store setting. A `?` followed by anything but
 * `driver=` is part of the path.
 *
 * @throws {@link InitializationError} when `driver=` names no driver.
 * @example
 * ```ts
 * parseSqliteSpec('sqlite:.flyte/flyte.db?driver=node'); // { path: '.flyte/flyte.db', driver: 'node' }
 * ```
 */
export function parseSqliteSpec(spec: string): { readonly path: string; readonly driver?: SqliteDriverName } {
  const rest = spec.slice('sqlite:'.length);
  const query = /\?driver=([^?&]*)$/.exec(rest);
  if (query === null) return { path: rest };
  return {
    path: rest.slice(0, query.index),
    driver: parseSqliteDriver(query[1] ?? '', `store '${spec}'`),
  };
}

/** Opens a SQLite store; a file that is not a database or a path that cannot be created is an InitializationError. */
function openSqlite(path: string, driver?: SqliteDriverName): SqliteStore {
  try {
    return SqliteStore.open(path, driver === undefined ? {} : { driver });
  } catch (err) {
    if (err instanceof InitializationError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    const shown = path === ':memory:' ? path : resolve(path);
    throw new InitializationError(`cannot open the run store sqlite:${shown}: ${reason}`, { cause: err });
  }
}

/**
 * Hides a password in a store URL before it goes into a message.
 * @example
 * ```ts
 * hideStorePassword('postgres://me:pw@db/flyte'); // 'postgres://me:***@db/flyte'
 * ```
 */
export function hideStorePassword(spec: string): string {
  return hidePasswords(spec);
}
