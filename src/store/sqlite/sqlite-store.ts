/**
 * The embedded default {@link RunStore}: one SQLite file, written with group commit.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ActionCounts, ActionError, ActionRecord, AttemptRecord, LogLine, RunRecord } from '../../types.js';
import {
  RunAlreadyExistsError,
  type AbortRequest,
  type ActionClaim,
  type ClaimedAction,
  type EndedAction,
  type EndedAmongOptions,
  StoreClosedError,
  impliedFirstAttempt,
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
  ABORT_REQUEST_COLUMNS,
  ACTION_COLUMNS,
  ATTEMPT_COLUMNS,
  CLAIMED_ACTION_COLUMNS,
  claimActionSet,
  RUN_COLUMNS,
  FAILED_PHASES_SQL,
  TERMINAL_ACTION_PHASES_SQL,
  WHOLE_RUN,
  causeFromRow,
  errorFromJson,
  type CauseRow,
  abortRequestFromRow,
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
import { Checkpointer } from './checkpointer.js';
import {
  chooseSqliteDriver,
  openConnection,
  type SqlValue,
  type SqliteConnection,
  type SqliteDriverName,
  type SqliteStatement,
} from './driver.js';
import { CAUSES_MIGRATION, applyMigrations } from './migrations.js';
import { causeOf } from '../../internal/error-cause.js';
import { checkPositive, WriteBuffer, type WriteBatch, type WriteBufferStats } from '../write-buffer.js';

/** Options of {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /**
   * How long a write may wait in memory before it is committed: the group-commit window. A longer window
   * coalesces more writes of the same action into one row write; a crash loses at most this much.
   * @default 10
   */
  readonly flushIntervalMs?: number;
  /**
   * When this many rows are pending, a commit starts without waiting for the timer; this bounds the memory held
   * by the buffer. If at most one pending row in ten belongs to an action that is still queued or running, the
   * commit runs at once, inside the write that reached the limit; otherwise on the next turn of the event loop
   * (see {@link SqliteStore} for why).
   * @default 10000
   */
  readonly maxBatch?: number;
  /**
   * How long a commit waits for another process holding the database's write lock before it fails.
   * @default 5000
   */
  readonly busyTimeoutMs?: number;
  /**
   * Called when a commit started by the timer fails. The writes are kept and retried (with a backoff up to 1 s);
   * the next `flush()` rejects with the same kind of error if the problem remains.
   * @default undefined (the failure is only counted in `stats.failedCommits`)
   */
  readonly onBackgroundError?: (error: Error) => void;
  /**
   * The SQLite driver: `'node'` (Node's built-in `node:sqlite`, Node >= 22.13) or `'better-sqlite3'` (the
   * optional dependency). Several connections to one file may use different drivers.
   * @default process.env.FLYTE_SQLITE_DRIVER, else 'node' where this Node has node:sqlite, else 'better-sqlite3'
   */
  readonly driver?: SqliteDriverName;
}

/** Counters of a {@link SqliteStore}, for tests and diagnostics (see {@link WriteBufferStats}). */
export type SqliteStoreStats = WriteBufferStats;

/** WAL pages after which a commit checkpoints by itself, when the checkpoint thread falls behind (~40 MiB). */
const BACKSTOP_CHECKPOINT_PAGES = 10_000;
const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * A {@link RunStore} in one SQLite file (WAL mode, `synchronous=NORMAL`), the default store of local runs.
 *
 * Writes are **group-committed**: `putAction`, `putAttempt`, `appendLogs`, `updateRun` and `putCacheEntry` only
 * enqueue. Pending writes to the same action (or attempt, or run) are coalesced in memory, so an action that goes
 * queued → running → succeeded within one window costs one row write. A commit writes every pending row in one
 * transaction with prepared statements; it starts `flushIntervalMs` after the first pending write, when
 * `maxBatch` rows are pending, or when `flush()` is called. Every read commits pending writes first, so reads see
 * every earlier write. A failed commit keeps its writes for the next attempt.
 *
 * A fan-out whose children finish within microtasks never yields to the event loop, so neither the timer nor a
 * commit scheduled for the next turn can run until it is over. Reaching `maxBatch` therefore commits inline,
 * at once, when nearly all pending rows are of finished actions (a bounded `flyte.map`: durable every `maxBatch`
 * rows, and its buffer stays bounded). While most pending rows are of running actions (an unbounded fan-out
 * has started all its children before any finished), committing them would write each of those rows twice,
 * running and then finished: measured at +5 µs per action for a 100 000-child `Promise.all`. Those wait for
 * the next turn of the event loop, or for nine in ten of them to finish.
 *
 * Timers are unref'd: a pending write never keeps the process alive. Call {@link SqliteStore.flushSync} from a
 * `process.on('exit')` handler (or `close()`) to commit what is left.
 *
 * @example
 * ```ts
 * const store = SqliteStore.open('.flyte/flyte.db', { flushIntervalMs: 10 });
 * process.on('exit', () => store.flushSync());
 * store.putAction(action);                 // buffered
 * await store.getAction(run, action.name); // commits, then reads
 * await store.close();
 * ```
 */
