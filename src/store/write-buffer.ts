/**
 * The write buffer of the SQL stores (SQLite and Postgres): the pending writes, coalesced per run, action,
 * attempt, cache key and map call; when they are committed (the group-commit window, a full buffer, `flush()`,
 * `durable()` waiters sharing one commit, one commit in flight at a time); what happens when a commit fails (its
 * writes are kept under the newer ones and retried with a backoff); and the bookkeeping of fencing (the epoch at
 * which this instance drives each run). It knows nothing of SQL: a store supplies only "write this batch in one
 * transaction", synchronous (SQLite) or asynchronous (Postgres), and reads the runs' current epochs for fencing.
 * @module
 */
import { RuntimeSystemError } from '../errors.js';
import type { ActionPhase, AttemptRecord, LogLine } from '../types.js';
import {
  StoreClosedError,
  pickAttempt,
  type ActionWrite,
  type CacheEntry,
  type MapTotal,
  type RunUpdate,
} from './run-store.js';
import { copyActionWrite, type Mutable } from './sql-rows.js';

/** The default group-commit window, in ms. */
export const DEFAULT_FLUSH_INTERVAL_MS = 10;
/** The default number of pending rows that starts a commit without waiting for the window. */
export const DEFAULT_MAX_BATCH = 10_000;
/** The longest wait between two attempts of a failing commit. */
const MAX_RETRY_DELAY_MS = 1_000;

/**
 * One group of pending writes: what one commit writes. A later write to the same action (attempt, run, cache
 * key, map call) replaces the pending one in place, keeping the inputs, their hash, the outputs, the worker and the job
 * that the later write leaves `undefined`. Maps keep insertion order, so actions are written in the order they
 * were first written (creation order).
 *
 * Pending writes are keyed by run, then by action: nested maps hash the caller's (already flat) strings instead
 * of building a `run\0action` key per write, which measured several times slower per write with 100 000 actions
 * pending.
 *
 * @example
 * ```ts
 * const batch = new WriteBatch();
 * batch.putAction(queued);
 * batch.putAction(succeeded); // still one row
 * batch.rows; // 1
 * ```
 */
export class WriteBatch {
  /** Pending actions by run, then by name: the batch's own copies, updated in place by later writes. */
  readonly actions = new Map<string, Map<string, Mutable<ActionWrite>>>();
  /** Pending attempts by run, then by action: one record, or one per attempt number when several are pending. */
  readonly attempts = new Map<string, Map<string, AttemptRecord | AttemptRecord[]>>();
  /** Pending run updates, merged per run. */
  readonly runUpdates = new Map<string, Mutable<RunUpdate>>();
  logs: LogLine[] = [];
  readonly cacheEntries = new Map<string, CacheEntry>();
  /** By `run\0parent\0group\0seq`. */
  readonly mapTotals = new Map<string, MapTotal>();
  /** Rows pending in all of the above. */
  rows = 0;
  /** Pending action rows of actions still queued or running: a commit now would write them again later. */
  unfinished = 0;
  /** Callers of `durable()` that this batch's commit releases; one promise for all of them. */
  #waiters: Waiters | undefined;

  /** Adds an action write, or merges it into the pending write of the same action. */
  putAction(action: ActionWrite): void {
    let run = this.actions.get(action.runName);
    if (run === undefined) {
      run = new Map();
      this.actions.set(action.runName, run);
    }
    const pending = run.get(action.name);
    if (pending === undefined) {
      run.set(action.name, copyActionWrite(action));
      this.rows++;
      if (!isFinished(action.phase)) this.unfinished++;
      return;
    }
    this.unfinished += (isFinished(pending.phase) ? 0 : -1) + (isFinished(action.phase) ? 0 : 1);
    // In place: an action written queued → running → succeeded within one window is one object, one row.
    // parent_name and grp stay as first written: an action's place in the tree is fixed by its first write.
    pending.taskName = action.taskName;
    pending.shortName = action.shortName;
    pending.phase = action.phase;
    pending.cacheHit = action.cacheHit;
    pending.attempts = action.attempts;
    pending.startedAt = action.startedAt;
    pending.endedAt = action.endedAt;
    pending.error = action.error;
    pending.epoch = action.epoch;
    if (action.inputs !== undefined) pending.inputs = action.inputs;
    if (action.inputsHash !== undefined) pending.inputsHash = action.inputsHash;
    if (action.outputs !== undefined) pending.outputs = action.outputs;
    if (action.worker !== undefined) pending.worker = action.worker;
    if (action.job !== undefined) pending.job = action.job;
    if (action.enqueuedAt !== undefined) pending.enqueuedAt = action.enqueuedAt;
  }

