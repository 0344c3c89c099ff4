/**
 * The SQLite drivers the embedded store runs on, behind one small synchronous interface: **better-sqlite3** (a
 * native addon, an optional dependency of flyte-ts) and Node's built-in **`node:sqlite`** (`DatabaseSync`, Node
 * ≥ 22.13 without a flag; nothing to install or compile). The store, its migrations and its checkpointer speak
 * only {@link SqliteConnection}; neither driver is loaded until a connection on it is opened.
 *
 * What differs between the two, and what this layer makes the same:
 * - **Transactions**: better-sqlite3's `db.transaction(fn).immediate()` (nested calls become savepoints); on
 *   `node:sqlite` the same is done here with `BEGIN IMMEDIATE` / `COMMIT` / `ROLLBACK` and `SAVEPOINT`s.
 * - **Errors**: better-sqlite3 throws errors whose `code` is SQLite's name (`'SQLITE_BUSY'`); `node:sqlite` throws
 *   `code: 'ERR_SQLITE_ERROR'` with the number in `errcode`. Errors of a `node:sqlite` connection are rethrown as
 *   {@link SqliteError}, whose `code` is the name as better-sqlite3 gives it (the original is its `cause`).
 * - **Rows**: `node:sqlite` returns objects without a prototype; callers build their records from the columns
 *   (and must copy a row that they hand out as is). Integers come back as numbers on both (neither reads
 *   BigInts here; every stored integer is a time, a count or an epoch, far below 2^53).
 * - **Parameters**: only positional `?` are used. `node:sqlite` binds every JS number as a REAL, better-sqlite3 an
 *   integral one as an INTEGER; the columns' INTEGER affinity stores both as integers, so the rows are the same.
 *   Neither binds `undefined`. BLOBs would come back as `Uint8Array` on `node:sqlite` and `Buffer` on
 *   better-sqlite3: the schema has none (values are TEXT; large ones go to the blob store).
 * - **`pluck`** (rows as their first column) is a better-sqlite3 feature; on `node:sqlite` it is done here.
 * - **Settings**: both are opened with the busy timeout given (`PRAGMA busy_timeout`), foreign keys on (the
 *   default of both builds) and double-quoted string literals off.
 * @module
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { InitializationError } from '../../errors.js';

/** The drivers an embedded store can run on. */
export const SQLITE_DRIVERS = ['node', 'better-sqlite3'] as const;

/** `'node'` (the built-in `node:sqlite`) or `'better-sqlite3'`. */
export type SqliteDriverName = (typeof SQLITE_DRIVERS)[number];

/** A value bound to a `?` parameter. */
export type SqlValue = string | number | bigint | null | Uint8Array;

/** What running a statement that writes tells. */
export interface RunResult {
  /** Rows inserted, updated or deleted by the statement. */
  readonly changes: number;
}

/** A prepared statement; keep it and run it again (preparing is the expensive part). */
export interface SqliteStatement {
  run(...params: SqlValue[]): RunResult;
  /** The first row, or `undefined`. */
  get(...params: SqlValue[]): unknown;
  all(...params: SqlValue[]): unknown[];
}

/** One connection to a database file, on one driver. */
export interface SqliteConnection {
  readonly driver: SqliteDriverName;
  prepare(sql: string): SqliteStatement;
  /** A statement whose rows are the value of their first column (`get` returns it, `all` a list of them). */
  preparePluck(sql: string): SqliteStatement;
  /** Runs one or more statements that return nothing. */
  exec(sql: string): void;
  /**
   * `fn` wrapped in an immediate transaction (`BEGIN IMMEDIATE`: the write lock is taken at once, or the busy
   * timeout applies): committed when it returns, rolled back when it throws. A call from inside another
   * transaction of this connection is a savepoint of it.
   */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): void;
}

/** Options of {@link openConnection}. */
export interface OpenConnectionOptions {
  /** How long a statement waits for another connection's lock before it fails with `SQLITE_BUSY`. */
  readonly busyTimeoutMs: number;
  /** @default false */
  readonly readOnly?: boolean;
}

/**
 * An error of SQLite on a `node:sqlite` connection, with the `code` that better-sqlite3 would give it.
 *
 * @example
 * ```ts
 * try { commit(); } catch (e) { if (e instanceof SqliteError && e.code === 'SQLITE_BUSY') retryLater(); }
 * ```
 */
export class SqliteError extends Error {
  /** SQLite's name of the (extended) result code, e.g. `'SQLITE_BUSY'`, `'SQLITE_CONSTRAINT_UNIQUE'`. */
  readonly code: string;
  /** SQLite's (extended) result code, e.g. 5. */
  readonly errcode: number;

