/**
 * The {@link RunStore} of a Postgres database: many processes on many machines share one schema, written with
 * group commit as multi-row statements.
 * @module
 */
// Only the types: the driver itself is imported when a store connects, so that loading this module is cheap.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { InitializationError } from '../../errors.js';
import { hidePasswords } from '../../internal/secrets.js';
import {
  ABORT_REQUEST_COLUMNS,
  ACTION_COLUMNS,
  ATTEMPT_COLUMNS,
  CLAIMED_ACTION_COLUMNS,
  claimActionSet,
  RUN_COLUMNS,
  FAILED_PHASES_SQL,
  TERMINAL_ACTION_PHASES_SQL,
  WHOLE_RUN,
  abortRequestFromRow,
  causeFromRow,
  errorFromJson,
  type CauseRow,
  actionWriteGuard,
  claimedActionFromRow,
  type AbortRequestRow,
  type ClaimedActionRow,
  type EndedActionRow,
  actionFromRow,
  attemptFromRow,
  cacheEntryFromRow,
  groupFromRow,
  logFromRow,
  errorJson,
  runFromRow,
  type ActionRow,
  type AttemptRow,
  type CacheRow,
  type GroupRow,
  type LogRow,
  type RunRow,
  runLogFromRow,
  type RunLogRow,
} from '../sql-rows.js';
import type { ActionCounts, ActionRecord, AttemptRecord, LogLine, RunRecord } from '../../types.js';
import {
  RunAlreadyExistsError,
  StoreClosedError,
  StoreUnavailableError,
  impliedFirstAttempt,
  type AbortRequest,
  type ActionClaim,
  type ClaimedAction,
  type EndedAction,
  type EndedAmongOptions,
  type ActionIO,
  type ActionWrite,
  type CacheEntry,
  type FailureCause,
  type GroupSummary,
  type ListActionsQuery,
  type ListCausesQuery,
  type ListLogsQuery,
  type ListRunsQuery,
  type MapTotal,
  type RunClaim,
  type RunLogLine,
  type RunLogsQuery,
  type RunStore,
  type RunUpdate,
  type RunWrite,
} from '../run-store.js';
import { checkActionFilters, checkCausesQuery, checkTail, pageOf, runLogsPage } from '../paging.js';
import {
  SWEEPS_KEPT,
  type SweepOutcome,
  type SweepRecord,
  type SweepSession,
  type SweepStore,
} from '../sweep-store.js';
import { PG_CAUSES_MIGRATION, applyPgMigrations, checkSchemaName, quoteIdent } from './migrations.js';
import { causeOf } from '../../internal/error-cause.js';
import { WriteBuffer, checkPositive, type WriteBatch, type WriteBufferStats } from '../write-buffer.js';

/** Options of {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
  /**
   * How long a write may wait in memory before it is committed: the group-commit window.
   * @default 10
   */
  readonly flushIntervalMs?: number;
  /**
   * When this many rows are pending, a commit starts on the next turn of the event loop without waiting for the
   * timer; this bounds the memory held by the buffer.
   * @default 10000
   */
  readonly maxBatch?: number;
  /**
   * Connections in the pool.
   * @default 4
   */
  readonly poolSize?: number;
  /**
   * Called when a commit started by the timer fails. The writes are kept and retried with a backoff up to 1 s;
   * the next `flush()` rejects if the problem remains.
   * @default undefined (the failure is only counted in `stats.failedCommits`)
   */
  readonly onBackgroundError?: (error: Error) => void;
  /**
   * How long the database may stay unreachable (a restart, a failover) before the operations waiting on it give
   * up. Until then a query that fails because the connection is refused or was cut is tried again, with a
   * backoff up to 1 s, and `durable()` waits; past it they reject with a {@link StoreUnavailableError} (and fail
   * at once while it stays down). Buffered writes are never dropped: they are retried until the database is
   * back. Also set by the URL parameter `?maxOutageMs=`, which wins over this option.
   * @default 60000
   */
  readonly maxOutageMs?: number;
}

/** Counters of a {@link PostgresStore}, for tests and diagnostics. */
export interface PostgresStoreStats extends WriteBufferStats {
  /** Statements sent inside commit transactions, `BEGIN` and `COMMIT` included. */
  readonly commitStatements: number;
}

const DEFAULT_POOL_SIZE = 4;
/** The default of {@link PostgresStoreOptions.maxOutageMs}. */
export const DEFAULT_MAX_OUTAGE_MS = 60_000;
/** The first and the longest pause between two tries of a query that failed for a lost connection, in ms. */
const OUTAGE_RETRY_FIRST_MS = 50;
const OUTAGE_RETRY_MAX_MS = 1_000;
const DEFAULT_SCHEMA = 'flyte';
/** The advisory lock under which abort requests are inserted (one per schema). */
const ABORT_LOCK = 'flyte-ts:abort-requests';
/** The advisory lock under which a run's log lines are inserted (one per schema and run; see listRunLogs). */
const LOGS_LOCK = 'flyte-ts:logs';
/** The advisory lock of the sweeper (one per schema): one process sweeps at a time. */
const SWEEP_LOCK = 'flyte-ts:sweeper';

type Queryable = pg.Pool | pg.PoolClient;

const INT8_OID = 20;

/** `bigint` (and `count(*)`) columns come back as numbers: they hold ms timestamps and counts, far below 2^53. */
function typesOf(driver: typeof pg): pg.CustomTypesConfig {
  const typeParser = (oid: number, format?: 'text' | 'binary'): ((value: string) => unknown) => {
    if (oid === INT8_OID) return Number;
    return driver.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  };
  return { getTypeParser: typeParser as pg.CustomTypesConfig['getTypeParser'] };
}

/**
 * A {@link RunStore} in one schema of a Postgres database, shared by every process that opens it.
 *
 * Writes are **group-committed** as in the SQLite store: `putAction`, `putAttempt`, `appendLogs`, `updateRun`,
 * `putCacheEntry` and `putMapTotal` only enqueue, coalesced per action (attempt, run, key). One commit is in
 * flight at a time; it writes every pending row in **one transaction of multi-row statements** (`INSERT … SELECT
 * FROM unnest(…) ON CONFLICT …`, one per table), `flushIntervalMs` after the first pending write, when
 * `maxBatch` rows are pending, on `flush()`, or on the next turn after a `durable()`. Reads commit what is
 * pending first (the cache lookup answers from pending entries). A failed commit keeps its writes and retries
 * with a backoff.
 *
 * **Guarded writes.** Each action row carries the run epoch of its writer. A commit locks the rows of the runs
 * this instance claimed (`FOR UPDATE`) and drops the pending writes of a run whose epoch moved on (fencing);
 * the upsert itself refuses a write of an older epoch, and never makes a terminal action unfinished again
 * unless the writer holds a newer epoch (a recovery that claimed the run).
 *
 * Timers are unref'd: call `flush()` or `close()` before the process exits.
 *
 * **Readiness.** {@link PostgresStore.connect} returns at once and connects and migrates in the background;
 * every async method waits for that first, and buffered writes are kept meanwhile. If it fails, `ready()` and
 * every later operation reject (a buffered write throws) with the same {@link InitializationError}.
 *
 * @example
 * ```ts
 * const store = await PostgresStore.open('postgres://me@db.internal/flyte?schema=team_a');
 * store.putAction(action);                 // buffered
 * await store.getAction(run, action.name); // commits, then reads
 * await store.close();
 * ```
 */
export class PostgresStore implements RunStore, SweepStore {
  /** The URL without its password, e.g. `postgres://me:***@db/flyte?schema=team_a`. */
  readonly description: string;
  /** The schema holding the tables. */
  readonly schema: string;

