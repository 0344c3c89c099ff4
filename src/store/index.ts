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
import { MemoryStore } from './memory-store.js';
import type { RunStore } from './run-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

export * from './run-store.js';
export { MemoryStore } from './memory-store.js';
export { SqliteStore, type SqliteStoreOptions, type SqliteStoreStats } from './sqlite/sqlite-store.js';
// The Postgres store (and its driver) loads only when a postgres:// store is opened: see openStoreAsync.
export type { PostgresStore, PostgresStoreOptions, PostgresStoreStats } from './postgres/postgres-store.js';

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** The local state directory (`flyte.init({ root })`); the default store is `${root}/flyte.db`. */
  readonly root: string;
}

const ACCEPTED = `'sqlite:PATH', 'memory:' or 'postgres://...' (or nothing, for sqlite:<root>/flyte.db)`;

/**
 * Opens the store named by `spec`:
 * - `undefined` or `''`: `sqlite:${root}/flyte.db`;
 * - `'sqlite:PATH'`: a {@link SqliteStore} at `PATH` (relative paths are resolved against the current directory);
 * - `'memory:'`: a {@link MemoryStore}.
 *
 * @throws {@link InitializationError} for `postgres://` URLs (a Postgres store opens asynchronously: use
 * {@link openStoreAsync}) and for anything else it does not recognise, and when the SQLite file was written by a
 * newer flyte-ts.
 * @example
 * ```ts
 * const store = openStore('sqlite:./state/runs.db', { root: '.flyte' });
 * ```
 */
export function openStore(spec: string | undefined, options: OpenStoreOptions): RunStore {
  if (spec === undefined || spec === '') return openSqlite(join(resolve(options.root), 'flyte.db'));
  if (spec === 'memory:') return new MemoryStore();
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    if (path === '') {
      throw new InitializationError(`store 'sqlite:' needs a path, e.g. 'sqlite:.flyte/flyte.db'; received '${spec}'`);
    }
    return openSqlite(path);
  }
  if (isPostgres(spec)) {
    throw new InitializationError(
      `store '${redact(spec)}': Postgres is not available through the synchronous openStore() (a Postgres ` +
        `store opens asynchronously: use openStoreAsync()); use 'sqlite:PATH' or 'memory:' here`,
    );
  }
  throw new InitializationError(`store must be ${ACCEPTED}; received '${redact(spec)}'`);
}

/**
 * Opens the store named by `spec`, like {@link openStore}, and also `'postgres://...?schema=NAME'`: a
 * {@link PostgresStore}, resolved once its schema is migrated.
 *
 * @throws {@link InitializationError} (as a rejection) as {@link openStore} does, and when Postgres cannot be
 * reached or its schema was written by a newer flyte-ts; messages never show the password.
 * @example
 * ```ts
 * const store = await openStoreAsync('postgres://me@db/flyte?schema=team_a', { root: '.flyte' });
 * ```
 */
export async function openStoreAsync(spec: string | undefined, options: OpenStoreOptions): Promise<RunStore> {
  if (spec !== undefined && isPostgres(spec)) {
    const { PostgresStore } = await import('./postgres/postgres-store.js');
    return PostgresStore.open(spec);
  }
  return openStore(spec, options);
}

function isPostgres(spec: string): boolean {
  return /^postgres(ql)?:\/\//.test(spec);
}

/** Opens a SQLite store; a file that is not a database or a path that cannot be created is an InitializationError. */
function openSqlite(path: string): SqliteStore {
  try {
    return SqliteStore.open(path);
  } catch (err) {
    if (err instanceof InitializationError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    const shown = path === ':memory:' ? path : resolve(path);
    throw new InitializationError(`cannot open the run store sqlite:${shown}: ${reason}`, { cause: err });
  }
}

/** Hides a password in a URL before it goes into an error message. */
function redact(spec: string): string {
  return spec.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}