  constructor(message: string, errcode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SqliteError';
    this.errcode = errcode;
    this.code = sqliteCodeName(errcode);
  }
}

/** The oldest Node with `node:sqlite` unflagged. */
const NODE_SQLITE_SINCE = [22, 13] as const;

/** Whether this Node has `node:sqlite` without a flag (≥ 22.13). */
export function nodeSqliteAvailable(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > NODE_SQLITE_SINCE[0] || (major === NODE_SQLITE_SINCE[0] && minor >= NODE_SQLITE_SINCE[1]);
}

/**
 * The driver to use when none was chosen: `node:sqlite` where this Node has it (≥ 22.13), better-sqlite3 otherwise
 * (Node 20). The choice was measured: see bench/README.md ("SQLite drivers").
 */
export function defaultSqliteDriver(): SqliteDriverName {
  return nodeSqliteAvailable() ? 'node' : 'better-sqlite3';
}

/** The environment variable that chooses the driver when the store's setting names none. */
export const SQLITE_DRIVER_ENV = 'FLYTE_SQLITE_DRIVER';

/**
 * The driver of a store: `requested` if given, else `FLYTE_SQLITE_DRIVER` if set, else {@link defaultSqliteDriver}.
 *
 * @throws {@link InitializationError} when `FLYTE_SQLITE_DRIVER` names no driver.
 */
export function chooseSqliteDriver(requested?: SqliteDriverName): SqliteDriverName {
  if (requested !== undefined) return parseSqliteDriver(requested, 'the SQLite store option driver');
  const env = process.env[SQLITE_DRIVER_ENV];
  if (env !== undefined && env !== '') return parseSqliteDriver(env, SQLITE_DRIVER_ENV);
  return defaultSqliteDriver();
}

/**
 * Reads a driver name (of `sqlite:PATH?driver=NAME`, `FLYTE_SQLITE_DRIVER` or an option).
 *
 * @throws {@link InitializationError} for anything but {@link SQLITE_DRIVERS}, naming where it came from.
 */
export function parseSqliteDriver(text: string, where: string): SqliteDriverName {
  if ((SQLITE_DRIVERS as readonly string[]).includes(text)) return text as SqliteDriverName;
  throw new InitializationError(
    `${where}: expected a SQLite driver, ${SQLITE_DRIVERS.map((d) => `'${d}'`).join(' or ')}; received '${text}'`,
  );
}

/**
 * Opens `file` (or `':memory:'`) on `driver`, loading the driver on first use.
 *
 * @throws {@link InitializationError} when the driver cannot be used here: `node:sqlite` on a Node older than
 * 22.13, better-sqlite3 not installed or built for another Node. Errors of SQLite itself (a file that is not a
 * database, say) are thrown as the driver throws them.
 * @example
 * ```ts
 * const db = openConnection('/tmp/x.db', 'node', { busyTimeoutMs: 5000 });
 * db.preparePluck('SELECT count(*) FROM sqlite_master').get(); // 0
 * db.close();
 * ```
 */
export function openConnection(
  file: string,
  driver: SqliteDriverName,
  options: OpenConnectionOptions,
): SqliteConnection {
  return driver === 'node' ? openNode(file, options) : openBetter(file, options);
}

/**
 * What the checkpointer's worker thread needs to open its own connection on the same driver: `'node'`, or the
 * resolved path of better-sqlite3's entry point (a worker's `require` must find the same copy).
 */
export function driverModuleFor(driver: SqliteDriverName): string {
  return driver === 'node' ? 'node' : createRequire(import.meta.url).resolve('better-sqlite3');
}

// ----- better-sqlite3 -----

type BetterDatabaseClass = typeof BetterSqlite3;
let betterModule: BetterDatabaseClass | undefined;

function loadBetter(): BetterDatabaseClass {
  if (betterModule !== undefined) return betterModule;
  try {
    betterModule = createRequire(import.meta.url)('better-sqlite3') as BetterDatabaseClass;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    throw new InitializationError(
      'the SQLite driver better-sqlite3 is not installed (it is an optional dependency of flyte-ts: its install ' +
        'needs a prebuilt binary or a C++ compiler). ' +
        (nodeSqliteAvailable()
          ? "Use this Node's built-in node:sqlite instead (driver 'node': sqlite:PATH?driver=node or " +
            'FLYTE_SQLITE_DRIVER=node), or install it: npm install better-sqlite3@12'
          : `On Node ${process.versions.node} it is the only driver: install it (npm install better-sqlite3@12), ` +
            'or use Node >= 22.13, whose built-in node:sqlite needs nothing installed'),
      // No cause: the message says it all (and the CLI would show a store error's cause instead of it).
    );
  }
  return betterModule;
}