  /** Set once connected; every use of it comes after `await this.#ready`. Its queries ride out outages. */
  #pool: pg.Pool | undefined;
  readonly #maxOutageMs: number;
  /** When queries started failing for a lost connection (none succeeded since); `undefined` while it answers. */
  #downSince: number | undefined;
  readonly #ready: Promise<void>;
  /** Why the store could not be opened, once known: every later operation fails with it. */
  #failure: InitializationError | undefined;
  readonly #t: Tables;
  readonly #sql: CommitStatements;
  readonly #buffer: WriteBuffer;
  /** Statements sent inside commit transactions. */
  #commitStatements = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(url: string, options: PostgresStoreOptions) {
    checkPositive('poolSize', options.poolSize, false);
    const { connectionString, schema, description, maxOutageMs } = parsePostgresUrl(url);
    checkPositive('maxOutageMs', options.maxOutageMs, true);
    this.#maxOutageMs = maxOutageMs ?? options.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS;
    this.description = description;
    this.schema = schema;
    this.#t = tables(quoteIdent(schema));
    this.#sql = commitStatements(this.#t);
    this.#buffer = new WriteBuffer({
      description,
      flushIntervalMs: options.flushIntervalMs,
      maxBatch: options.maxBatch,
      sync: false,
      onBackgroundError: options.onBackgroundError,
      commit: (batch) => this.#write(batch),
      fatal: () => this.#failure,
    });
    this.#ready = this.#start(connectionString, options.poolSize ?? DEFAULT_POOL_SIZE);
    // Handled here so that a store nobody awaits does not end the process; every operation reports it.
    this.#ready.catch(() => undefined);
  }

  /**
   * Returns at once a store on the database named by `url` (`postgres://` or `postgresql://`), and starts
   * connecting and bringing the schema named by its `?schema=NAME` parameter (default `flyte`) up to date in the
   * background; {@link PostgresStore.ready} resolves once that is done. The `schema` parameter is not passed on
   * to the driver.
   *
   * @throws RangeError when an option is out of range.
   * @throws {@link InitializationError} when the URL or schema name is malformed. A database that cannot be
   * reached or a schema written by a newer flyte-ts rejects `ready()` and every later operation instead. The
   * message never shows the password.
   * @example
   * ```ts
   * const store = PostgresStore.connect('postgres://postgres@127.0.0.1:5432/test?schema=ci');
   * store.putAction(action); // buffered until connected
   * await store.ready();
   * ```
   */
  static connect(url: string, options: PostgresStoreOptions = {}): PostgresStore {
    return new PostgresStore(url, options);
  }

  /**
   * Connects to the database named by `url` (`postgres://` or `postgresql://`) and brings the schema named by
   * its `?schema=NAME` parameter (default `flyte`) up to date, creating it if needed. Resolves once the
   * migrations ran. The `schema` parameter is not passed on to the driver.
   *
   * @throws RangeError when an option is out of range.
   * @throws {@link InitializationError} when the URL or schema name is malformed, the database cannot be
   * reached, or the schema was written by a newer flyte-ts. The message never shows the password.
   * @example
   * ```ts
   * const store = await PostgresStore.open('postgres://postgres@127.0.0.1:5432/test?schema=ci');
   * ```
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const store = new PostgresStore(url, options);
    await store.ready();
    return store;
  }

  /**
   * Resolves once connected and migrated.
   *
   * @throws {@link InitializationError} (as a rejection) when the database cannot be reached or its schema was
   * written by a newer flyte-ts; the message names the store, without its password.
   */
  ready(): Promise<void> {
    return this.#ready;
  }

  async #start(connectionString: string, max: number): Promise<void> {
    let pool: pg.Pool | undefined;
    try {
      const { default: driver } = await import('pg');
      // A process stopped (SIGSTOP, a frozen VM) inside a commit would hold its row locks, and block every other
      // process's claim, orphan mark or abort of those runs, for as long as it stays stopped. The server ends a
      // session idle in a transaction for 10 s (less than the default 15 s lease): the locks go, the stopped
      // commit fails, and it is retried when the process wakes up (and fenced if the run was taken over).
      pool = new driver.Pool({
        connectionString,
        max,
        types: typesOf(driver),
        idle_in_transaction_session_timeout: 10_000,
        // Idle connections do not keep the process alive: a script whose run has ended (every outcome durable
        // before it is visible) exits at once, not after the pool's 10 s idle timeout.
        allowExitOnIdle: true,
      });
      // An idle connection that breaks emits 'error' on the pool; without a listener it would end the process.
      // The next query opens a new connection (and a commit that fails is retried).
      pool.on('error', () => undefined);
      const client = await pool.connect();
      try {
        const ran = await applyPgMigrations(client, this.schema, this.description);
        if (ran.includes(PG_CAUSES_MIGRATION)) await fillCauses(client, this.#t);
      } finally {
        client.release();
      }
      this.#pool = this.#ridingOutages(pool);
    } catch (err) {
      await pool?.end().catch(() => undefined);
      const reason = err instanceof Error ? err.message : String(err);
      this.#failure =
        err instanceof InitializationError
          ? err
          : new InitializationError(`cannot open the run store ${this.description}: ${reason}`, { cause: err });
      throw this.#failure;
    }
  }

  /**
   * `pool`, with `query` and `connect` tried again while the database is unreachable (see
   * {@link PostgresStoreOptions.maxOutageMs}). A query is tried again only when it failed for the connection
   * (refused, cut, the server shutting down): a statement that reached the server and failed for itself is not.
   * Retrying a statement whose reply was lost with the connection is harmless here: the store's statements are
   * reads, guarded upserts and claims (a claim made twice raises the epoch twice, for the same owner).
   */
  #ridingOutages(pool: pg.Pool): pg.Pool {
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
    const overrides: Record<string | symbol, unknown> = {
      query: (...args: unknown[]) => this.#whileUnreachable(() => query(...args)),
      connect: () => this.#whileUnreachable(connect),
    };
    return new Proxy(pool, {
      get: (target, key) => overrides[key] ?? (Reflect.get(target, key, target) as unknown),
    });
  }

  /** Runs `attempt` until it succeeds, fails for itself, or the database has been away past the outage limit. */
  async #whileUnreachable<T>(attempt: () => Promise<T>): Promise<T> {
    let pause = OUTAGE_RETRY_FIRST_MS;
    for (;;) {
      try {
        const result = await attempt();
        this.#downSince = undefined;
        return result;
      } catch (err) {
        if (this.#closed || !isConnectionError(err)) throw err;
        const now = Date.now();
        this.#downSince ??= now;
        const downFor = now - this.#downSince;
        if (downFor >= this.#maxOutageMs) {
          throw new StoreUnavailableError(this.description, downFor, this.#maxOutageMs, err);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(pause, this.#maxOutageMs - downFor)));
        pause = Math.min(pause * 2, OUTAGE_RETRY_MAX_MS);
      }
    }
  }

  /** The pool: only after `await this.#ready`. */
  get #db(): pg.Pool {
    if (this.#pool === undefined) throw this.#failure ?? new Error('PostgresStore: used before it was ready');
    return this.#pool;
  }

  /** Counters since the store was opened. */
  get stats(): PostgresStoreStats {
    return { ...this.#buffer.stats, commitStatements: this.#commitStatements };
  }

  /** Rows waiting to be committed (the commit in flight aside). */
  get pendingWrites(): number {
    return this.#buffer.rows;
  }

  async createRun(run: RunWrite): Promise<void> {
    await this.#beforeRead();
    const res = await this.#db.query(
      `INSERT INTO ${this.#t.runs}
        (name, task_name, phase, mode, created_at, started_at, ended_at, error, labels, options, module, owner,
         epoch, heartbeat_at, lease_expires_at, inputs)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (name) DO NOTHING`,
      [
        run.name,
        run.taskName,
        run.phase,
        run.mode,
        run.createdAt,
        run.startedAt,
        run.endedAt,
        errorJson(run.error),
        JSON.stringify(run.labels),
        JSON.stringify(run.options),
        run.module,
        run.owner,
        run.epoch ?? 1,
        run.heartbeatAt ?? null,
        run.leaseExpiresAt ?? null,
        run.inputs,
      ],
    );
    if (res.rowCount === 0) throw new RunAlreadyExistsError(run.name);
    this.#buffer.claims.claimed(run.name, run.epoch ?? 1);
  }

  /**
   * Claims are **batched**: at most {@link CLAIMS_IN_FLIGHT} claim statements run at once, and the claims made
   * meanwhile (a worker fetching many jobs at once) wait and go together as one statement, so one round trip and
   * one commit. Each claim is still atomic on its own row, and a batch never holds the same action twice.
   */
  async claimAction(runName: string, actionName: string, claim: ActionClaim): Promise<ClaimedAction | undefined> {
    await this.#beforeReadOf(runName, [actionName]);
    return new Promise((resolve, reject) => {
      this.#claims.push({
        runName,
        actionName,
        owner: claim.owner,
        leaseExpiresAt: Date.now() + claim.leaseMs,
        resolve,
        reject,
      });
      this.#sendClaims();
    });
  }

  /** Claims waiting for a statement (see {@link PostgresStore.claimAction}). */
  readonly #claims: PendingClaim[] = [];
  #claimsInFlight = 0;

  /** Sends the waiting claims as one statement, unless {@link CLAIMS_IN_FLIGHT} are running already. */
  #sendClaims(): void {
    if (this.#claimsInFlight >= CLAIMS_IN_FLIGHT || this.#claims.length === 0) return;
    // An action claimed twice at once (a duplicate delivery) goes in the next batch: its claims stay in order.
    const batch: PendingClaim[] = [];
    const later: PendingClaim[] = [];
    const keys = new Set<string>();
    for (const c of this.#claims.splice(0)) {
      const key = `${c.runName}\0${c.actionName}`;
      if (keys.has(key) || batch.length >= ROWS_PER_STATEMENT) later.push(c);
      else {
        keys.add(key);
        batch.push(c);
      }
    }
    this.#claims.push(...later);
    this.#claimsInFlight++;
    // #claimBatch never rejects: it settles every claim of the batch itself.
    void this.#claimBatch(batch).finally(() => {
      this.#claimsInFlight--;
      this.#sendClaims();
    });
  }

  async #claimBatch(batch: readonly PendingClaim[]): Promise<void> {
    try {
      // A lone claim (a chain, a quiet worker) is a plain UPDATE: one row locks itself, with no CTE to pay for.
      const one = batch.length === 1 ? batch[0] : undefined;
      const sql = one === undefined ? this.#sql.claimActions : this.#sql.claimAction;
      const values =
        one === undefined
          ? [
              batch.map((c) => c.runName),
              batch.map((c) => c.actionName),
              batch.map((c) => c.owner),
              batch.map((c) => c.leaseExpiresAt),
            ]
          : [one.owner, one.leaseExpiresAt, one.runName, one.actionName];
      const res = await this.#db.query<ClaimedActionRow>({ name: preparedName(sql), text: sql, values });
      const claimed = new Map(res.rows.map((row) => [`${row.run_name}\0${row.name}`, row]));
      for (const c of batch) {
        const row = claimed.get(`${c.runName}\0${c.actionName}`);
        c.resolve(row === undefined ? undefined : claimedActionFromRow(row));
      }
    } catch (err) {
      for (const c of batch) c.reject(err);
    }
  }

  async releaseAction(runName: string, actionName: string, epoch: number): Promise<boolean> {
    await this.#beforeReadOf(runName, [actionName]);
    const res = await this.#db.query(
      `UPDATE ${this.#t.actions} SET owner = NULL
       WHERE run_name = $1 AND name = $2 AND epoch = $3 AND phase NOT IN ${TERMINAL_ACTION_PHASES_SQL}`,
      [runName, actionName, epoch],
    );
    return (res.rowCount ?? 0) > 0;
  }

  async claimRun(name: string, expectedEpoch: number, claim: RunClaim): Promise<RunRecord | undefined> {
    await this.#beforeRead();
    const now = Date.now();
    const res = await this.#db.query<RunRow>(
      `UPDATE ${this.#t.runs} SET phase = 'running', ended_at = NULL, error = NULL, owner = $1, epoch = epoch + 1,
         heartbeat_at = $2, lease_expires_at = $3
       WHERE name = $4 AND epoch = $5 RETURNING ${RUN_COLUMNS}`,
      [claim.owner, now, now + claim.leaseMs, name, expectedEpoch],
    );
    const row = res.rows[0];
    if (row === undefined) return undefined;
    this.#buffer.claims.claimed(name, row.epoch);
    return runFromRow(row);
  }

  async renewLease(name: string, epoch: number, leaseMs: number): Promise<boolean> {
    await this.#usable();
    const now = Date.now();
    const res = await this.#db.query(
      `UPDATE ${this.#t.runs} SET heartbeat_at = $1, lease_expires_at = $2,
         phase = CASE WHEN phase = 'orphaned' THEN 'running' ELSE phase END
       WHERE name = $3 AND epoch = $4`,
      [now, now + leaseMs, name, epoch],
    );
    const held = (res.rowCount ?? 0) > 0;
    if (!held) this.#buffer.claims.lost(name);
    return held;
  }

  async markOrphaned(name: string, epoch: number): Promise<boolean> {
    await this.#beforeRead();
    const res = await this.#db.query(
      `UPDATE ${this.#t.runs} SET phase = 'orphaned' WHERE name = $1 AND phase = 'running' AND epoch = $2`,
      [name, epoch],
    );
    return (res.rowCount ?? 0) > 0;
  }

  updateRun(name: string, update: RunUpdate): void {
    this.#check();
    this.#buffer.updateRun(name, update);
  }

  putAction(action: ActionWrite): void {
    this.#check();
    this.#buffer.putAction(action);
  }

  putAttempt(attempt: AttemptRecord): void {
    this.#check();
    this.#buffer.putAttempt(attempt);
  }

  appendLogs(lines: readonly LogLine[]): void {
    this.#check();
    this.#buffer.appendLogs(lines);
  }

  putCacheEntry(entry: CacheEntry): void {
    this.#check();
    this.#buffer.putCacheEntry(entry);
  }

  putMapTotal(total: MapTotal): void {
    this.#check();
    this.#buffer.putMapTotal(total);
  }

  /**
   * Resolves once every write made before the call is committed: waits for the commit in flight, then commits
   * what is pending.
   *
   * @throws `RuntimeSystemError` (code `'StoreWriteError'`, `cause` the driver's error) when the commit
   * fails; the writes stay pending and are retried.
   */
  async flush(): Promise<void> {
    await this.#usable();
    return this.#buffer.flush();
  }

  /**
   * Group commit: resolves with the next commit that includes every write made before the call. The commit
   * starts on the next turn of the event loop (or when the commit in flight ends), so that every caller waiting
   * meanwhile shares it.
   */
  durable(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreClosedError(this.description));
    return this.#buffer.durable();
  }

  async getRun(name: string): Promise<RunRecord | undefined> {
    await this.#beforeRead();
    const res = await this.#db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM ${this.#t.runs} WHERE name = $1`, [name]);
    const row = res.rows[0];
    return row === undefined ? undefined : runFromRow(row);
  }

  async getRunInputs(name: string): Promise<string | undefined> {
    await this.#beforeRead();
    const res = await this.#db.query<{ inputs: string }>(`SELECT inputs FROM ${this.#t.runs} WHERE name = $1`, [name]);
    return res.rows[0]?.inputs;
  }

  async listRuns(query: ListRunsQuery = {}): Promise<RunRecord[]> {
    const { offset, limit } = pageOf(query, 50);
    await this.#beforeRead();
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.phase !== undefined) {
      params.push(query.phase);
      where.push(`phase = $${params.length}`);
    }
    if (query.taskName !== undefined) {
      params.push(query.taskName);
      where.push(`task_name = $${params.length}`);
    }
    params.push(sqlLimit(limit), offset);
    const res = await this.#db.query<RunRow>(
      `SELECT ${RUN_COLUMNS} FROM ${this.#t.runs} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at DESC, name DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return res.rows.map(runFromRow);
  }

  async getAction(runName: string, actionName: string): Promise<ActionRecord | undefined> {
    await this.#beforeReadOf(runName, [actionName]);
    const row = await this.#getActionRow(this.#db, runName, actionName);
    return row === undefined ? undefined : actionFromRow(row);
  }

  async getActionIO(runName: string, actionName: string): Promise<ActionIO | undefined> {
    await this.#beforeReadOf(runName, [actionName]);
    const res = await this.#db.query<ActionIO>(
      `SELECT inputs, outputs FROM ${this.#t.actions} WHERE run_name = $1 AND name = $2`,
      [runName, actionName],
    );
    const row = res.rows[0];
    return row === undefined ? undefined : { inputs: row.inputs, outputs: row.outputs };
  }

  async listActions(runName: string, query: ListActionsQuery = {}): Promise<ActionRecord[]> {
    const { offset, limit } = pageOf(query, Infinity);
    checkActionFilters(query);
    await this.#beforeRead();
    const params: unknown[] = [runName];
    const where = ['run_name = $1'];
    const nullable = (column: string, value: string | null): void => {
      if (value === null) {
        where.push(`${column} IS NULL`);
      } else {
        params.push(value);
        where.push(`${column} = $${params.length}`);
      }
    };
    if (query.parentName !== undefined) nullable('parent_name', query.parentName);
    if (query.group !== undefined) nullable('grp', query.group);
    if (query.phase !== undefined) {
      params.push(query.phase);
      where.push(`phase = $${params.length}`);
    }
    if (query.failed === true) where.push(`phase IN ${FAILED_PHASES_SQL}`);
    if (query.itemIndex !== undefined) {
      params.push(query.itemIndex);
      where.push(`item_index = $${params.length}`);
    }
    if (query.cause !== undefined) {
      params.push(query.cause.code, query.cause.pattern);
      where.push(`cause_code = $${params.length - 1} AND cause_pattern = $${params.length}`);
    }
    if (query.after !== undefined) {
      params.push(query.after);
      where.push(
        `seq > coalesce((SELECT seq FROM ${this.#t.actions} WHERE run_name = $1 AND name = $${params.length}), ` +
          `9223372036854775807)`,
      );
    }
    if (query.text !== undefined) {
      // strpos of lower-cased texts: a substring test with no LIKE wildcards to escape. The error is JSON text.
      params.push(query.text.toLowerCase());
      const p = `$${params.length}`;
      where.push(`(strpos(lower(inputs), ${p}) > 0 OR strpos(lower(error::json ->> 'message'), ${p}) > 0)`);
    }
    params.push(sqlLimit(limit), offset);
    const res = await this.#db.query<ActionRow>(
      `SELECT ${ACTION_COLUMNS} FROM ${this.#t.actions} WHERE ${where.join(' AND ')}
       ORDER BY seq LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return res.rows.map(actionFromRow);
  }

  async countActions(runName: string): Promise<ActionCounts> {
    await this.#beforeRead();
    const res = await this.#db.query<ActionCounts>(
      `SELECT ${COUNT_COLUMNS} FROM ${this.#t.actions} WHERE run_name = $1`,
      [runName],
    );
    return { ...(res.rows[0] as ActionCounts) };
  }

  async listGroups(runName: string): Promise<GroupSummary[]> {
    await this.#beforeRead();
    const res = await this.#db.query<GroupRow>(
      `SELECT g.*, (SELECT sum(total)::bigint FROM ${this.#t.mapTotals} m
           WHERE m.run_name = $1 AND m.parent_name = g.parent_name AND m.grp = g.grp) AS expected
       FROM (SELECT parent_name, grp, ${COUNT_COLUMNS},
           min(started_at) AS started_at, max(ended_at) AS ended_at, min(seq) AS first
         FROM ${this.#t.actions} WHERE run_name = $1 AND grp IS NOT NULL AND parent_name IS NOT NULL
         GROUP BY parent_name, grp) g ORDER BY g.first`,
      [runName],
    );
    return res.rows.map(groupFromRow);
  }

  async listCauses(runName: string, query: ListCausesQuery): Promise<FailureCause[]> {
    checkCausesQuery(query);
    await this.#beforeRead();
    // Over actions_by_cause (the failed rows of the fan-out only); the example is the first member of each cause.
    const res = await this.#db.query<CauseRow>(
      `SELECT c.code, c.pattern, c.count, a.name AS example
       FROM (SELECT cause_code AS code, cause_pattern AS pattern, count(*) AS count, min(seq) AS first
         FROM ${this.#t.actions}
         WHERE run_name = $1 AND parent_name = $2 AND grp = $3 AND cause_code IS NOT NULL
         GROUP BY cause_code, cause_pattern) c
       JOIN ${this.#t.actions} a ON a.run_name = $1 AND a.seq = c.first
       ORDER BY c.count DESC, c.first`,
      [runName, query.parentName, query.group],
    );
    return res.rows.map(causeFromRow);
  }

  async listAttempts(runName: string, actionName: string): Promise<AttemptRecord[]> {
    await this.#beforeRead();
    const res = await this.#db.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM ${this.#t.attempts}
       WHERE run_name = $1 AND action_name = $2 ORDER BY attempt`,
      [runName, actionName],
    );
    if (res.rows.length === 0) {
      const found = await this.#db.query<ActionRow & { worker: string | null }>(
        `SELECT ${ACTION_COLUMNS}, worker FROM ${this.#t.actions} WHERE run_name = $1 AND name = $2`,
        [runName, actionName],
      );
      const action = found.rows[0];
      const first = action === undefined ? undefined : impliedFirstAttempt(actionFromRow(action), action.worker);
      return first === undefined ? [] : [first];
    }
    return res.rows.map(attemptFromRow);
  }

  async listLogs(runName: string, actionName?: string, query: ListLogsQuery = {}): Promise<LogLine[]> {
    const tail = checkTail(query.tail);
    await this.#beforeRead();
    const where = actionName === undefined ? 'run_name = $1' : 'run_name = $1 AND action_name = $2';
    const params: unknown[] = actionName === undefined ? [runName] : [runName, actionName];
    const columns = 'id, run_name, action_name, attempt, at, stream, line';
    let sql = `SELECT ${columns} FROM ${this.#t.logs} WHERE ${where} ORDER BY id`;
    if (tail !== undefined) {
      params.push(tail);
      sql = `SELECT * FROM (SELECT ${columns} FROM ${this.#t.logs} WHERE ${where} ORDER BY id DESC
        LIMIT $${params.length}) t ORDER BY id`;
    }
    const res = await this.#db.query<LogRow>(sql, params);
    return res.rows.map(logFromRow);
  }

  async listRunLogs(runName: string, query: RunLogsQuery = {}): Promise<RunLogLine[]> {
    const { afterSeq, beforeSeq, limit } = runLogsPage(query);
    await this.#beforeRead();
    // One range of logs_by_run (run_name, id); the join reads one actions row by its primary key per line.
    const select = `SELECT l.id, l.run_name, l.action_name, l.attempt, l.at, l.stream, l.line, a.short_name, a.item_index
       FROM ${this.#t.logs} l LEFT JOIN ${this.#t.actions} a ON a.run_name = l.run_name AND a.name = l.action_name`;
    const res =
      beforeSeq === undefined
        ? await this.#db.query<RunLogRow>(`${select} WHERE l.run_name = $1 AND l.id > $2 ORDER BY l.id LIMIT $3`, [
            runName,
            afterSeq,
            limit,
          ])
        : await this.#db.query<RunLogRow>(
            `SELECT * FROM (${select} WHERE l.run_name = $1 AND l.id > $2 AND l.id < $3 ORDER BY l.id DESC LIMIT $4) p
             ORDER BY id`,
            [runName, afterSeq, beforeSeq, limit],
          );
    return res.rows.map(runLogFromRow);
  }

  async countLogs(runName: string, actionName?: string): Promise<number> {
    await this.#beforeRead();
    const res =
      actionName === undefined
        ? await this.#db.query<{ n: number }>(`SELECT count(*) AS n FROM ${this.#t.logs} WHERE run_name = $1`, [
            runName,
          ])
        : await this.#db.query<{ n: number }>(
            `SELECT count(*) AS n FROM ${this.#t.logs} WHERE run_name = $1 AND action_name = $2`,
            [runName, actionName],
          );
    return res.rows[0]?.n ?? 0;
  }

  async getCacheEntry(key: string): Promise<CacheEntry | undefined> {
    // On the hot path of every cached call: answer from the pending entries (or those being committed) or the
    // table, without committing unrelated pending writes first.
    await this.#usable();
    const pending = this.#buffer.pendingCacheEntry(key);
    if (pending !== undefined) return { ...pending };
    const res = await this.#db.query<CacheRow>(
      `SELECT key, task_name, created_at, run_name, action_name, outputs FROM ${this.#t.cacheEntries} WHERE key = $1`,
      [key],
    );
    const r = res.rows[0];
    return r === undefined ? undefined : cacheEntryFromRow(r);
  }

  async requestAbort(runName: string, reason: string, actionName?: string): Promise<void> {
    await this.#beforeRead();
    // Under a transaction-level advisory lock, so that requests commit in the order of their sequence numbers:
    // a reader polling with the highest seq it saw never skips one that committed late.
    const inserted = await this.#transaction(async (exec) => {
      await exec('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [ABORT_LOCK, this.schema]);
      const res = await exec(
        `INSERT INTO ${this.#t.abortRequests} (run_name, action_name, reason, run_epoch, requested_at)
         SELECT name, $1, $2, epoch, $3 FROM ${this.#t.runs} WHERE name = $4`,
        [actionName ?? WHOLE_RUN, reason, Date.now(), runName],
      );
      return res.rowCount;
    });
    if (inserted === 0) throw new RangeError(`requestAbort: no run named ${runName}`);
  }

  /**
   * The sweeper's lock is a transaction-level advisory lock (`pg_try_advisory_xact_lock`), taken in the one
   * transaction that the sweep's reads run in: it goes with the transaction's end whatever happens (a sweep that
   * throws, a process that dies, a session that the server ends after 10 s idle in the transaction). A
   * session-level lock would belong to one pooled connection: released on another, it would stay held, and a
   * connection handed back to the pool would carry it to whoever used it next.
   */
  async sweep<T extends SweepOutcome>(
    owner: string,
    sweep: (session: SweepSession) => Promise<T>,
  ): Promise<T | undefined> {
    await this.#usable();
    const t = this.#t;
    return this.#transaction(async (exec) => {
      const locked = await exec('SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2)) AS locked', [
        SWEEP_LOCK,
        this.schema,
      ]);
      if ((locked.rows[0] as { locked: boolean } | undefined)?.locked !== true) return undefined;
      // Taken once the lock is held (a statement of its own: the order within one statement is not defined).
      const began = (await exec(`SELECT nextval('${t.sweepEvents}') AS seq`)).rows[0] as { seq: number };
      const startedAt = Date.now();
      const session: SweepSession = {
        candidates: async ({ enqueuedBefore, after, limit }) => {
          const res = await exec(
            `SELECT a.run_name, a.name, a.task_name, a.inputs_hash, a.job, a.seq
             FROM (SELECT name FROM ${t.runs} WHERE phase NOT IN ${TERMINAL_ACTION_PHASES_SQL} AND mode = 'remote') r
             JOIN ${t.actions} a ON a.run_name = r.name
             WHERE a.phase IN ('queued', 'running') AND a.job IS NOT NULL AND a.enqueued_at < $1
               AND (a.run_name, a.seq) > ($2, $3)
             ORDER BY a.run_name, a.seq LIMIT $4`,
            [enqueuedBefore, after?.runName ?? '', after?.seq ?? -1, limit],
          );
          const rows = res.rows as SweepCandidateRow[];
          const last = rows[rows.length - 1];
          return {
            candidates: rows.map((r) => ({
              runName: r.run_name,
              actionName: r.name,
              taskName: r.task_name,
              inputsHash: r.inputs_hash,
              job: r.job,
            })),
            next: last === undefined || rows.length < limit ? null : { runName: last.run_name, seq: last.seq },
          };
        },
        stillUnfinished: async (runName, actionNames) => {
          const res = await exec(
            `SELECT name FROM ${t.actions} WHERE run_name = $1 AND name = ANY($2::text[])
               AND phase IN ('queued', 'running')`,
            [runName, actionNames],
          );
          return new Set((res.rows as { name: string }[]).map((r) => r.name));
        },
      };
      const outcome = await sweep(session);
      await exec(
        `INSERT INTO ${t.sweeps} (began_seq, ended_seq, owner, started_at, ended_at, candidates, requeued)
         VALUES ($1, nextval('${t.sweepEvents}'), $2, $3, $4, $5, $6)`,
        [began.seq, owner, startedAt, Date.now(), outcome.candidates, JSON.stringify(outcome.requeued)],
      );
      await exec(
        `DELETE FROM ${t.sweeps} WHERE began_seq <= (
           SELECT began_seq FROM ${t.sweeps} ORDER BY began_seq DESC OFFSET $1 LIMIT 1)`,
        [SWEEPS_KEPT],
      );
      return outcome;
    });
  }

  async listSweeps(limit = SWEEPS_KEPT): Promise<SweepRecord[]> {
    await this.#usable();
    const t = this.#t;
    const res = await this.#db.query<SweepRow>(
      `SELECT * FROM (SELECT began_seq, ended_seq, owner, started_at, ended_at, candidates, requeued
         FROM ${t.sweeps} ORDER BY began_seq DESC LIMIT $1) s ORDER BY began_seq`,
      [sqlLimit(limit)],
    );
    return res.rows.map((r) => ({
      owner: r.owner,
      beganSeq: r.began_seq,
      endedSeq: r.ended_seq,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      candidates: r.candidates,
      requeued: JSON.parse(r.requeued) as string[],
    }));
  }

  async listAbortRequests(runNames: readonly string[], afterSeq = 0): Promise<AbortRequest[]> {
    await this.#usable();
    if (runNames.length === 0) return [];
    const res = await this.#db.query<AbortRequestRow>(
      `SELECT ${ABORT_REQUEST_COLUMNS} FROM ${this.#t.abortRequests}
       WHERE run_name = ANY($1::text[]) AND seq > $2 ORDER BY seq`,
      [[...runNames], afterSeq],
    );
    return res.rows.map(abortRequestFromRow);
  }

  async endedAmong(
    runName: string,
    actionNames: readonly string[],
    options: EndedAmongOptions = {},
  ): Promise<EndedAction[]> {
    await this.#beforeReadOf(runName, actionNames);
    if (actionNames.length === 0) return [];
    const withOutputs = options.withOutputs === true;
    // One query whatever the number of names: they travel as one array parameter.
    const res = await this.#db.query<EndedActionRow>(
      `SELECT ${ACTION_COLUMNS}${withOutputs ? ', outputs' : ''} FROM ${this.#t.actions}
       WHERE run_name = $1 AND name = ANY($2::text[]) AND phase IN ${TERMINAL_ACTION_PHASES_SQL} ORDER BY seq`,
      [runName, [...actionNames]],
    );
    return res.rows.map((r) => (withOutputs ? { ...actionFromRow(r), outputs: r.outputs ?? null } : actionFromRow(r)));
  }

  async clearCache(): Promise<number> {
    await this.#beforeRead();
    const res = await this.#db.query(`DELETE FROM ${this.#t.cacheEntries}`);
    return res.rowCount ?? 0;
  }

  /**
   * Commits pending writes and closes the pool. If the commit fails, the promise rejects and the store stays
   * open (nothing is lost; call `close()` again). Closing a closed store does nothing.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closing ??= (async () => {
      await this.#ready.catch(() => undefined);
      if (this.#failure !== undefined) {
        // Nothing was ever written, and the pool is gone: just refuse what was buffered.
        this.#closed = true;
        this.#buffer.close(this.#failure);
        return;
      }
      try {
        await this.flush();
      } catch (e) {
        this.#closing = undefined;
        throw e;
      }
      this.#closed = true;
      this.#buffer.close();
      await this.#db.end();
    })();
    return this.#closing;
  }

  #check(): void {
    if (this.#closed) throw new StoreClosedError(this.description);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Open and connected: waits for readiness (rejecting with the reason it failed). */
  async #usable(): Promise<void> {
    this.#check();
    await this.#ready;
    this.#check();
  }

  /** Read-your-writes: a read commits what is pending (and waits for the commit in flight) first. */
  async #beforeRead(): Promise<void> {
    await this.#usable();
    if (this.#buffer.busy) await this.#buffer.flush();
  }

  /**
   * Read-your-writes for a read of some actions' rows only: it commits first only when a write of one of them is
   * pending or being committed. Reads of other rows do not wait behind this instance's commits (a worker reads
   * the inputs and the children of many actions while their siblings' writes commit).
   */
  async #beforeReadOf(runName: string, actionNames: readonly string[]): Promise<void> {
    await this.#usable();
    if (this.#buffer.holdsActions(runName, actionNames)) await this.#buffer.flush();
  }

  async #getActionRow(db: Queryable, runName: string, actionName: string): Promise<ActionRow | undefined> {
    const res = await db.query<ActionRow>(
      `SELECT ${ACTION_COLUMNS} FROM ${this.#t.actions} WHERE run_name = $1 AND name = $2`,
      [runName, actionName],
    );
    return res.rows[0];
  }

  /**
   * One commit. A batch of action rows only (the steady state of a fan-out) is one statement, so one round trip:
   * it locks the claimed runs, drops the rows of those another process took over, and upserts the rest. Any
   * other batch is one transaction of one multi-row statement per table, the lock sent with its `BEGIN`.
   */
  async #write(batch: WriteBatch): Promise<void> {
    await this.#ready;
    const fenced = this.#buffer.claims.any;
    if (fenced) this.#buffer.fence(batch, new Map()); // the runs lost before: their writes go nowhere
    const claimed = fenced ? this.#buffer.claims.claimedIn(batch) : [];
    if (onlyActions(batch) && batch.rows <= ROWS_PER_STATEMENT) {
      const epochs = claimed.map((run) => this.#buffer.claims.epochOf(run));
      this.#commitStatements++;
      const res = await this.#db.query({
        name: preparedName(this.#sql.fencedActionsUpsert),
        text: this.#sql.fencedActionsUpsert,
        values: [...this.#actionColumns(batch), claimed, epochs],
      });
      if (fenced) this.#fence(batch, res.rows as { name: string; epoch: number }[]);
      return;
    }
    const lockClaimed =
      claimed.length === 0
        ? undefined
        : (literal: (text: string) => string): string =>
            `SELECT name, epoch FROM ${this.#t.runs} WHERE name IN (${claimed.map(literal).join(', ')})
             ORDER BY name FOR UPDATE`;
    await this.#transaction(
      async (exec, locked) => {
        if (fenced) this.#fence(batch, (locked?.rows ?? []) as { name: string; epoch: number }[]);
        await this.#writeRunUpdates(exec, batch);
        await this.#writeActions(exec, batch);
        await this.#writeAttempts(exec, batch);
        await this.#writeLogs(exec, batch);
        await this.#writeMapTotals(exec, batch);
        await this.#writeCacheEntries(exec, batch);
      },
      true,
      lockClaimed,
    );
  }

  /**
   * Runs `body` in one transaction on one pooled connection: committed when it resolves, rolled back when it
   * throws (a connection whose rollback failed is discarded). `counted`: its statements count in
   * `stats.commitStatements`, `BEGIN` and `COMMIT` included. `opening`: a statement sent with the `BEGIN`, in
   * the same round trip (so with its values as literals, quoted by the `literal` it is given); `body` receives
   * its result.
   */
  async #transaction<T>(
    body: (exec: Exec, opened: pg.QueryResult | undefined) => Promise<T>,
    counted = false,
    opening?: (literal: (text: string) => string) => string,
  ): Promise<T> {
    const client = await this.#db.connect();
    let broken: Error | undefined;
    const exec = (sql: string, params?: unknown[]): Promise<pg.QueryResult> => {
      if (counted) this.#commitStatements++;
      // A statement with parameters is prepared once per connection (by a name derived from its text), so
      // the server parses and plans each commit's statements once, not on every commit.
      return params === undefined
        ? client.query(sql)
        : client.query({ name: preparedName(sql), text: sql, values: params });
    };
    try {
      let opened: pg.QueryResult | undefined;
      if (opening === undefined) {
        await exec('BEGIN');
      } else {
        if (counted) this.#commitStatements++;
        const results = (await client.query(
          `BEGIN; ${opening((text) => client.escapeLiteral(text))}`,
        )) as unknown as pg.QueryResult[];
        opened = results[results.length - 1];
      }
      const result = await body(exec, opened);
      await exec('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError as Error;
      });
      throw e;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Given the rows of the claimed runs that the commit locked (in name order, so two committers never deadlock
   * on them): marks as lost the runs whose epoch another process has raised since, and drops their writes from
   * `batch`, so that a process that lost a run can change nothing in it.
   */
  #fence(batch: WriteBatch, locked: readonly { name: string; epoch: number }[]): void {
    const current = new Map<string, number>();
    for (const row of locked) current.set(row.name, row.epoch);
    this.#buffer.fence(batch, current);
  }

  async #writeRunUpdates(exec: Exec, batch: WriteBatch): Promise<void> {
    if (batch.runUpdates.size === 0) return;
    const cols: unknown[][] = [[], [], [], [], [], [], [], [], [], [], []];
    for (const [name, u] of batch.runUpdates) {
      const values = [
        name,
        u.phase !== undefined,
        u.phase ?? null,
        u.startedAt !== undefined,
        u.startedAt ?? null,
        u.endedAt !== undefined,
        u.endedAt ?? null,
        u.error !== undefined,
        u.error === undefined ? null : errorJson(u.error),
        u.owner !== undefined,
        u.owner ?? null,
      ];
      values.forEach((v, i) => cols[i]?.push(v));
    }
    const set = (column: string, flag: string): string =>
      `${column} = CASE WHEN u.${flag} THEN u.${column} ELSE r.${column} END`;
    await execRows(
      exec,
      `UPDATE ${this.#t.runs} AS r SET ${set('phase', 'set_phase')}, ${set('started_at', 'set_started')},
         ${set('ended_at', 'set_ended')}, ${set('error', 'set_error')}, ${set('owner', 'set_owner')}
       FROM unnest($1::text[], $2::boolean[], $3::text[], $4::boolean[], $5::bigint[], $6::boolean[], $7::bigint[],
         $8::boolean[], $9::text[], $10::boolean[], $11::text[])
         AS u(name, set_phase, phase, set_started, started_at, set_ended, ended_at, set_error, error, set_owner, owner)
       WHERE r.name = u.name`,
      cols,
    );
  }

  async #writeActions(exec: Exec, batch: WriteBatch): Promise<void> {
    if (batch.actions.size === 0) return;
    await execRows(exec, this.#sql.actionsUpsert, this.#actionColumns(batch));
  }

  /**
   * The {@link ACTION_UPSERT_COLUMNS} column arrays of the action rows of `batch`, in the order of `$1`–`$22` of
   * {@link CommitStatements.actionsUpsert}.
   */
  #actionColumns(batch: WriteBatch): unknown[][] {
    const cols: unknown[][] = Array.from({ length: ACTION_UPSERT_COLUMNS }, () => []);
    for (const [runName, run] of batch.actions) {
      const runEpoch = this.#buffer.claims.epochOf(runName) ?? 0;
      for (const a of run.values()) {
        // Nearly every write is of an action without an error: its cause is two NULLs.
        const cause = a.error === null ? null : causeOf(a);
        const values = [
          a.runName,
          a.name,
          a.parentName,
          a.taskName,
          a.shortName,
          a.group,
          a.phase,
          a.cacheHit,
          a.attempts,
          a.startedAt,
          a.endedAt,
          errorJson(a.error),
          a.epoch ?? runEpoch,
          a.inputsHash ?? null,
          a.inputs ?? null,
          a.outputs ?? null,
          a.worker ?? null,
          a.job ?? null,
          a.enqueuedAt ?? null,
          a.itemIndex ?? null,
          cause?.code ?? null,
          cause?.pattern ?? null,
        ];
        values.forEach((v, i) => cols[i]?.push(v));
      }
    }
    return cols;
  }

  async #writeAttempts(exec: Exec, batch: WriteBatch): Promise<void> {
    if (batch.attempts.size === 0) return;
    const cols: unknown[][] = Array.from({ length: 8 }, () => []);
    batch.forEachAttempt((t) => {
      const values = [
        t.runName,
        t.actionName,
        t.attempt,
        t.phase,
        t.startedAt,
        t.endedAt,
        errorJson(t.error),
        t.worker ?? null,
      ];
      values.forEach((v, i) => cols[i]?.push(v));
    });
    await execRows(
      exec,
      `INSERT INTO ${this.#t.attempts} (run_name, action_name, attempt, phase, started_at, ended_at, error, worker)
       SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
         $8::text[])
       ON CONFLICT (run_name, action_name, attempt) DO UPDATE SET
         phase = excluded.phase, started_at = excluded.started_at, ended_at = excluded.ended_at, error = excluded.error,
         worker = excluded.worker`,
      cols,
    );
  }

  async #writeLogs(exec: Exec, batch: WriteBatch): Promise<void> {
    if (batch.logs.length === 0) return;
    // Lock each run whose lines this commit inserts (in name order, so two commits cannot deadlock) before the ids
    // are drawn, until the commit: a run's lines become visible in id order, and a reader polling listRunLogs
    // after the last id it saw never skips a line committed later with a lower id. The logs are the last
    // statement but two of the commit, so the lock is held for little more than its COMMIT.
    const runs = [...new Set(batch.logs.map((l) => l.runName))].sort();
    await exec('SELECT pg_advisory_xact_lock(hashtext($1), hashtext(r)) FROM unnest($2::text[]) AS r', [
      `${LOGS_LOCK}:${this.schema}`,
      runs,
    ]);
    const cols: unknown[][] = Array.from({ length: 6 }, () => []);
    for (const l of batch.logs) {
      const values = [l.runName, l.actionName, l.attempt, l.at, l.stream, l.line];
      values.forEach((v, i) => cols[i]?.push(v));
    }
    await execRows(
      exec,
      `INSERT INTO ${this.#t.logs} (run_name, action_name, attempt, at, stream, line)
       SELECT u.run_name, u.action_name, u.attempt, u.at, u.stream, u.line
       FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY
         AS u(run_name, action_name, attempt, at, stream, line, ord)
       ORDER BY u.ord`,
      cols,
    );
  }

  async #writeMapTotals(exec: Exec, batch: WriteBatch): Promise<void> {
    if (batch.mapTotals.size === 0) return;
    const cols: unknown[][] = Array.from({ length: 5 }, () => []);
    for (const m of batch.mapTotals.values()) {
      const values = [m.runName, m.parentName, m.group, m.seq, m.total];
      values.forEach((v, i) => cols[i]?.push(v));
    }
    await execRows(
      exec,
      `INSERT INTO ${this.#t.mapTotals} (run_name, parent_name, grp, seq, total)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::bigint[])
       ON CONFLICT (run_name, parent_name, grp, seq) DO UPDATE SET total = excluded.total`,
      cols,
    );
  }

  async #writeCacheEntries(exec: Exec, batch: WriteBatch): Promise<void> {
    if (batch.cacheEntries.size === 0) return;
    const cols: unknown[][] = Array.from({ length: 6 }, () => []);
    for (const c of batch.cacheEntries.values()) {
      const values = [c.key, c.taskName, c.createdAt, c.runName, c.actionName, c.outputs];
      values.forEach((v, i) => cols[i]?.push(v));
    }
    await execRows(
      exec,
      `INSERT INTO ${this.#t.cacheEntries} (key, task_name, created_at, run_name, action_name, outputs)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
       ON CONFLICT (key) DO UPDATE SET
         task_name = excluded.task_name, created_at = excluded.created_at, run_name = excluded.run_name,
         action_name = excluded.action_name, outputs = excluded.outputs`,
      cols,
    );
  }
}