export class SqliteStore implements RunStore {
  /** `sqlite:` followed by the absolute path of the database file. */
  readonly description: string;
  /** Absolute path of the database file (or `:memory:`). */
  readonly path: string;
  /** The SQLite driver this store runs on. */
  readonly driver: SqliteDriverName;

  readonly #db: SqliteConnection;
  readonly #buffer: WriteBuffer;
  readonly #s: Statements;
  readonly #commitPending: (batch: WriteBatch) => void;
  readonly #runUpdateStatements = new Map<number, SqliteStatement>();
  readonly #queryStatements = new Map<string, SqliteStatement>();
  /** Checkpoints the WAL on a worker thread; started by the first commit (a store that only reads needs none). */
  #checkpointer: Checkpointer | undefined;
  #closed = false;

  private constructor(db: SqliteConnection, path: string, options: SqliteStoreOptions) {
    this.#db = db;
    this.path = path;
    this.driver = db.driver;
    this.description = `sqlite:${path}`;
    this.#s = prepareStatements(db);
    this.#commitPending = db.transaction((batch: WriteBatch) => this.#writePending(batch));
    this.#buffer = new WriteBuffer({
      description: this.description,
      flushIntervalMs: options.flushIntervalMs,
      maxBatch: options.maxBatch,
      sync: true,
      onBackgroundError: options.onBackgroundError,
      commit: (batch) => {
        this.#commitPending(batch);
        if (this.path !== ':memory:') (this.#checkpointer ??= Checkpointer.start(this.path, db.driver)).committed();
      },
    });
  }

  /**
   * Opens (creating it and its parent directory if needed) the database at `path` and brings its schema up to
   * date. Relative paths are resolved against the current directory; `':memory:'` opens a private in-memory
   * database.
   *
   * @throws RangeError when an option is out of range.
   * @throws {@link InitializationError} when the file was written by a newer flyte-ts, or the driver cannot be
   * used here (`'node'` before Node 22.13, better-sqlite3 not installed); the message says what to do.
   * @example
   * ```ts
   * const store = SqliteStore.open('/tmp/demo/flyte.db');
   * ```
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    checkPositive('flushIntervalMs', options.flushIntervalMs, true);
    checkPositive('maxBatch', options.maxBatch, false);
    checkPositive('busyTimeoutMs', options.busyTimeoutMs, true);
    const inMemory = path === ':memory:';
    const file = inMemory ? path : resolve(path);
    if (!inMemory) mkdirSync(dirname(file), { recursive: true });
    const driver = chooseSqliteDriver(options.driver);
    const db = openConnection(file, driver, { busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA temp_store = MEMORY');
      // Checkpoints run on a worker thread (see checkpointer.ts); this one is the backstop if it falls behind.
      if (!inMemory) db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
      const ran = applyMigrations(db, file);
      if (ran.includes(CAUSES_MIGRATION)) fillCauses(db);
      return new SqliteStore(db, file, options);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Counters since the store was opened. */
  get stats(): SqliteStoreStats {
    return { ...this.#buffer.stats };
  }

  /** Rows waiting to be committed. */
  get pendingWrites(): number {
    return this.#buffer.rows;
  }

  async createRun(run: RunWrite): Promise<void> {
    this.#check();
    this.flushSync();
    const info = this.#s.insertRun.run(
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
    );
    if (info.changes === 0) throw new RunAlreadyExistsError(run.name);
    this.#buffer.claims.claimed(run.name, run.epoch ?? 1);
  }

  async claimAction(runName: string, actionName: string, claim: ActionClaim): Promise<ClaimedAction | undefined> {
    this.#beforeRead();
    const row = this.#query(
      `UPDATE actions SET ${claimActionSet('?', '?')}
       WHERE run_name = ? AND name = ? AND phase NOT IN ${TERMINAL_ACTION_PHASES_SQL}
       RETURNING ${CLAIMED_ACTION_COLUMNS}`,
    ).get(claim.owner, Date.now() + claim.leaseMs, runName, actionName) as ClaimedActionRow | undefined;
    return row === undefined ? undefined : claimedActionFromRow(row);
  }

  async releaseAction(runName: string, actionName: string, epoch: number): Promise<boolean> {
    this.#beforeRead();
    const info = this.#query(
      `UPDATE actions SET owner = NULL
       WHERE run_name = ? AND name = ? AND epoch = ? AND phase NOT IN ${TERMINAL_ACTION_PHASES_SQL}`,
    ).run(runName, actionName, epoch);
    return info.changes > 0;
  }

  async claimRun(name: string, expectedEpoch: number, claim: RunClaim): Promise<RunRecord | undefined> {
    this.#beforeRead();
    const now = Date.now();
    const row = this.#query(
      `UPDATE runs SET phase = 'running', ended_at = NULL, error = NULL, owner = ?, epoch = epoch + 1,
         heartbeat_at = ?, lease_expires_at = ?
       WHERE name = ? AND epoch = ? RETURNING ${RUN_COLUMNS}`,
    ).get(claim.owner, now, now + claim.leaseMs, name, expectedEpoch) as RunRow | undefined;
    if (row === undefined) return undefined;
    this.#buffer.claims.claimed(name, row.epoch);
    return runFromRow(row);
  }

  async renewLease(name: string, epoch: number, leaseMs: number): Promise<boolean> {
    this.#check();
    const now = Date.now();
    const info = this.#query(
      `UPDATE runs SET heartbeat_at = ?, lease_expires_at = ?,
         phase = CASE WHEN phase = 'orphaned' THEN 'running' ELSE phase END
       WHERE name = ? AND epoch = ?`,
    ).run(now, now + leaseMs, name, epoch);
    if (info.changes === 0) this.#buffer.claims.lost(name);
    return info.changes > 0;
  }

  async markOrphaned(name: string, epoch: number): Promise<boolean> {
    this.#beforeRead();
    const info = this.#query(
      `UPDATE runs SET phase = 'orphaned' WHERE name = ? AND phase = 'running' AND epoch = ?`,
    ).run(name, epoch);
    return info.changes > 0;
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

  async flush(): Promise<void> {
    this.#check();
    this.flushSync();
  }

  /**
   * Group commit: the pending writes are committed on the next turn of the event loop (or sooner, when the
   * buffer fills), together with whatever else is written until then; every caller waiting meanwhile shares that
   * one commit. A chain of awaited children therefore commits once per step, and a fan-out once per batch of
   * children that finish in the same turn.
   */
  durable(): Promise<void> {
    return this.#buffer.durable();
  }

  /**
   * Commits every pending write now, synchronously: safe to call from a `process.on('exit')` handler. Does
   * nothing on a closed store or when nothing is pending.
   *
   * @throws `RuntimeSystemError` (code `'StoreWriteError'`, `cause` the SQLite error) when the commit fails; the
   * writes stay pending.
   */
  flushSync(): void {
    if (this.#closed) return;
    this.#buffer.flushSync();
  }

  async getRun(name: string): Promise<RunRecord | undefined> {
    this.#beforeRead();
    const row = this.#s.getRun.get(name) as RunRow | undefined;
    return row === undefined ? undefined : runFromRow(row);
  }

  async requestAbort(runName: string, reason: string, actionName?: string): Promise<void> {
    this.#beforeRead();
    // One statement under SQLite's write lock: sequence numbers are committed in order.
    const info = this.#query(
      `INSERT INTO abort_requests (run_name, action_name, reason, run_epoch, requested_at)
       SELECT name, ?, ?, epoch, ? FROM runs WHERE name = ?`,
    ).run(actionName ?? WHOLE_RUN, reason, Date.now(), runName);
    if (info.changes === 0) throw new RangeError(`requestAbort: no run named ${runName}`);
  }

  async listAbortRequests(runNames: readonly string[], afterSeq = 0): Promise<AbortRequest[]> {
    this.#check();
    if (runNames.length === 0) return [];
    const rows = this.#query(
      `SELECT ${ABORT_REQUEST_COLUMNS} FROM abort_requests
       WHERE run_name IN (SELECT value FROM json_each(?)) AND seq > ? ORDER BY seq`,
    ).all(JSON.stringify(runNames), afterSeq) as AbortRequestRow[];
    return rows.map(abortRequestFromRow);
  }

  async endedAmong(
    runName: string,
    actionNames: readonly string[],
    options: EndedAmongOptions = {},
  ): Promise<EndedAction[]> {
    this.#beforeRead();
    if (actionNames.length === 0) return [];
    const withOutputs = options.withOutputs === true;
    // One query whatever the number of names: they travel as one JSON array.
    const rows = this.#query(
      `SELECT ${ACTION_COLUMNS}${withOutputs ? ', outputs' : ''} FROM actions
       WHERE run_name = ? AND name IN (SELECT value FROM json_each(?)) AND phase IN ${TERMINAL_ACTION_PHASES_SQL}
       ORDER BY seq`,
    ).all(runName, JSON.stringify(actionNames)) as EndedActionRow[];
    return rows.map((r) => (withOutputs ? { ...actionFromRow(r), outputs: r.outputs ?? null } : actionFromRow(r)));
  }

  async getRunInputs(name: string): Promise<string | undefined> {
    this.#beforeRead();
    return this.#s.getRunInputs.get(name) as string | undefined;
  }

  async listRuns(query: ListRunsQuery = {}): Promise<RunRecord[]> {
    const { offset, limit } = pageOf(query, 50);
    this.#beforeRead();
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (query.phase !== undefined) {
      where.push('phase = ?');
      params.push(query.phase);
    }
    if (query.taskName !== undefined) {
      where.push('task_name = ?');
      params.push(query.taskName);
    }
    const sql =
      `SELECT ${RUN_COLUMNS} FROM runs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ` +
      'ORDER BY created_at DESC, name DESC LIMIT ? OFFSET ?';
    const rows = this.#query(sql).all(...params, sqlLimit(limit), offset) as RunRow[];
    return rows.map(runFromRow);
  }

  async getAction(runName: string, actionName: string): Promise<ActionRecord | undefined> {
    this.#beforeRead();
    const row = this.#s.getAction.get(runName, actionName) as ActionRow | undefined;
    return row === undefined ? undefined : actionFromRow(row);
  }

  async getActionIO(runName: string, actionName: string): Promise<ActionIO | undefined> {
    this.#beforeRead();
    const row = this.#s.getActionIO.get(runName, actionName) as ActionIO | undefined;
    // A copy: rows of node:sqlite have no prototype.
    return row === undefined ? undefined : { inputs: row.inputs, outputs: row.outputs };
  }

  async listActions(runName: string, query: ListActionsQuery = {}): Promise<ActionRecord[]> {
    const { offset, limit } = pageOf(query, Infinity);
    checkActionFilters(query);
    this.#beforeRead();
    const where = ['run_name = ?'];
    const params: SqlValue[] = [runName];
    if (query.parentName !== undefined) {
      // `IS` matches NULL (the root) as well as a name, and still uses the (run_name, parent_name) index.
      where.push('parent_name IS ?');
      params.push(query.parentName);
    }
    if (query.group !== undefined) {
      // `IS` matches NULL (no group) as well as a name.
      where.push('grp IS ?');
      params.push(query.group);
    }
    if (query.phase !== undefined) {
      where.push('phase = ?');
      params.push(query.phase);
    }
    if (query.failed === true) where.push(`phase IN ${FAILED_PHASES_SQL}`);
    if (query.itemIndex !== undefined) {
      where.push('item_index = ?');
      params.push(query.itemIndex);
    }
    if (query.cause !== undefined) {
      where.push('cause_code = ? AND cause_pattern = ?');
      params.push(query.cause.code, query.cause.pattern);
    }
    if (query.after !== undefined) {
      where.push('seq > coalesce((SELECT seq FROM actions WHERE run_name = ? AND name = ?), 9223372036854775807)');
      params.push(runName, query.after);
    }
    if (query.text !== undefined) {
      // instr of lower-cased texts: a substring test with no LIKE wildcards to escape.
      where.push(`(instr(lower(inputs), ?) > 0 OR instr(lower(json_extract(error, '$.message')), ?) > 0)`);
      const text = query.text.toLowerCase();
      params.push(text, text);
    }
    const sql = `SELECT ${ACTION_COLUMNS} FROM actions WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ? OFFSET ?`;
    const rows = this.#query(sql).all(...params, sqlLimit(limit), offset) as ActionRow[];
    return rows.map(actionFromRow);
  }

  async countActions(runName: string): Promise<ActionCounts> {
    this.#beforeRead();
    const row = this.#s.countActions.get(runName) as ActionCounts;
    return { ...row };
  }

  async listGroups(runName: string): Promise<GroupSummary[]> {
    this.#beforeRead();
    const rows = this.#s.listGroups.all(runName, runName) as GroupRow[];
    return rows.map(groupFromRow);
  }

  async listCauses(runName: string, query: ListCausesQuery): Promise<FailureCause[]> {
    checkCausesQuery(query);
    this.#beforeRead();
    const rows = this.#s.listCauses.all(runName, query.parentName, query.group) as CauseRow[];
    return rows.map(causeFromRow);
  }

  async listAttempts(runName: string, actionName: string): Promise<AttemptRecord[]> {
    this.#beforeRead();
    const rows = this.#s.listAttempts.all(runName, actionName) as AttemptRow[];
    if (rows.length === 0) {
      const action = this.#s.getActionWorker.get(runName, actionName) as
        (ActionRow & { worker: string | null }) | undefined;
      const first = action === undefined ? undefined : impliedFirstAttempt(actionFromRow(action), action.worker);
      return first === undefined ? [] : [first];
    }
    return rows.map(attemptFromRow);
  }

  async listLogs(runName: string, actionName?: string, query: ListLogsQuery = {}): Promise<LogLine[]> {
    const tail = checkTail(query.tail);
    this.#beforeRead();
    const where = actionName === undefined ? 'run_name = ?' : 'run_name = ? AND action_name = ?';
    const params: SqlValue[] = actionName === undefined ? [runName] : [runName, actionName];
    const columns = 'id, run_name, action_name, attempt, at, stream, line';
    const sql =
      tail === undefined
        ? `SELECT ${columns} FROM logs WHERE ${where} ORDER BY id`
        : `SELECT * FROM (SELECT ${columns} FROM logs WHERE ${where} ORDER BY id DESC LIMIT ?) ORDER BY id`;
    const rows = this.#query(sql).all(...params, ...(tail === undefined ? [] : [tail])) as LogRow[];
    return rows.map(logFromRow);
  }

  async listRunLogs(runName: string, query: RunLogsQuery = {}): Promise<RunLogLine[]> {
    const { afterSeq, beforeSeq, limit } = runLogsPage(query);
    this.#beforeRead();
    // One range of logs_by_run (run_name, id); the join reads one actions row by its primary key per line.
    const select = `SELECT l.id, l.run_name, l.action_name, l.attempt, l.at, l.stream, l.line, a.short_name, a.item_index
       FROM logs l LEFT JOIN actions a ON a.run_name = l.run_name AND a.name = l.action_name`;
    const rows = (
      beforeSeq === undefined
        ? this.#query(`${select} WHERE l.run_name = ? AND l.id > ? ORDER BY l.id LIMIT ?`).all(runName, afterSeq, limit)
        : this.#query(
            `SELECT * FROM (${select} WHERE l.run_name = ? AND l.id > ? AND l.id < ? ORDER BY l.id DESC LIMIT ?) ORDER BY id`,
          ).all(runName, afterSeq, beforeSeq, limit)
    ) as RunLogRow[];
    return rows.map(runLogFromRow);
  }

  async countLogs(runName: string, actionName?: string): Promise<number> {
    this.#beforeRead();
    const row = (
      actionName === undefined
        ? this.#query('SELECT count(*) AS n FROM logs WHERE run_name = ?').get(runName)
        : this.#query('SELECT count(*) AS n FROM logs WHERE run_name = ? AND action_name = ?').get(runName, actionName)
    ) as { n: number };
    return row.n;
  }

  async getCacheEntry(key: string): Promise<CacheEntry | undefined> {
    // Cache lookups sit on the hot path of every cached call: answer from the pending entries or the committed
    // table without committing unrelated pending writes first (only cache entries matter to this read).
    this.#check();
    const pending = this.#buffer.pendingCacheEntry(key);
    if (pending !== undefined) return { ...pending };
    const r = this.#s.getCacheEntry.get(key) as CacheRow | undefined;
    return r === undefined ? undefined : cacheEntryFromRow(r);
  }

  async clearCache(): Promise<number> {
    this.#beforeRead();
    return this.#s.clearCache.run().changes;
  }

  /** Resolves at once: a SQLite store is ready when opened (the open is synchronous). */
  ready(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Commits pending writes and closes the database. If the commit fails, the promise rejects and the store stays
   * open (nothing is lost; call `close()` again). Closing a closed store does nothing.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.flushSync();
    this.#closed = true;
    this.#buffer.close();
    this.#db.close();
    await this.#checkpointer?.stop();
  }

  #check(): void {
    if (this.#closed) throw new StoreClosedError(this.description);
  }

  /** Read-your-writes: a read commits what is pending first. */
  #beforeRead(): void {
    this.#check();
    if (this.#buffer.rows > 0) this.flushSync();
  }

  /**
   * Inside the commit's transaction (which holds the write lock): drops the pending writes of the runs this
   * instance drives at an epoch that another process has since raised (see {@link WriteBuffer.fence}).
   */
  #fence(batch: WriteBatch): void {
    const current = new Map<string, number>();
    for (const name of this.#buffer.claims.claimedIn(batch)) {
      const epoch = this.#s.getRunEpoch.get(name) as number | undefined;
      if (epoch !== undefined) current.set(name, epoch);
    }
    this.#buffer.fence(batch, current);
  }

  /** The body of a commit; runs inside one immediate transaction. */
  #writePending(batch: WriteBatch): void {
    const s = this.#s;
    if (this.#buffer.claims.any) this.#fence(batch);
    for (const [name, u] of batch.runUpdates) this.#runUpdateStatement(u).run(...runUpdateParams(u), name);
    for (const [runName, run] of batch.actions) {
      const epoch = this.#buffer.claims.epochOf(runName) ?? 0;
      for (const a of run.values()) this.#writeAction(a, epoch);
    }
    batch.forEachAttempt((t) => this.#writeAttempt(t));
    for (const l of batch.logs) s.insertLog.run(l.runName, l.actionName, l.attempt, l.at, l.stream, l.line);
    for (const m of batch.mapTotals.values()) s.upsertMapTotal.run(m.runName, m.parentName, m.group, m.seq, m.total);
    for (const c of batch.cacheEntries.values()) {
      s.upsertCacheEntry.run(c.key, c.taskName, c.createdAt, c.runName, c.actionName, c.outputs);
    }
  }

  /** Upserts one action; `epoch` is the write's epoch when it names none (this instance's claim on the run). */
  #writeAction(a: ActionWrite, epoch: number): void {
    // Nearly every write is of an action without an error: its cause is two NULLs.
    const cause = a.error === null ? null : causeOf(a);
    this.#s.upsertAction.run(
      a.runName,
      a.name,
      a.parentName,
      a.taskName,
      a.shortName,
      a.group,
      a.itemIndex ?? null,
      a.phase,
      a.cacheHit ? 1 : 0,
      a.attempts,
      a.startedAt,
      a.endedAt,
      a.error === null ? null : JSON.stringify(a.error),
      a.epoch ?? epoch,
      a.inputsHash ?? null,
      a.inputs ?? null,
      a.outputs ?? null,
      a.worker ?? null,
      a.job ?? null,
      a.enqueuedAt ?? null,
      cause?.code ?? null,
      cause?.pattern ?? null,
    );
  }

  #writeAttempt(t: AttemptRecord): void {
    this.#s.upsertAttempt.run(
      t.runName,
      t.actionName,
      t.attempt,
      t.phase,
      t.startedAt,
      t.endedAt,
      t.error === null ? null : JSON.stringify(t.error),
      t.worker ?? null,
    );
  }

  /** An UPDATE of exactly the fields present in `u` (a field set to `null` is written as NULL). */
  #runUpdateStatement(u: RunUpdate): SqliteStatement {
    let mask = 0;
    RUN_UPDATE_FIELDS.forEach(([field], i) => {
      if (u[field] !== undefined) mask |= 1 << i;
    });
    let stmt = this.#runUpdateStatements.get(mask);
    if (stmt === undefined) {
      const sets = RUN_UPDATE_FIELDS.filter((_, i) => (mask & (1 << i)) !== 0).map(([, column]) => `${column} = ?`);
      // An empty update still runs a harmless statement, so the parameters line up.
      const sql = sets.length > 0 ? `UPDATE runs SET ${sets.join(', ')} WHERE name = ?` : 'SELECT ? WHERE 0';
      stmt = this.#db.prepare(sql);
      this.#runUpdateStatements.set(mask, stmt);
    }
    return stmt;
  }

  #query(sql: string): SqliteStatement {
    let stmt = this.#queryStatements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#queryStatements.set(sql, stmt);
    }
    return stmt;
  }
}