  /** Adds an attempt write, replacing a pending one of the same attempt number. */
  putAttempt(write: AttemptRecord): void {
    const attempt = pickAttempt(write);
    let run = this.attempts.get(attempt.runName);
    if (run === undefined) {
      run = new Map();
      this.attempts.set(attempt.runName, run);
    }
    const prev = run.get(attempt.actionName);
    if (prev === undefined) {
      run.set(attempt.actionName, attempt);
      this.rows++;
    } else if (!Array.isArray(prev)) {
      if (prev.attempt === attempt.attempt) {
        run.set(attempt.actionName, attempt);
      } else {
        run.set(attempt.actionName, [prev, attempt]);
        this.rows++;
      }
    } else {
      const i = prev.findIndex((p) => p.attempt === attempt.attempt);
      if (i >= 0) {
        prev[i] = attempt;
      } else {
        prev.push(attempt);
        this.rows++;
      }
    }
  }

  /** Calls `fn` with every pending attempt, run by run. */
  forEachAttempt(fn: (attempt: AttemptRecord) => void): void {
    for (const run of this.attempts.values()) {
      for (const t of run.values()) {
        if (Array.isArray(t)) for (const one of t) fn(one);
        else fn(t);
      }
    }
  }

  /** Merges a run update into the pending one of the run (`undefined` fields keep the pending value). */
  updateRun(name: string, update: RunUpdate): void {
    const pending = this.runUpdates.get(name);
    if (pending === undefined) {
      this.runUpdates.set(name, { ...update });
      this.rows++;
      return;
    }
    if (update.phase !== undefined) pending.phase = update.phase;
    if (update.startedAt !== undefined) pending.startedAt = update.startedAt;
    if (update.endedAt !== undefined) pending.endedAt = update.endedAt;
    if (update.error !== undefined) pending.error = update.error;
    if (update.owner !== undefined) pending.owner = update.owner;
  }

  /** Adds copies of log lines, in order. */
  appendLogs(lines: readonly LogLine[]): void {
    for (const line of lines) this.logs.push({ ...line });
    this.rows += lines.length;
  }

  /** Adds a cache entry, replacing a pending one of the same key. */
  putCacheEntry(entry: CacheEntry): void {
    if (!this.cacheEntries.has(entry.key)) this.rows++;
    this.cacheEntries.set(entry.key, { ...entry });
  }

  /** Adds a map total, replacing a pending one of the same map call. */
  putMapTotal(m: MapTotal): void {
    const { runName, parentName, group, seq, total } = m;
    const key = `${runName}\0${parentName}\0${group}\0${seq}`;
    if (!this.mapTotals.has(key)) this.rows++;
    this.mapTotals.set(key, { runName, parentName, group, seq, total });
  }

  /** A promise that this batch's commit resolves (or a failure that can never be retried rejects). */
  waiter(): Promise<void> {
    this.#waiters ??= waiters();
    return this.#waiters.promise;
  }

  /** Whether anyone waits for this batch's commit. */
  get waited(): boolean {
    return this.#waiters !== undefined;
  }

  /** Releases the callers waiting for this batch. */
  resolveWaiters(): void {
    this.#waiters?.resolve();
    this.#waiters = undefined;
  }

  /** Refuses the callers waiting for this batch. */
  rejectWaiters(error: Error): void {
    this.#waiters?.reject(error);
    this.#waiters = undefined;
  }