type Exec = (sql: string, params?: unknown[]) => Promise<pg.QueryResult>;

interface SweepCandidateRow {
  run_name: string;
  name: string;
  task_name: string;
  inputs_hash: string | null;
  job: string;
  seq: number;
}

interface SweepRow {
  began_seq: number;
  ended_seq: number;
  owner: string;
  started_at: number;
  ended_at: number;
  candidates: number;
  requeued: string;
}

/** A claim waiting for its batch (see {@link PostgresStore.claimAction}). */
interface PendingClaim {
  readonly runName: string;
  readonly actionName: string;
  readonly owner: string;
  readonly leaseExpiresAt: number;
  readonly resolve: (claimed: ClaimedAction | undefined) => void;
  readonly reject: (error: unknown) => void;
}

/** Claim statements in flight at once; the claims made meanwhile wait and go as one batch. */
const CLAIMS_IN_FLIGHT = 2;

/** The store's tables, qualified with its schema. */
interface Tables {
  readonly runs: string;
  readonly actions: string;
  readonly attempts: string;
  readonly logs: string;
  readonly cacheEntries: string;
  readonly abortRequests: string;
  readonly mapTotals: string;
  readonly sweeps: string;
  /** The sequence of the sweeps' `began_seq` and `ended_seq`. */
  readonly sweepEvents: string;
}