const RUN_UPDATE_FIELDS: readonly (readonly [keyof RunUpdate, string])[] = [
  ['phase', 'phase'],
  ['startedAt', 'started_at'],
  ['endedAt', 'ended_at'],
  ['error', 'error'],
  ['owner', 'owner'],
];

function runUpdateParams(u: RunUpdate): SqlValue[] {
  const params: SqlValue[] = [];
  for (const [field] of RUN_UPDATE_FIELDS) {
    const v = u[field];
    if (v === undefined) continue;
    params.push(field === 'error' ? errorJson(v as ActionError | null) : (v as SqlValue));
  }
  return params;
}

const COUNT_COLUMNS = `count(*) AS total,
  count(*) FILTER (WHERE phase = 'queued') AS queued,
  count(*) FILTER (WHERE phase = 'running') AS running,
  count(*) FILTER (WHERE phase = 'succeeded') AS succeeded,
  count(*) FILTER (WHERE phase = 'failed') AS failed,
  count(*) FILTER (WHERE phase = 'aborted') AS aborted,
  count(*) FILTER (WHERE phase = 'timed_out') AS timed_out,
  count(*) FILTER (WHERE cache_hit <> 0) AS cached`;

interface Statements {
  readonly insertRun: SqliteStatement;
  readonly upsertAction: SqliteStatement;
  readonly upsertAttempt: SqliteStatement;
  readonly insertLog: SqliteStatement;
  readonly upsertCacheEntry: SqliteStatement;
  readonly upsertMapTotal: SqliteStatement;
  readonly getRun: SqliteStatement;
  readonly getRunEpoch: SqliteStatement;
  readonly getRunInputs: SqliteStatement;
  readonly getAction: SqliteStatement;
  readonly getActionIO: SqliteStatement;
  readonly countActions: SqliteStatement;
  readonly listGroups: SqliteStatement;
  readonly listCauses: SqliteStatement;
  readonly listAttempts: SqliteStatement;
  readonly getActionWorker: SqliteStatement;
  readonly getCacheEntry: SqliteStatement;
  readonly clearCache: SqliteStatement;
}