function openBetter(file: string, options: OpenConnectionOptions): SqliteConnection {
  const Database = loadBetter();
  let db: BetterSqlite3.Database;
  try {
    db = new Database(file, { timeout: options.busyTimeoutMs, readonly: options.readOnly === true });
  } catch (err) {
    // The addon is loaded by the first open: a binary built for another Node fails here.
    if (/NODE_MODULE_VERSION|was compiled against a different Node/.test(String(err))) {
      throw new InitializationError(
        `the SQLite driver better-sqlite3 was built for another version of Node than this one ` +
          `(${process.versions.node}): rebuild it (npm rebuild better-sqlite3)` +
          (nodeSqliteAvailable() ? " or use the built-in node:sqlite (driver 'node')" : '') +
          `; ${firstLine(err)}`,
      );
    }
    throw err;
  }
  return {
    driver: 'better-sqlite3',
    // better-sqlite3's statements already have this interface (and its errors SQLite's codes).
    prepare: (sql) => db.prepare<SqlValue[]>(sql),
    preparePluck: (sql) => db.prepare<SqlValue[]>(sql).pluck(),
    exec: (sql) => void db.exec(sql),
    transaction: <A extends unknown[], R>(fn: (...args: A) => R) => {
      const tx = db.transaction(fn);
      return (...args: A): R => tx.immediate(...args);
    },
    close: () => void db.close(),
  };
}

// ----- node:sqlite -----

/** The part of `node:sqlite` used here (its types are not in @types/node 20). */
interface NodeStatementSync {
  run(...params: SqlValue[]): { changes: number | bigint };
  get(...params: SqlValue[]): unknown;
  all(...params: SqlValue[]): unknown[];
}
interface NodeDatabaseSync {
  prepare(sql: string): NodeStatementSync;
  exec(sql: string): void;
  close(): void;
}
interface NodeSqliteModule {
  DatabaseSync: new (
    path: string,
    options?: { readOnly?: boolean; enableForeignKeyConstraints?: boolean; enableDoubleQuotedStringLiterals?: boolean },
  ) => NodeDatabaseSync;
}

let nodeModule: NodeSqliteModule | undefined;

function loadNode(): NodeSqliteModule {
  if (nodeModule !== undefined) return nodeModule;
  if (!nodeSqliteAvailable()) {
    throw new InitializationError(
      `the SQLite driver 'node' (the built-in node:sqlite) needs Node >= 22.13; this is Node ` +
        `${process.versions.node}: use driver 'better-sqlite3' (npm install better-sqlite3@12) or a newer Node`,
    );
  }
  nodeModule = process.getBuiltinModule('node:sqlite') as NodeSqliteModule;
  return nodeModule;
}