function tables(schema: string): Tables {
  return {
    runs: `${schema}.runs`,
    actions: `${schema}.actions`,
    attempts: `${schema}.attempts`,
    logs: `${schema}.logs`,
    cacheEntries: `${schema}.cache_entries`,
    abortRequests: `${schema}.abort_requests`,
    mapTotals: `${schema}.map_totals`,
    sweeps: `${schema}.sweeps`,
    sweepEvents: `${schema}.sweep_events`,
  };
}

/** The texts of the statements of the hot commit path, built once per store (they name its schema). */
interface CommitStatements {
  /** The upsert of action rows from the column arrays `$1`–`$22` ({@link ACTION_UPSERT_COLUMNS}), with its guard. */
  readonly actionsUpsert: string;
  /**
   * The same in one statement that fences: it locks the runs `$23` (name order), skips the rows of those whose
   * epoch is no longer the one in `$24`, and returns the locked runs' `name, epoch`.
   */
  readonly fencedActionsUpsert: string;
  /**
   * Claims of actions `($1[i], $2[i])` for owners `$3` until `$4`: each non-terminal one becomes `running` with
   * its epoch raised; returns the claimed rows. The rows are locked first, in key order, so that two batches
   * that share actions (duplicate deliveries) cannot deadlock.
   */
  readonly claimActions: string;
  /** The claim of one action `($3, $4)` for owner `$1` until `$2`: a batch of one, without the batch's locking. */
  readonly claimAction: string;
}