function prepareStatements(db: SqliteConnection): Statements {
  return {
    insertRun: db.prepare(`INSERT INTO runs
      (name, task_name, phase, mode, created_at, started_at, ended_at, error, labels, options, module, owner,
       epoch, heartbeat_at, lease_expires_at, inputs)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`),
    // Inputs, their hash and outputs are written once; a later write without them keeps the stored value.
    // parent_name, grp and item_index are not updated: an action's place in the tree is fixed by its first write
    // (its name derives from it), and leaving the indexed columns alone makes an update about 30% cheaper.
    // The guard (see RunStore.putAction): a write of an older epoch, or one that would reopen a terminal action
    // at the same epoch, changes nothing.
    upsertAction: db.prepare(`INSERT INTO actions
      (run_name, name, parent_name, task_name, short_name, grp, item_index, phase, cache_hit, attempts, started_at,
       ended_at, error, epoch, inputs_hash, inputs, outputs, worker, job, enqueued_at, cause_code, cause_pattern)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (run_name, name) DO UPDATE SET
        task_name = excluded.task_name, short_name = excluded.short_name,
        phase = excluded.phase, cache_hit = excluded.cache_hit, attempts = excluded.attempts,
        started_at = excluded.started_at, ended_at = excluded.ended_at, error = excluded.error,
        epoch = excluded.epoch,
        inputs_hash = coalesce(excluded.inputs_hash, inputs_hash),
        inputs = coalesce(excluded.inputs, inputs),
        outputs = coalesce(excluded.outputs, outputs),
        worker = coalesce(excluded.worker, worker),
        job = coalesce(excluded.job, job),
        enqueued_at = coalesce(excluded.enqueued_at, enqueued_at),
        cause_code = excluded.cause_code, cause_pattern = excluded.cause_pattern
      WHERE ${actionWriteGuard('actions')}`),
    upsertAttempt: db.prepare(`INSERT INTO attempts
      (run_name, action_name, attempt, phase, started_at, ended_at, error, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (run_name, action_name, attempt) DO UPDATE SET
        phase = excluded.phase, started_at = excluded.started_at, ended_at = excluded.ended_at,
        error = excluded.error, worker = excluded.worker`),
    insertLog: db.prepare(
      'INSERT INTO logs (run_name, action_name, attempt, at, stream, line) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    upsertCacheEntry: db.prepare(`INSERT INTO cache_entries
      (key, task_name, created_at, run_name, action_name, outputs) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET
        task_name = excluded.task_name, created_at = excluded.created_at, run_name = excluded.run_name,
        action_name = excluded.action_name, outputs = excluded.outputs`),
    upsertMapTotal: db.prepare(`INSERT INTO map_totals (run_name, parent_name, grp, seq, total) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (run_name, parent_name, grp, seq) DO UPDATE SET total = excluded.total`),
    getRun: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE name = ?`),
    getRunEpoch: db.preparePluck('SELECT epoch FROM runs WHERE name = ?'),
    getRunInputs: db.preparePluck('SELECT inputs FROM runs WHERE name = ?'),
    getAction: db.prepare(`SELECT ${ACTION_COLUMNS} FROM actions WHERE run_name = ? AND name = ?`),
    getActionIO: db.prepare('SELECT inputs, outputs FROM actions WHERE run_name = ? AND name = ?'),
    countActions: db.prepare(`SELECT ${COUNT_COLUMNS} FROM actions WHERE run_name = ?`),
    listGroups: db.prepare(`SELECT g.*, (SELECT sum(total) FROM map_totals m
          WHERE m.run_name = ? AND m.parent_name = g.parent_name AND m.grp = g.grp) AS expected
      FROM (SELECT parent_name, grp, ${COUNT_COLUMNS},
          min(started_at) AS started_at, max(ended_at) AS ended_at, min(seq) AS first
        FROM actions WHERE run_name = ? AND grp IS NOT NULL AND parent_name IS NOT NULL
        GROUP BY parent_name, grp) g ORDER BY g.first`),
    // Over actions_by_cause (the failed rows of the fan-out only); the example is the first member of each cause.
    listCauses: db.prepare(`SELECT c.code, c.pattern, c.count, a.name AS example
      FROM (SELECT cause_code AS code, cause_pattern AS pattern, count(*) AS count, min(seq) AS first
        FROM actions WHERE run_name = ? AND parent_name = ? AND grp = ? AND cause_code IS NOT NULL
        GROUP BY cause_code, cause_pattern) c
      JOIN actions a ON a.seq = c.first
      ORDER BY c.count DESC, c.first`),
    listAttempts: db.prepare(`SELECT ${ATTEMPT_COLUMNS}
      FROM attempts WHERE run_name = ? AND action_name = ? ORDER BY attempt`),
    getActionWorker: db.prepare(`SELECT ${ACTION_COLUMNS}, worker FROM actions WHERE run_name = ? AND name = ?`),
    getCacheEntry: db.prepare(
      'SELECT key, task_name, created_at, run_name, action_name, outputs FROM cache_entries WHERE key = ?',
    ),
    clearCache: db.prepare('DELETE FROM cache_entries'),
  };
}

/**
 * Fills the cause columns of the actions that failed before they existed (once, after the migration that added
 * them), in one transaction.
 */
function fillCauses(db: SqliteConnection): void {
  const rows = db
    .prepare(
      `SELECT seq, phase, error FROM actions
       WHERE phase IN ('failed', 'timed_out') AND error IS NOT NULL AND cause_code IS NULL`,
    )
    .all() as { seq: number; phase: ActionRecord['phase']; error: string }[];
  if (rows.length === 0) return;
  const update = db.prepare('UPDATE actions SET cause_code = ?, cause_pattern = ? WHERE seq = ?');
  db.transaction(() => {
    for (const r of rows) {
      const cause = causeOf({ phase: r.phase, error: errorFromJson(r.error) });
      if (cause !== null) update.run(cause.code, cause.pattern, r.seq);
    }
  })();
}

/** SQLite reads a negative LIMIT as "no limit". */
function sqlLimit(limit: number): number {
  return limit === Infinity ? -1 : limit;
}