function openNode(file: string, options: OpenConnectionOptions): SqliteConnection {
  const { DatabaseSync } = loadNode();
  const db = guard(
    () =>
      new DatabaseSync(file, {
        readOnly: options.readOnly === true,
        enableForeignKeyConstraints: true,
        enableDoubleQuotedStringLiterals: false,
      }),
  );
  const exec = (sql: string): void => guard(() => db.exec(sql));
  try {
    exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
  } catch (err) {
    db.close();
    throw err;
  }
  /** Transactions of this connection open now (the outermost is BEGIN, the others savepoints). */
  let depth = 0;
  return {
    driver: 'node',
    prepare: (sql) =>
      new NodeStatement(
        guard(() => db.prepare(sql)),
        false,
      ),
    preparePluck: (sql) =>
      new NodeStatement(
        guard(() => db.prepare(sql)),
        true,
      ),
    exec,
    transaction:
      <A extends unknown[], R>(fn: (...args: A) => R) =>
      (...args: A): R => {
        const savepoint = depth > 0 ? `flyte_sp_${depth}` : undefined;
        exec(savepoint === undefined ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${savepoint}`);
        depth++;
        let result: R;
        try {
          result = fn(...args);
        } catch (err) {
          depth--;
          rollback(db, savepoint);
          throw asSqliteError(err);
        }
        depth--;
        try {
          exec(savepoint === undefined ? 'COMMIT' : `RELEASE ${savepoint}`);
        } catch (err) {
          // A COMMIT that failed (SQLITE_BUSY) leaves the transaction open: end it, so the next one can begin.
          rollback(db, savepoint);
          throw err;
        }
        return result;
      },
    close: () => db.close(),
  };
}

/** Undoes an outer transaction or a savepoint; a failure to (no transaction open any more) changes nothing. */
function rollback(db: NodeDatabaseSync, savepoint: string | undefined): void {
  try {
    db.exec(savepoint === undefined ? 'ROLLBACK' : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
  } catch {
    // SQLite already rolled the transaction back (some errors do): nothing is left to undo.
  }
}

/** A `node:sqlite` statement with better-sqlite3's error codes, and `pluck` if asked. */
class NodeStatement implements SqliteStatement {
  readonly #s: NodeStatementSync;
  readonly #pluck: boolean;

  constructor(statement: NodeStatementSync, pluck: boolean) {
    this.#s = statement;
    this.#pluck = pluck;
  }

  run(...params: SqlValue[]): RunResult {
    try {
      return this.#s.run(...params) as RunResult;
    } catch (err) {
      throw asSqliteError(err);
    }
  }

  get(...params: SqlValue[]): unknown {
    let row: unknown;
    try {
      row = this.#s.get(...params);
    } catch (err) {
      throw asSqliteError(err);
    }
    return this.#pluck && row !== undefined ? firstColumn(row) : row;
  }

  all(...params: SqlValue[]): unknown[] {
    let rows: unknown[];
    try {
      rows = this.#s.all(...params);
    } catch (err) {
      throw asSqliteError(err);
    }
    return this.#pluck ? rows.map(firstColumn) : rows;
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

function firstColumn(row: unknown): unknown {
  for (const key in row as Record<string, unknown>) return (row as Record<string, unknown>)[key];
  return undefined;
}

/** Runs `body`, rethrowing an error of `node:sqlite` as a {@link SqliteError}. */
function guard<T>(body: () => T): T {
  try {
    return body();
  } catch (err) {
    throw asSqliteError(err);
  }
}

function isNodeSqliteError(err: Error): err is Error & { errcode: number } {
  return (
    (err as { code?: unknown }).code === 'ERR_SQLITE_ERROR' &&
    typeof (err as { errcode?: unknown }).errcode === 'number'
  );
}

function asSqliteError(err: unknown): unknown {
  return err instanceof Error && isNodeSqliteError(err) ? toSqliteError(err) : err;
}

function toSqliteError(err: Error & { errcode: number }): SqliteError {
  return new SqliteError(err.message, err.errcode, { cause: err });
}

/** SQLite's primary result codes, by number (https://sqlite.org/rescode.html). */
const PRIMARY_CODES: readonly string[] = [
  'OK',
  'ERROR',
  'INTERNAL',
  'PERM',
  'ABORT',
  'BUSY',
  'LOCKED',
  'NOMEM',
  'READONLY',
  'INTERRUPT',
  'IOERR',
  'CORRUPT',
  'NOTFOUND',
  'FULL',
  'CANTOPEN',
  'PROTOCOL',
  'EMPTY',
  'SCHEMA',
  'TOOBIG',
  'CONSTRAINT',
  'MISMATCH',
  'MISUSE',
  'NOLFS',
  'AUTH',
  'FORMAT',
  'RANGE',
  'NOTADB',
  'NOTICE',
  'WARNING',
];

/** The extended result codes a store may meet, by number. */
const EXTENDED_CODES: ReadonlyMap<number, string> = new Map([
  [261, 'BUSY_RECOVERY'],
  [517, 'BUSY_SNAPSHOT'],
  [773, 'BUSY_TIMEOUT'],
  [262, 'LOCKED_SHAREDCACHE'],
  [264, 'READONLY_RECOVERY'],
  [520, 'READONLY_CANTLOCK'],
  [776, 'READONLY_ROLLBACK'],
  [1032, 'READONLY_DBMOVED'],
  [275, 'CONSTRAINT_CHECK'],
  [787, 'CONSTRAINT_FOREIGNKEY'],
  [1299, 'CONSTRAINT_NOTNULL'],
  [1555, 'CONSTRAINT_PRIMARYKEY'],
  [2067, 'CONSTRAINT_UNIQUE'],
]);

/** `'SQLITE_BUSY'` for 5: the extended name when it is one of {@link EXTENDED_CODES}, else the primary one. */
export function sqliteCodeName(errcode: number): string {
  const name = EXTENDED_CODES.get(errcode) ?? PRIMARY_CODES[errcode & 0xff] ?? `UNKNOWN_${errcode}`;
  return `SQLITE_${name}`;
}