/** How many column arrays the action upsert takes (`$1`–`$22`); the fenced form's two arrays follow them. */
const ACTION_UPSERT_COLUMNS = 22;

function commitStatements(t: Tables): CommitStatements {
  // Inputs, their hash and outputs are written once; a later write without them keeps the stored value.
  // parent_name, grp and item_index are not updated: an action's place in the tree is fixed by its first write.
  // The guard: never a write of an older epoch, and a terminal row becomes unfinished again only for a writer
  // of a newer epoch (a recovery that claimed the run re-runs what had failed).
  const upsert = (where: string): string => `INSERT INTO ${t.actions} AS a
         (run_name, name, parent_name, task_name, short_name, grp, phase, cache_hit, attempts, started_at, ended_at,
          error, epoch, inputs_hash, inputs, outputs, worker, job, enqueued_at, item_index, cause_code, cause_pattern)
       SELECT u.run_name, u.name, u.parent_name, u.task_name, u.short_name, u.grp, u.phase, u.cache_hit, u.attempts,
         u.started_at, u.ended_at, u.error, u.epoch, u.inputs_hash, u.inputs, u.outputs, u.worker, u.job,
         u.enqueued_at, u.item_index, u.cause_code, u.cause_pattern
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[],
         $9::integer[], $10::bigint[], $11::bigint[], $12::text[], $13::bigint[], $14::text[], $15::text[],
         $16::text[], $17::text[], $18::text[], $19::bigint[], $20::integer[], $21::text[], $22::text[])
         WITH ORDINALITY
         AS u(run_name, name, parent_name, task_name, short_name, grp, phase, cache_hit, attempts, started_at,
           ended_at, error, epoch, inputs_hash, inputs, outputs, worker, job, enqueued_at, item_index, cause_code,
           cause_pattern, ord)
       ${where}
       ORDER BY u.ord
       ON CONFLICT (run_name, name) DO UPDATE SET
         task_name = excluded.task_name, short_name = excluded.short_name, phase = excluded.phase,
         cache_hit = excluded.cache_hit, attempts = excluded.attempts, started_at = excluded.started_at,
         ended_at = excluded.ended_at, error = excluded.error, epoch = excluded.epoch,
         inputs_hash = coalesce(excluded.inputs_hash, a.inputs_hash),
         inputs = coalesce(excluded.inputs, a.inputs),
         outputs = coalesce(excluded.outputs, a.outputs),
         worker = coalesce(excluded.worker, a.worker),
         job = coalesce(excluded.job, a.job),
         enqueued_at = coalesce(excluded.enqueued_at, a.enqueued_at),
         cause_code = excluded.cause_code, cause_pattern = excluded.cause_pattern
       WHERE ${actionWriteGuard('a')}`;
  // A data-modifying WITH runs to completion whether or not the outer query reads it. The NOT IN reads every
  // locked row before the first row is inserted, so every lock is taken first, in name order.
  const fenced = `WITH locked AS (
         SELECT name, epoch FROM ${t.runs} WHERE name = ANY($23::text[]) ORDER BY name FOR UPDATE
       ), written AS (
         ${upsert(`WHERE u.run_name NOT IN (
           SELECT l.name FROM locked l JOIN unnest($23::text[], $24::bigint[]) AS mine(name, epoch)
             ON mine.name = l.name
           WHERE l.epoch <> mine.epoch)`)}
       )
       SELECT name, epoch FROM locked`;
  const claim = `WITH c AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(c_run, c_name, c_owner, c_lease)
       ), locked AS (
         SELECT a.run_name FROM ${t.actions} a JOIN c ON a.run_name = c.c_run AND a.name = c.c_name
         WHERE a.phase NOT IN ${TERMINAL_ACTION_PHASES_SQL} ORDER BY a.run_name, a.name FOR UPDATE OF a
       )
       UPDATE ${t.actions} SET ${claimActionSet('c.c_owner', 'c.c_lease')}
       FROM c WHERE run_name = c.c_run AND name = c.c_name AND phase NOT IN ${TERMINAL_ACTION_PHASES_SQL}
         AND (SELECT count(*) FROM locked) >= 0
       RETURNING ${CLAIMED_ACTION_COLUMNS}`;
  const claimOne = `UPDATE ${t.actions} SET ${claimActionSet('$1', '$2')}
       WHERE run_name = $3 AND name = $4 AND phase NOT IN ${TERMINAL_ACTION_PHASES_SQL}
       RETURNING ${CLAIMED_ACTION_COLUMNS}`;
  return { actionsUpsert: upsert(''), fencedActionsUpsert: fenced, claimActions: claim, claimAction: claimOne };
}