  /**
   * Applies the writes of `newer` (made after this batch's) on top of this one, waiters included: how a commit
   * that failed keeps its writes, in order, under the ones made while it ran.
   */
  absorb(newer: WriteBatch): void {
    for (const run of newer.actions.values()) for (const a of run.values()) this.putAction(a);
    newer.forEachAttempt((t) => this.putAttempt(t));
    for (const [name, u] of newer.runUpdates) this.updateRun(name, u);
    this.appendLogs(newer.logs);
    for (const c of newer.cacheEntries.values()) this.putCacheEntry(c);
    for (const m of newer.mapTotals.values()) this.putMapTotal(m);
    const theirs = newer.#waiters;
    if (theirs === undefined) return;
    newer.#waiters = undefined;
    if (this.#waiters === undefined) this.#waiters = theirs;
    else this.#waiters.promise.then(theirs.resolve, theirs.reject);
  }

  /** The runs that have pending writes (cache entries aside). */
  runs(): Set<string> {
    const runs = new Set<string>([...this.actions.keys(), ...this.attempts.keys(), ...this.runUpdates.keys()]);
    for (const line of this.logs) runs.add(line.runName);
    for (const m of this.mapTotals.values()) runs.add(m.runName);
    return runs;
  }

  /** Forgets every pending write of `run` (the cache entries it produced too); returns how many rows. */
  dropRun(run: string): number {
    const before = this.rows;
    for (const a of this.actions.get(run)?.values() ?? []) {
      this.rows--;
      if (!isFinished(a.phase)) this.unfinished--;
    }
    this.actions.delete(run);
    for (const t of this.attempts.get(run)?.values() ?? []) this.rows -= Array.isArray(t) ? t.length : 1;
    this.attempts.delete(run);
    if (this.runUpdates.delete(run)) this.rows--;
    const logs = this.logs.filter((l) => l.runName !== run);
    this.rows -= this.logs.length - logs.length;
    this.logs = logs;
    for (const [key, entry] of this.cacheEntries) {
      if (entry.runName !== run) continue;
      this.cacheEntries.delete(key);
      this.rows--;
    }
    for (const [key, m] of this.mapTotals) {
      if (m.runName !== run) continue;
      this.mapTotals.delete(key);
      this.rows--;
    }
    return before - this.rows;
  }
}

/** Options of a {@link WriteBuffer}. */
export interface WriteBufferOptions {
  /** The store's description, for error messages. */
  readonly description: string;
  /** @default 10 */
  readonly flushIntervalMs?: number | undefined;
  /** @default 10000 */
  readonly maxBatch?: number | undefined;
  /**
   * Writes `batch` in one transaction: returns once committed (SQLite) or returns a promise that resolves then
   * (Postgres). Throws (rejects) when nothing of it was committed. It may drop the writes of fenced runs from
   * the batch first ({@link WriteBuffer.fence}).
   */
  readonly commit: (batch: WriteBatch) => void | Promise<void>;
  /**
   * Whether `commit` is synchronous. A synchronous commit that a full buffer triggers runs at once, inside the
   * write that filled it, when nearly all pending rows are of finished actions (see {@link WriteBuffer}).
   */
  readonly sync: boolean;
  /** Called when a commit that nobody awaited (the timer's, a full buffer's) fails. */
  readonly onBackgroundError?: ((error: Error) => void) | undefined;
  /**
   * A failure after which no commit can ever succeed (a Postgres store that could not connect), or `undefined`:
   * when a commit fails and this returns an error, the pending writes are dropped and their waiters rejected
   * with it instead of retried.
   */
  readonly fatal?: (() => Error | undefined) | undefined;
}

/** Counters of a {@link WriteBuffer}. */
export interface WriteBufferStats {
  /** Transactions that committed buffered writes. */
  readonly commits: number;
  /** Commits of buffered writes that failed (their writes were kept). */
  readonly failedCommits: number;
  /** Rows written by committed flushes (after coalescing and fencing). */
  readonly rowsWritten: number;
  /** Pending rows dropped at a commit because another process had taken their run over (fencing). */
  readonly fencedRows: number;
}

/**
 * The group-commit buffer of a SQL store. Writes go into the pending {@link WriteBatch} and schedule a commit:
 * `flushIntervalMs` after the first pending write, when `maxBatch` rows are pending, at once on `flush()`, or on
 * the next turn of the event loop after `durable()` (whose callers share that commit). One commit is in flight at
 * a time; writes made meanwhile go into the next batch. A failed commit keeps its writes, under the ones made
 * meanwhile, and is retried with a backoff up to 1 s; `flush()` reports the failure.
 *
 * A fan-out whose children finish within microtasks never yields to the event loop, so neither the timer nor a
 * commit scheduled for the next turn can run until it is over. With a synchronous commit, reaching `maxBatch`
 * therefore commits inline when at most one pending row in ten belongs to an action still queued or running (a
 * bounded `flyte.map`: durable every `maxBatch` rows, and its buffer stays bounded). While most pending rows are
 * of running actions (an unbounded fan-out started all its children before any finished), committing them would
 * write each of those rows twice, running and then finished: those wait for the next turn of the event loop, or
 * for nine in ten of them to finish.
 *
 * Timers are unref'd, except while `durable()` callers wait: a pending write never keeps the process alive.
 *
 * @example
 * ```ts
 * const buffer = new WriteBuffer({ description: 'sqlite:/tmp/x.db', sync: true, commit: (batch) => write(batch) });
 * buffer.putAction(action); // pending; committed within 10 ms
 * await buffer.durable();   // committed
 * ```
 */
export class WriteBuffer {
  /** Counters since the buffer was made. */
  readonly stats: Mutable<WriteBufferStats> = { commits: 0, failedCommits: 0, rowsWritten: 0, fencedRows: 0 };
  /** The epochs at which this store instance drives runs (fencing). */
  readonly claims = new RunClaims();