/**
 * Fills the cause columns of the actions that failed before they existed (once, after the migration that added
 * them), in one statement.
 */
async function fillCauses(client: pg.PoolClient, t: Tables): Promise<void> {
  const res = await client.query<{ seq: string; phase: ActionRecord['phase']; error: string }>(
    `SELECT seq, phase, error FROM ${t.actions}
     WHERE phase IN ${FAILED_PHASES_SQL} AND error IS NOT NULL AND cause_code IS NULL`,
  );
  const cols: [string[], string[], string[]] = [[], [], []];
  for (const r of res.rows) {
    const cause = causeOf({ phase: r.phase, error: errorFromJson(r.error) });
    if (cause === null) continue;
    cols[0].push(r.seq);
    cols[1].push(cause.code);
    cols[2].push(cause.pattern);
  }
  if (cols[0].length === 0) return;
  await client.query(
    `UPDATE ${t.actions} AS a SET cause_code = u.code, cause_pattern = u.pattern
     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(seq, code, pattern) WHERE a.seq = u.seq`,
    cols,
  );
}

/** Whether `batch` holds action rows and nothing else (no run, attempt, log, map total or cache entry). */
function onlyActions(batch: WriteBatch): boolean {
  return (
    batch.actions.size > 0 &&
    batch.runUpdates.size === 0 &&
    batch.attempts.size === 0 &&
    batch.logs.length === 0 &&
    batch.mapTotals.size === 0 &&
    batch.cacheEntries.size === 0
  );
}

/** A Postgres store URL taken apart: what the driver gets, the schema, and the URL to show (no password). */
export interface PostgresUrl {
  readonly connectionString: string;
  readonly schema: string;
  readonly description: string;
  /** `?maxOutageMs=` (see {@link PostgresStoreOptions.maxOutageMs}), when given. */
  readonly maxOutageMs?: number;
}

/**
 * Splits a `postgres://` URL into the driver's connection string (without `schema`), the schema (`?schema=`,
 * default `flyte`, checked) and a description with the password hidden.
 *
 * @throws {@link InitializationError} for a URL that is not `postgres://` or `postgresql://`, or a bad schema name.
 * @example
 * ```ts
 * parsePostgresUrl('postgres://me:pw@db/flyte?schema=team_a');
 * // { connectionString: 'postgres://me:pw@db/flyte', schema: 'team_a',
 * //   description: 'postgres://me:***@db/flyte?schema=team_a' }
 * ```
 */
export function parsePostgresUrl(url: string): PostgresUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL('invalid:');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new InitializationError(
      `a Postgres store URL must look like 'postgres://USER@HOST:PORT/DATABASE?schema=NAME'; received ` +
        `'${hidePasswords(url)}'`,
    );
  }
  const schema = checkSchemaName(parsed.searchParams.get('schema') ?? DEFAULT_SCHEMA);
  parsed.searchParams.delete('schema');
  const outage = parsed.searchParams.get('maxOutageMs');
  parsed.searchParams.delete('maxOutageMs');
  const maxOutageMs = outage === null ? undefined : Number(outage);
  if (outage !== null && !/^\d+$/.test(outage)) {
    throw new InitializationError(
      `the Postgres store URL parameter maxOutageMs must be a whole number of ms >= 0; received '${outage}'`,
    );
  }
  const connectionString = parsed.toString();
  const shown = new URL(connectionString);
  if (shown.password !== '') shown.password = '***';
  shown.searchParams.set('schema', schema);
  return {
    connectionString,
    schema,
    description: shown.toString(),
    ...(maxOutageMs === undefined ? {} : { maxOutageMs }),
  };
}