  readonly #options: WriteBufferOptions;
  readonly #flushIntervalMs: number;
  readonly #maxBatch: number;
  #batch = new WriteBatch();
  /** The batch being committed, while an asynchronous commit is in flight. */
  #committing: WriteBatch | undefined;
  /** Settles (never rejects) when the commit in flight ends. */
  #inflight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  /** Non-zero while commits are failing. */
  #retryDelayMs = 0;
  #closed = false;

  /** @throws RangeError when `flushIntervalMs` is negative or `maxBatch` is not positive. */
  constructor(options: WriteBufferOptions) {
    checkPositive('flushIntervalMs', options.flushIntervalMs, true);
    checkPositive('maxBatch', options.maxBatch, false);
    this.#options = options;
    this.#flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.#maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  }

  /** Rows waiting to be committed (the commit in flight aside). */
  get rows(): number {
    return this.#batch.rows;
  }

  /** Whether anything is pending or being committed: a read must flush first. */
  get busy(): boolean {
    return this.#batch.rows > 0 || this.#inflight !== undefined;
  }

  /** Whether a write of one of `actionNames` (of `runName`) is pending or being committed. */
  holdsActions(runName: string, actionNames: readonly string[]): boolean {
    for (const batch of [this.#batch, this.#committing]) {
      const run = batch?.actions.get(runName);
      if (run !== undefined && actionNames.some((name) => run.has(name))) return true;
    }
    return false;
  }

  /** A pending cache entry (or one being committed) of that key. */
  pendingCacheEntry(key: string): CacheEntry | undefined {
    return this.#batch.cacheEntries.get(key) ?? this.#committing?.cacheEntries.get(key);
  }

  /** Buffers an action write ({@link WriteBatch.putAction}) and schedules a commit. */
  putAction(action: ActionWrite): void {
    this.#batch.putAction(action);
    this.#schedule();
  }

  /** Buffers an attempt write and schedules a commit. */
  putAttempt(attempt: AttemptRecord): void {
    this.#batch.putAttempt(attempt);
    this.#schedule();
  }

  /** Buffers a run update and schedules a commit. */
  updateRun(name: string, update: RunUpdate): void {
    this.#batch.updateRun(name, update);
    this.#schedule();
  }

  /** Buffers log lines and schedules a commit (nothing for no lines). */
  appendLogs(lines: readonly LogLine[]): void {
    if (lines.length === 0) return;
    this.#batch.appendLogs(lines);
    this.#schedule();
  }

  /** Buffers a cache entry and schedules a commit. */
  putCacheEntry(entry: CacheEntry): void {
    this.#batch.putCacheEntry(entry);
    this.#schedule();
  }

  /** Buffers a map total and schedules a commit. */
  putMapTotal(total: MapTotal): void {
    this.#batch.putMapTotal(total);
    this.#schedule();
  }

  /**
   * Resolves once every write made before the call is committed: waits for the commit in flight, then commits
   * what is pending.
   *
   * @throws {@link RuntimeSystemError} (code `'StoreWriteError'`, `cause` the driver's error) when the commit
   * fails; the writes stay pending and are retried.
   */
  async flush(): Promise<void> {
    for (;;) {
      // Another caller may start a commit while this one waits: check again before starting one.
      if (this.#inflight !== undefined) {
        await this.#inflight;
        continue;
      }
      if (this.#batch.rows === 0) return;
      return this.#commit();
    }
  }

  /**
   * Commits every pending write now, for a buffer whose commit is synchronous.
   *
   * @throws {@link RuntimeSystemError} (code `'StoreWriteError'`) when the commit fails; the writes stay pending.
   * @throws TypeError when the buffer's commit is asynchronous.
   */
  flushSync(): void {
    if (!this.#options.sync) throw new TypeError('flushSync: this store commits asynchronously; await flush()');
    this.#cancelScheduled();
    if (this.#closed || this.#batch.rows === 0) return;
    void this.#commit();
  }

  /**
   * Group commit: resolves with the next commit that includes every write made before the call. The commit
   * starts on the next turn of the event loop (or when the commit in flight ends), so that every caller waiting
   * meanwhile shares it. While commits fail the promise stays pending (they are retried).
   *
   * @throws {@link StoreClosedError} (as a rejection) when the buffer is closed; the `fatal` error when no commit
   * can succeed.
   */
  durable(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreClosedError(this.#options.description));
    const fatal = this.#options.fatal?.();
    if (fatal !== undefined) return Promise.reject(fatal);
    const batch = this.#batch.rows > 0 ? this.#batch : this.#committing;
    if (batch === undefined) return RESOLVED;
    const promise = batch.waiter();
    if (batch === this.#batch && this.#inflight === undefined && this.#retryDelayMs === 0) {
      if (this.#immediate === undefined) {
        if (this.#timer !== undefined) {
          clearTimeout(this.#timer);
          this.#timer = undefined;
        }
        this.#immediate = setImmediate(this.#backgroundCommit);
      } else {
        // Someone waits for it now: it keeps the process alive.
        this.#immediate.ref();
      }
    }
    return promise;
  }

  /**
   * Drops the pending writes of `batch` whose run this instance drives at an epoch that another process has
   * since raised, given the `current` epochs of those runs (read inside the commit's transaction, under a lock):
   * a process that lost a run (it hung past its lease, then woke up) can change nothing in it.
   */
  fence(batch: WriteBatch, current: ReadonlyMap<string, number>): void {
    this.stats.fencedRows += this.claims.fence(batch, current);
  }

  /**
   * Stops every timer and refuses the writes still pending (call it after a last `flush()`): their waiters
   * reject with `error`, by default a {@link StoreClosedError}.
   */
  close(error?: Error): void {
    this.#closed = true;
    this.#cancelScheduled();
    this.#batch.rejectWaiters(error ?? new StoreClosedError(this.#options.description));
    this.#batch = new WriteBatch();
  }

  #schedule(): void {
    if (this.#inflight !== undefined) return; // the commit in flight schedules the next when it ends
    const batch = this.#batch;
    if (batch.rows >= this.#maxBatch && this.#retryDelayMs === 0) {
      if (this.#options.sync && batch.unfinished * 10 <= batch.rows) {
        // Inline: a burst that never yields would otherwise keep everything in memory, uncommitted, to its end.
        this.#backgroundCommit();
      } else if (this.#immediate === undefined) {
        this.#immediate = setImmediate(this.#backgroundCommit);
        this.#immediate.unref();
      }
    } else if (this.#timer === undefined && this.#immediate === undefined) {
      this.#timer = setTimeout(this.#backgroundCommit, this.#retryDelayMs || this.#flushIntervalMs);
      this.#timer.unref();
    }
  }

  #cancelScheduled(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
  }

  readonly #backgroundCommit = (): void => {
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#closed || this.#inflight !== undefined || this.#batch.rows === 0) return;
    // Not lost: a failed commit keeps its writes and schedules a retry; an explicit flush() reports the error.
    try {
      this.#commit()?.catch((e: unknown) => this.#options.onBackgroundError?.(e as Error));
    } catch (e) {
      this.#options.onBackgroundError?.(e as Error);
    }
  };

  /**
   * Commits everything pending: synchronously (returns `undefined`, or throws) for a synchronous store, else as
   * the returned promise; only one commit is in flight at a time.
   */
  #commit(): Promise<void> | undefined {
    this.#cancelScheduled();
    const batch = this.#batch;
    this.#batch = new WriteBatch();
    const rows = batch.rows;
    let result: void | Promise<void>;
    try {
      result = this.#options.commit(batch);
    } catch (e) {
      const error = this.#failed(batch, rows, e);
      this.#afterCommit();
      throw error;
    }
    if (result === undefined) {
      this.#succeeded(batch);
      this.#afterCommit();
      return undefined;
    }
    this.#committing = batch;
    const done = result.then(
      () => this.#succeeded(batch),
      (e: unknown) => {
        throw this.#failed(batch, rows, e);
      },
    );
    this.#inflight = done.then(
      () => this.#afterCommit(),
      () => this.#afterCommit(),
    );
    return done;
  }

  #succeeded(batch: WriteBatch): void {
    this.#retryDelayMs = 0;
    this.stats.commits++;
    this.stats.rowsWritten += batch.rows;
    batch.resolveWaiters();
  }

  /** Keeps the writes of a failed commit (or drops them, when no commit can ever succeed); the error to report. */
  #failed(batch: WriteBatch, rows: number, e: unknown): Error {
    const fatal = this.#options.fatal?.();
    if (fatal !== undefined) {
      // Nothing to retry: the writes are refused with the reason.
      batch.rejectWaiters(fatal);
      this.#batch.rejectWaiters(fatal);
      this.#batch = new WriteBatch();
      return fatal;
    }
    this.stats.failedCommits++;
    // The writes stay pending, under the ones made meanwhile; retried with a backoff.
    batch.absorb(this.#batch);
    this.#batch = batch;
    this.#retryDelayMs = Math.min(Math.max(this.#retryDelayMs * 2, this.#flushIntervalMs, 10), MAX_RETRY_DELAY_MS);
    return new RuntimeSystemError(
      'StoreWriteError',
      `could not commit ${rows} pending writes to ${this.#options.description}: ` +
        `${e instanceof Error ? e.message : String(e)}; they are kept and retried by the next flush`,
      { cause: e },
    );
  }

  #afterCommit(): void {
    this.#inflight = undefined;
    this.#committing = undefined;
    if (this.#closed || this.#batch.rows === 0 || this.#options.fatal?.() !== undefined) return;
    if (this.#batch.waited && this.#retryDelayMs === 0) {
      this.#immediate ??= setImmediate(this.#backgroundCommit);
    } else {
      this.#schedule();
    }
  }
}

/**
 * The epoch at which one store instance drives each run it created or claimed, and the runs it lost to another
 * process: the bookkeeping of fencing, shared by the SQL stores.
 */
export class RunClaims {
  readonly #epochs = new Map<string, number>();
  readonly #lost = new Set<string>();

  /** This instance created or claimed `run` at `epoch`: it may write the run again. */
  claimed(run: string, epoch: number): void {
    this.#epochs.set(run, epoch);
    this.#lost.delete(run);
  }

  /** This instance learnt that another process took `run` over: its writes to the run are dropped for good. */
  lost(run: string): void {
    this.#epochs.delete(run);
    this.#lost.add(run);
  }

  /** The epoch at which this instance drives `run`, if it does. */
  epochOf(run: string): number | undefined {
    return this.#epochs.get(run);
  }

  /** Whether this instance holds or lost any run (when not, a commit has nothing to fence). */
  get any(): boolean {
    return this.#epochs.size > 0 || this.#lost.size > 0;
  }

  /** The runs with pending writes in `batch` that this instance claimed, in name order (the order to lock them). */
  claimedIn(batch: WriteBatch): string[] {
    return [...batch.runs()].filter((r) => this.#epochs.has(r)).sort();
  }

  /**
   * Marks as lost the claimed runs whose `current` epoch differs from this instance's, then drops the pending
   * writes of every lost run from `batch`; returns how many rows were dropped.
   */
  fence(batch: WriteBatch, current: ReadonlyMap<string, number>): number {
    for (const [run, epoch] of current) {
      const mine = this.#epochs.get(run);
      if (mine !== undefined && mine !== epoch) this.lost(run);
    }
    let dropped = 0;
    if (this.#lost.size === 0) return dropped;
    for (const run of batch.runs()) if (this.#lost.has(run)) dropped += batch.dropRun(run);
    return dropped;
  }
}

interface Waiters {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

function waiters(): Waiters {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A rejection nobody awaits (every caller went away) must not end the process.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const RESOLVED = Promise.resolve();

/** Whether an action in this phase is finished: its row is not written again. */
export function isFinished(phase: ActionPhase): boolean {
  return phase !== 'queued' && phase !== 'running';
}

/**
 * Checks a numeric option: finite and non-negative (positive unless `allowZero`); `undefined` passes.
 *
 * @throws RangeError saying what was expected and what was received.
 */
export function checkPositive(name: string, value: number | undefined, allowZero: boolean): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new RangeError(
      `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, received ${String(value)}`,
    );
  }
}