const COUNT_COLUMNS = `count(*) AS total,
  count(*) FILTER (WHERE phase = 'queued') AS queued,
  count(*) FILTER (WHERE phase = 'running') AS running,
  count(*) FILTER (WHERE phase = 'succeeded') AS succeeded,
  count(*) FILTER (WHERE phase = 'failed') AS failed,
  count(*) FILTER (WHERE phase = 'aborted') AS aborted,
  count(*) FILTER (WHERE phase = 'timed_out') AS timed_out,
  count(*) FILTER (WHERE cache_hit) AS cached`;

/** `LIMIT NULL` is no limit in Postgres. */
function sqlLimit(limit: number): number | null {
  return limit === Infinity ? null : limit;
}

/**
 * Rows per multi-row statement. A commit of a whole fan-out (100 000 actions after a burst) is sent as several
 * statements of the same transaction: the driver serializes a big array parameter at a higher cost per row, and
 * smaller statements bound the parameters held at once (bench/pg-upsert.ts: one 100 000-row statement 5.6 s,
 * ten of 10 000 rows 4.0 s, the driver's serialization 1 659 ms against 555 ms).
 */
const ROWS_PER_STATEMENT = 10_000;

/** Runs `sql` over the column arrays `cols` (one `unnest` parameter each), {@link ROWS_PER_STATEMENT} rows at a time. */
const preparedNames = new Map<string, string>();

/** The prepared-statement name of `sql`: stable for one text, distinct for two (a hash of the text). */
function preparedName(sql: string): string {
  let name = preparedNames.get(sql);
  if (name === undefined) {
    name = `flyte_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`;
    preparedNames.set(sql, name);
  }
  return name;
}

async function execRows(exec: Exec, sql: string, cols: unknown[][]): Promise<void> {
  const rows = cols[0]?.length ?? 0;
  if (rows <= ROWS_PER_STATEMENT) {
    await exec(sql, cols);
    return;
  }
  for (let at = 0; at < rows; at += ROWS_PER_STATEMENT) {
    await exec(
      sql,
      cols.map((column) => column.slice(at, at + ROWS_PER_STATEMENT)),
    );
  }
}

/** SQLSTATEs of a server that is going away or not accepting connections yet (a restart, a failover). */
const SERVER_GOING_AWAY = new Set(['57P01', '57P02', '57P03']);
/** Socket errors of a connection that could not be made or was cut. */
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Whether `err` says the connection to the database failed (it could not be made, or it was cut), rather than
 * the statement: the only failures that {@link PostgresStore} tries again while the database is away.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (SERVER_GOING_AWAY.has(code) || SOCKET_ERRORS.has(code) || code.startsWith('08'))) {
    return true;
  }
  // The driver's own words for a connection that ended under a query, or a pool that could not connect in time.
  return /^Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect/.test(
    err.message,
  );
}
