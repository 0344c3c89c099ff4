/**
 * The `RunStore` contract: where runs, actions, attempts, logs and cache entries live.
 *
 * Every store (the embedded SQLite default, the in-memory store for tests, the Postgres store of distributed
 * mode) implements this interface and passes the one conformance suite in `test/support/store-conformance.ts`.
 * A store knows nothing of tasks, serialization or the SDK: values arrive already encoded as strings.
 *
 * Writes are **buffered**: the `put*`/`append*`/`updateRun` methods return at once and the store commits them in
 * groups (one transaction for many actions), so a fan-out does not pay a transaction per action. Later writes
 * to the same action or attempt replace earlier ones that are not yet committed. Reads see every write made
 * before them (a store flushes, or reads through its buffer). `flush()` resolves once everything written before
 * it is durable, and rejects with the error if a commit failed; `durable()` resolves at the same point but lets
 * the store group the commit with other waiters (what a controller awaits before a parent sees a child's
 * outcome). A commit writes everything pending in one transaction, so writes become durable in the order made.
 *
 * The SQL stores share one write buffer (`write-buffer.ts`): the coalescing, the commit scheduling, the retries
 * and the fencing bookkeeping are the same on SQLite and Postgres; only the transaction differs.
 *
 * **Many writers.** Many processes may share one store (two SQLite processes on one file, any number of
 * processes on one Postgres schema). The contract that keeps them apart:
 * - **Runs.** A run has one driver at a time: the process that created it or claimed it
 *   ({@link RunStore.claimRun}, a compare-and-set on the run's epoch), under a lease it renews
 *   ({@link RunStore.renewLease}); a driver whose lease lapsed is `orphaned` ({@link RunStore.markOrphaned}). A
 *   store instance refuses to commit writes of a run whose epoch another process raised since its own claim
 *   (fencing).
 * - **Actions.** A worker claims one action ({@link RunStore.claimAction}): one atomic step that makes it
 *   `running` and raises its epoch, or refuses a terminal action (a duplicate delivery). Every action write
 *   carries its writer's epoch ({@link ActionWrite.epoch}) and is **guarded**: it never lands on a record of a
 *   newer epoch, and never makes a terminal record unfinished at the same epoch.
 * - **Aborts** are durable requests that every process can read ({@link RunStore.listAbortRequests}), numbered
 *   in the order made and stamped with the run's epoch, so that a recovered run does not apply old ones.
 * - **Waiting parents** ask which of their children ended in one read ({@link RunStore.endedAmong}).
 *
 * `putAction` and `putAttempt` take a snapshot: the caller may change the object it passed once the call
 * returns.
 *
 * **Attempts.** Most actions succeed at their first attempt, and that attempt is the action: same start, same
 * end, same phase. So a writer need not record an action's first attempt while it is the only one and has not
 * failed: {@link RunStore.listAttempts} of an action with no attempt records, `attempts === 1` and a start time
 * returns that attempt built from the action record (see {@link impliedFirstAttempt}), its `worker` being the
 * last {@link ActionWrite.worker} written for the action. The local controller
 * writes attempt records only for an attempt that failed (timed out, was aborted), for every attempt after the
 * first, and for every attempt of a recovered run (which may replace the records of an earlier process); trace
 * and durable steps (recorded with `attempts: 1`) get none, and list their one attempt the same way. A store
 * keeps whatever attempt records it is given; once an action has one, only the records are listed.
 * @module
 */
import type {
  ActionCounts,
  ActionPhase,
  ActionRecord,
  ActionError,
  AttemptRecord,
  LogLine,
  RunPhase,
  RunRecord,
} from '../types.js';
import { RuntimeUserError, type RuntimeErrorOptions } from '../errors.js';

/** An action as written: its record plus, when known, its encoded inputs/outputs. */
export interface ActionWrite extends ActionRecord {
  /** Encoded inputs (codec string). Written once, when the action is created; `undefined` keeps the stored value. */
  readonly inputs?: string | undefined;
  /** Canonical hash of the inputs. */
  readonly inputsHash?: string | undefined;
  /** Encoded output, set when the action succeeded; `undefined` keeps the stored value. */
  readonly outputs?: string | undefined;
  /**
   * The writer's epoch, its fencing token for this action: the epoch of its claim on the action
   * ({@link RunStore.claimAction}) or on the run. `undefined`: the epoch at which this store instance created or
   * claimed the run (0 when it did neither). See {@link RunStore.putAction} for the guard.
   */
  readonly epoch?: number | undefined;
  /**
   * The process running (or that ran) the action's current attempt, `host:pid`: what the first attempt implied by
   * the action record ({@link impliedFirstAttempt}) names as its worker. `undefined` keeps the stored value.
   */
  readonly worker?: string | undefined;
  /**
   * Distributed mode: the action's engine job, as JSON (see `src/internal/sweeper.ts`), written just before the
   * job is enqueued, so that a job that vanished from the engine can be rebuilt and enqueued again by the sweeper.
   * `undefined` keeps the stored value.
   */
  readonly job?: string | undefined;
  /** When {@link job} was written, in ms since the epoch (the sweeper leaves younger ones alone). */
  readonly enqueuedAt?: number | undefined;
}

/** Fields of a run that change after it was created. */
export interface RunUpdate {
  readonly phase?: RunPhase;
  readonly startedAt?: number | null;
  readonly endedAt?: number | null;
  readonly error?: ActionError | null;
  readonly owner?: string | null;
}

/**
 * A run as written when it is created, with its encoded root inputs. The lease fields default to no lease
 * (`epoch` 1, `heartbeatAt` and `leaseExpiresAt` `null`).
 */
export interface RunWrite extends Omit<RunRecord, 'epoch' | 'heartbeatAt' | 'leaseExpiresAt'> {
  readonly inputs: string;
  readonly epoch?: number;
  readonly heartbeatAt?: number | null;
  readonly leaseExpiresAt?: number | null;
}

/** A driver's claim on a run (see {@link RunStore.claimRun}). */
export interface RunClaim {
  /** The driving process, `host:pid`. */
  readonly owner: string;
  /** How long the lease holds from now, in ms; the driver renews it well before. */
  readonly leaseMs: number;
}

/** Filter for {@link RunStore.listRuns}. Newest first. */
export interface ListRunsQuery {
  /** @default 50 */
  readonly limit?: number;
  /** @default 0 */
  readonly offset?: number;
  readonly phase?: RunPhase;
  readonly taskName?: string;
}

/**
 * Filter for {@link RunStore.listActions}. In creation order; every filter given must match (they combine with
 * AND). The search filters (`failed`, `text`, `itemIndex`, `cause`) are meant with a `parentName` and a `group`
 * (the members of one fan-out): the SQL stores then walk that parent's children only, a page at a time.
 */
export interface ListActionsQuery {
  /** Only direct children of this action (`null`: only the root). */
  readonly parentName?: string | null;
  /** Only actions created in this group (`null`: only actions in no group). */
  readonly group?: string | null;
  readonly phase?: ActionPhase;
  /** `true`: only actions that `failed` or `timed_out`; `false` or absent: no filter. */
  readonly failed?: boolean;
  /**
   * Only actions whose encoded inputs or error message contain this text, ignoring case (ASCII letters on
   * SQLite, whose `lower()` folds only those). A non-empty string.
   */
  readonly text?: string;
  /** Only the map item of this 0-based index ({@link ActionRecord.itemIndex}). */
  readonly itemIndex?: number;
  /** Only actions that failed of this cause (see {@link RunStore.listCauses}). */
  readonly cause?: { readonly code: string; readonly pattern: string };
  /**
   * A cursor: only actions created after the action of this name (the last one of the previous page), so that
   * paging through a big run reads one index range per page instead of skipping `offset` rows. A name the run
   * does not have matches nothing.
   */
  readonly after?: string;
  readonly offset?: number;
  readonly limit?: number;
}

/**
 * One cause of failure among the members of a fan-out (see {@link RunStore.listCauses}): the error code and the
 * masked message (`maskMessage` in `src/internal/error-cause.ts`) that `count` failed members share.
 */
export interface FailureCause {
  readonly code: string;
  /** The masked message, e.g. `HTTP 503 for item <n>`. */
  readonly pattern: string;
  readonly count: number;
  /** One real action name of this cause: the first such member in creation order. */
  readonly example: string;
}

/** Which fan-out {@link RunStore.listCauses} reads: the children of `parentName` created in `group`. */
export interface ListCausesQuery {
  readonly parentName: string;
  readonly group: string;
}

/** A worker's claim on one action (see {@link RunStore.claimAction}). */
export interface ActionClaim {
  /** The claiming process (a worker id, or `host:pid`). */
  readonly owner: string;
  /** How long the claim holds from now, in ms (recorded as the action's `leaseExpiresAt`). */
  readonly leaseMs: number;
}

/**
 * An action as claimed ({@link RunStore.claimAction}): its record, the epoch the claim raised, the lease, and its
 * encoded inputs (read in the same step, so that a worker needs no second read to start it).
 */
export interface ClaimedAction extends ActionRecord {
  /** The claimer's fencing token: pass it as {@link ActionWrite.epoch} in every write of the action. */
  readonly epoch: number;
  readonly owner: string;
  /** When the claim lapses, in ms since the epoch, unless the claimer renews it (by claiming again). */
  readonly leaseExpiresAt: number;
  /** The action's encoded inputs, as recorded when it was created (`null` when none were recorded). */
  readonly inputs: string | null;
  /**
   * How many claims of the action, this one included, found it still held by an earlier claim that was never
   * given back ({@link RunStore.releaseAction}): the takeovers after a worker died or lost its lock. 0 on a first
   * claim, and on a claim after a drain handed the action back.
   */
  readonly takeovers: number;
  /** The owners that held the action when it was taken over from them, oldest first (`takeovers` of them). */
  readonly lostOwners: readonly string[];
}

/** Options of {@link RunStore.endedAmong}. */
export interface EndedAmongOptions {
  /** Read each ended action's encoded outputs in the same query. @default false */
  readonly withOutputs?: boolean;
}

/** An action that ended, as {@link RunStore.endedAmong} reads it: with its encoded outputs when asked for. */
export interface EndedAction extends ActionRecord {
  /** The encoded output of a succeeded action (`null` otherwise); present only with `withOutputs`. */
  readonly outputs?: string | null;
}

/**
 * An abort asked for by some process (see {@link RunStore.requestAbort}). Requests stay in the store: every
 * process can list them ({@link RunStore.listAbortRequests}), as often as it likes.
 */
export interface AbortRequest {
  /**
   * Numbers the requests of a store in the order they were made (and committed): a reader that has seen every
   * request up to `seq` asks only for those after it.
   */
  readonly seq: number;
  readonly runName: string;
  /** The action to abort with its descendants; `null` for the whole run. */
  readonly actionName: string | null;
  readonly reason: string;
  /**
   * The run's epoch when the request was made. A driver applies only the requests made at its own epoch or
   * later: a run recovered since (its epoch raised by {@link RunStore.claimRun}) does not re-apply an abort that
   * was meant for, and applied by, an earlier driver.
   */
  readonly runEpoch: number;
  /** When the request was made, in ms since the epoch. */
  readonly requestedAt: number;
}

/** Options of {@link RunStore.listLogs}. */
export interface ListLogsQuery {
  /** Only the last `tail` lines (still in the order written). @default all */
  readonly tail?: number;
}

/** Options of {@link RunStore.listRunLogs}: one page of a run's log lines after a cursor. */
export interface RunLogsQuery {
  /** Only lines after this cursor: the {@link RunLogLine.seq} of the last line read. @default 0 (from the start) */
  readonly afterSeq?: number;
  /**
   * Only lines before this cursor, and then the page is the *last* `limit` of them (still in write order): what a
   * reader paging backwards from the end asks for (`Number.MAX_SAFE_INTEGER` for the run's last lines).
   * @default none (the page is the first `limit` lines after `afterSeq`)
   */
  readonly beforeSeq?: number;
  /** At most this many lines, 1 to {@link MAX_RUN_LOGS_PAGE}. @default 1000 */
  readonly limit?: number;
}

/** The largest page {@link RunStore.listRunLogs} returns. */
export const MAX_RUN_LOGS_PAGE = 10_000;

/** A log line as {@link RunStore.listRunLogs} reads it: with its cursor and the name of the action that wrote it. */
export interface RunLogLine extends LogLine {
  /**
   * The line's position in the store's write order, unique in the store and rising with every line committed
   * (not contiguous: lines of other runs share the sequence). The cursor of the next page.
   */
  readonly seq: number;
  /** The short task name of the action that wrote the line, `null` when that action is not recorded. */
  readonly shortName: string | null;
  /** That action's {@link ActionRecord.itemIndex}: its position in its `flyte.map` call, else `null`. */
  readonly itemIndex: number | null;
}

/**
 * How many items a `flyte.map` call will run, recorded when the map starts and its input has a known size (an
 * array, a `Set`, a `Map`...): the denominator of its progress. `seq` numbers the map calls in one group under one
 * parent, so that a parent running the same map again (a recovery, a retry) writes the same record again.
 */
export interface MapTotal {
  readonly runName: string;
  readonly parentName: string;
  readonly group: string;
  readonly seq: number;
  readonly total: number;
}

/** One group of actions under one parent: how a fan-out is folded into one node. */
export interface GroupSummary {
  readonly parentName: string;
  readonly group: string;
  readonly counts: ActionCounts;
  /**
   * The items its maps will run in all (the sum of their {@link MapTotal}s), or `null` when no map of the group
   * had an input of known size: progress is `done / expected` of the items, not of the actions started so far.
   */
  readonly expected: number | null;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
}

/** A cached output, keyed by the cache key computed by the controller. */
export interface CacheEntry {
  readonly key: string;
  readonly taskName: string;
  /** Encoded output. */
  readonly outputs: string;
  readonly createdAt: number;
  /** Where the entry was produced. */
  readonly runName: string;
  readonly actionName: string;
}

/** The encoded inputs and outputs of one action (`null` where not recorded). */
export interface ActionIO {
  readonly inputs: string | null;
  readonly outputs: string | null;
}

/** The storage contract shared by every backend. */
export interface RunStore {
  /** A short description for logs and the CLI, e.g. `sqlite:/home/me/proj/.flyte/flyte.db`. */
  readonly description: string;

  /**
   * Resolves once the store can be used: at once for the memory and SQLite stores (they open synchronously),
   * once connected and migrated for Postgres; resolving again and again to the same outcome when called again. A store is usable before it is ready: buffered writes are kept and
   * every async method waits for readiness first. Call it to learn early that a store cannot be opened.
   *
   * Thrown (as a rejection) by the Postgres store, with an {@link InitializationError} naming the store (never
   * its password), when the database cannot be reached or migrated; every later operation rejects (or, for a
   * buffered write, throws) the same error.
   */
  ready(): Promise<void>;

  /** Records a new run. Durable when the promise resolves. Rejects if a run of that name exists. */
  createRun(run: RunWrite): Promise<void>;
  /** Changes a run's phase, times, error or owner (buffered). */
  updateRun(name: string, update: RunUpdate): void;
  /**
   * Writes the current state of an action (buffered; later writes replace pending earlier ones).
   *
   * **Guarded.** A write carries its writer's epoch ({@link ActionWrite.epoch}, by default the epoch at which
   * this instance created or claimed the run), and the stored record keeps the epoch of the write that last
   * changed it. When the write is committed it changes nothing if the stored record has a newer epoch (a
   * writer that was fenced by a claim), nor if the stored record is terminal (`succeeded`, `failed`, `aborted`,
   * `timed_out`) and the write is not, at the same epoch: only a writer holding a newer epoch (a recovery that
   * claimed the run, a worker that claimed the action) makes an ended action run again. A refused write is
   * dropped without an error: the caller learns of it by reading the record, or from a claim that failed.
   *
   * Thrown by every store with {@link StoreClosedError} when it is closed.
   */
  putAction(action: ActionWrite): void;
  /** Writes the current state of an attempt (buffered). */
  putAttempt(attempt: AttemptRecord): void;
  /** Appends log lines (buffered). */
  appendLogs(lines: readonly LogLine[]): void;
  /** Stores a cache entry (buffered), replacing one with the same key. */
  putCacheEntry(entry: CacheEntry): void;
  /** Records how many items a map will run (buffered), replacing the record of the same map call. */
  putMapTotal(total: MapTotal): void;

  /** Resolves once every write made before the call is durable, committing them now. */
  flush(): Promise<void>;
  /**
   * Resolves once every write made before the call is durable, like {@link flush}, but as a **group commit**:
   * the store commits soon (at the latest on the next turn of the event loop, or when its commit in progress
   * ends) together with every write made until then, so that many waiters share one commit. This is what a
   * controller waits on before it hands a child's outcome to the parent. While commits fail the promise stays
   * pending (the writes are retried); it rejects with {@link StoreClosedError} if the store is closed first.
   */
  durable(): Promise<void>;

  /**
   * Claims one action for `claim.owner` in one atomic step (a single `UPDATE … RETURNING` on the SQL stores):
   * the action becomes `running`, its epoch is raised by one, and the claim's owner and lease are recorded.
   * Of several processes claiming the same action at once, each gets a different epoch, and only the writes of
   * the newest claim land ({@link putAction}'s guard): the others are fenced. Pending writes are committed first.
   *
   * Resolves to the action as claimed, with its new epoch, or to `undefined` when the action is terminal (the
   * job was delivered twice: run nothing) or there is no such action.
   * Thrown (as a rejection) with {@link StoreClosedError} when the store is closed, and with the store's error
   * when the database cannot be reached.
   */
  claimAction(runName: string, actionName: string, claim: ActionClaim): Promise<ClaimedAction | undefined>;
  /**
   * Gives back the claim made at `epoch` on an action that is not terminal (a draining worker hands its job
   * back): the action keeps its record, and the next claim of it is not counted as a takeover
   * ({@link ClaimedAction.takeovers}). Resolves `false`, changing nothing, when the action has another epoch (a
   * newer claim holds it), is terminal, or does not exist.
   */
  releaseAction(runName: string, actionName: string, epoch: number): Promise<boolean>;
  /**
   * Takes the run over for `claim.owner`, atomically: the claim succeeds only if the run's epoch is still
   * `expectedEpoch` (the epoch the caller read and judged the run by), so that of several processes racing to
   * drive one run, exactly one wins. The winner's run is `running` again (end and error cleared), with the epoch
   * raised by one and a fresh lease. Pending writes are committed first. From then on, this store instance
   * refuses to commit writes of that run if another process has raised its epoch since (fencing).
   *
   * Resolves to the run as claimed, or `undefined` when the epoch moved (someone else claimed it first) or there
   * is no such run. Thrown (as a rejection) with {@link StoreClosedError} when the store is closed, and with the
   * store's error when the database cannot be reached.
   */
  claimRun(name: string, expectedEpoch: number, claim: RunClaim): Promise<RunRecord | undefined>;
  /**
   * Renews the lease of the driver holding the run at `epoch` (an `orphaned` run still at that epoch is
   * `running` again: its driver was only slow), in one compare-and-set on the epoch.
   *
   * Resolves to `true` when the lease now runs `leaseMs` from now; to `false` when the run has another epoch
   * (it was taken over: the caller must stop driving it, and this instance drops its pending and later writes
   * to the run) or does not exist. Thrown (as a rejection) with {@link StoreClosedError} when the store is
   * closed, and with the store's error when the database cannot be reached (the caller retries; the lease is
   * long enough for several tries).
   */
  renewLease(name: string, epoch: number, leaseMs: number): Promise<boolean>;
  /**
   * Marks the run `orphaned` if it is still `running` at `epoch` (so a run that was just claimed again is left
   * alone), in one compare-and-set.
   *
   * Resolves to `true` when it did; to `false` when the run is not `running` at that epoch (or does not exist).
   * Thrown (as a rejection) with {@link StoreClosedError} when the store is closed.
   */
  markOrphaned(name: string, epoch: number): Promise<boolean>;

  getRun(name: string): Promise<RunRecord | undefined>;
  /** Encoded inputs of the run's root. */
  getRunInputs(name: string): Promise<string | undefined>;
  listRuns(query?: ListRunsQuery): Promise<RunRecord[]>;
  getAction(runName: string, actionName: string): Promise<ActionRecord | undefined>;
  getActionIO(runName: string, actionName: string): Promise<ActionIO | undefined>;
  listActions(runName: string, query?: ListActionsQuery): Promise<ActionRecord[]>;
  countActions(runName: string): Promise<ActionCounts>;
  /** Per (parent, group) counts and expected totals: the folded nodes of a run's tree. */
  listGroups(runName: string): Promise<GroupSummary[]>;
  /**
   * The causes of failure of one fan-out's members (the children of `query.parentName` in `query.group`) that
   * `failed` or `timed_out`: grouped by (error code, masked message), largest first (then in the order the
   * first member of each failed). The stores keep each action's cause in columns of its own, written with the
   * action, so this is one indexed query that reads the failed members only, however large the fan-out.
   *
   * Thrown (as a rejection) with a `TypeError` when `parentName` or `group` is not a string.
   */
  listCauses(runName: string, query: ListCausesQuery): Promise<FailureCause[]>;
  /**
   * The attempts of an action, by attempt number: the attempt records written for it or, when there are none,
   * the first attempt implied by the action record ({@link impliedFirstAttempt}), or `[]`.
   */
  listAttempts(runName: string, actionName: string): Promise<AttemptRecord[]>;
  /** Log lines in the order written; all of the run when `actionName` is omitted. */
  listLogs(runName: string, actionName?: string, query?: ListLogsQuery): Promise<LogLine[]>;
  /**
   * One page of a run's log lines, every action's, after the cursor `query.afterSeq`, in write order (by
   * {@link RunLogLine.seq}), each with its action's short name and item index: what a reader of run-wide logs pages through and
   * polls, never reading a line twice. Write order is time order for the lines of one process; lines of several
   * processes (distributed workers) interleave in the order their commits landed.
   *
   * **No line is skipped by a poller.** A line becomes readable only after every line of the same run with a
   * lower `seq` (SQLite commits one at a time; the Postgres store takes a per-run advisory lock before it inserts
   * a run's lines, held until its commit), so a reader that asks again after the last `seq` it saw gets every
   * line committed since. An index on (run, seq) keeps each page one index range, however large the run or the
   * store.
   *
   * With `query.beforeSeq`, the page is the last `limit` lines between the two cursors instead: one index range
   * read backwards, so that a reader can open a large run at its end and page towards its start.
   *
   * Resolves to at most `limit` lines (`[]` past the end, or for no such run). Thrown (as a rejection) with a
   * `RangeError` when `afterSeq` or `beforeSeq` is not a non-negative integer or `limit` not an integer from 1 to
   * {@link MAX_RUN_LOGS_PAGE}, and with {@link StoreClosedError} when the store is closed.
   */
  listRunLogs(runName: string, query?: RunLogsQuery): Promise<RunLogLine[]>;
  /** How many log lines the run (or one of its actions) has. */
  countLogs(runName: string, actionName?: string): Promise<number>;
  getCacheEntry(key: string): Promise<CacheEntry | undefined>;
  /**
   * Records a request to abort the run, or only its action `actionName` (and that action's descendants), for
   * whichever processes drive them: they find it with {@link listAbortRequests}. The request carries the run's
   * epoch at that moment ({@link AbortRequest.runEpoch}) and the next sequence number. Asking again adds
   * another request (applying one twice is harmless).
   *
   * Resolves once the request is durable. Thrown (as a rejection) with a `RangeError` when there is no such run
   * (the action name is not checked), with {@link StoreClosedError} when the store is closed.
   */
  requestAbort(runName: string, reason: string, actionName?: string): Promise<void>;
  /**
   * The abort requests of `runNames` with a sequence number above `afterSeq` (default 0: all of them), in
   * sequence order. A read, not a take: requests stay in the store, so that every process driving a part of a
   * run sees them, and a reader polls with the highest `seq` it has seen. Requests are committed in sequence
   * order (the Postgres store serializes them under an advisory lock), so such a reader never skips one.
   *
   * **Recovery.** A driver applies only the requests whose {@link AbortRequest.runEpoch} is at least the epoch
   * of its own claim on the run: a run recovered with a raised epoch does not abort itself again because of a
   * request that an earlier driver applied (or could not apply before it died).
   *
   * Resolves to the requests (`[]` for no runs). Thrown (as a rejection) with {@link StoreClosedError} when the
   * store is closed.
   */
  listAbortRequests(runNames: readonly string[], afterSeq?: number): Promise<AbortRequest[]>;
  /**
   * Which of `actionNames` (actions of `runName`) have ended: the records of those that are terminal
   * (`succeeded`, `failed`, `aborted`, `timed_out`), in creation order; names that are missing or still queued or
   * running are left out. What a waiting parent reads, as a backstop to wake-ups, in one query per call on the
   * SQL stores (however many names). With `withOutputs`, each record carries its encoded outputs too (what a waiting parent
   * hands on), in the same query. Reads see every earlier write of this instance.
   *
   * Thrown (as a rejection) with {@link StoreClosedError} when the store is closed.
   */
  endedAmong(runName: string, actionNames: readonly string[], options?: EndedAmongOptions): Promise<EndedAction[]>;
  /** Deletes every cache entry; resolves to how many were deleted. */
  clearCache(): Promise<number>;

  /** Flushes and releases the store's resources. The store cannot be used afterwards. */
  close(): Promise<void>;
}

/**
 * The first attempt of an action that has no attempt records of its own: attempt 1 with the action's phase,
 * times and error, when the action made exactly one attempt and started it; otherwise `undefined` (an action
 * that made no attempt, such as a cache hit or one still waiting for a slot, has no attempts).
 *
 * @example
 * ```ts
 * impliedFirstAttempt({ ...action, phase: 'succeeded', attempts: 1, startedAt: 10, endedAt: 12 });
 * // { runName, actionName: action.name, attempt: 1, phase: 'succeeded', startedAt: 10, endedAt: 12, error: null,
 * //   worker: null }
 * ```
 */
export function impliedFirstAttempt(action: ActionRecord, worker: string | null = null): AttemptRecord | undefined {
  if (action.attempts !== 1 || action.startedAt === null) return undefined;
  return {
    runName: action.runName,
    actionName: action.name,
    attempt: 1,
    phase: action.phase,
    startedAt: action.startedAt,
    endedAt: action.endedAt,
    error: action.error,
    worker,
  };
}

/**
 * The {@link ActionRecord} fields of `a`, picked by name: what a reader gets, without the extra properties of
 * what was written (an {@link ActionWrite}'s inputs and outputs).
 */
export function pickActionRecord(a: ActionRecord): ActionRecord {
  return {
    runName: a.runName,
    name: a.name,
    parentName: a.parentName,
    taskName: a.taskName,
    shortName: a.shortName,
    group: a.group,
    itemIndex: a.itemIndex ?? null,
    phase: a.phase,
    cacheHit: a.cacheHit,
    attempts: a.attempts,
    startedAt: a.startedAt,
    endedAt: a.endedAt,
    error: a.error,
  };
}

/** The {@link AttemptRecord} fields of `a`, picked by name. */
export function pickAttempt(a: AttemptRecord): AttemptRecord {
  return {
    runName: a.runName,
    actionName: a.actionName,
    attempt: a.attempt,
    phase: a.phase,
    startedAt: a.startedAt,
    endedAt: a.endedAt,
    error: a.error,
    worker: a.worker ?? null,
  };
}

/**
 * The counts of a group as the progress of its items: when its maps will run `expected` items in all, `total` is
 * that number and the items not started yet count as `queued` (e.g. 40 of a 200-item map done, 10 running: total
 * 200, queued 150, not 50 and 0).
 *
 * @example
 * ```ts
 * countsOfItems({ ...emptyCounts(), total: 50, succeeded: 40, running: 10 }, 200); // total 200, queued 150
 * ```
 */
export function countsOfItems(counts: ActionCounts, expected: number | null | undefined): ActionCounts {
  if (expected == null || expected <= counts.total) return counts;
  return { ...counts, total: expected, queued: counts.queued + (expected - counts.total) };
}

/** All-zero counts. */
export function emptyCounts(): ActionCounts {
  return { total: 0, queued: 0, running: 0, succeeded: 0, failed: 0, aborted: 0, timed_out: 0, cached: 0 };
}

/**
 * Thrown by {@link RunStore.createRun} when a run of that name already exists. Every store rejects with it, so
 * the caller can tell a name clash from a storage failure.
 *
 * @example
 * ```ts
 * try {
 *   await store.createRun(run);
 * } catch (e) {
 *   if (e instanceof RunAlreadyExistsError) run = { ...run, name: nextName() };
 *   else throw e;
 * }
 * ```
 */
export class RunAlreadyExistsError extends RuntimeUserError {
  /** The name that is taken. */
  readonly runName: string;
  constructor(runName: string, options: RuntimeErrorOptions = {}) {
    super('RunAlreadyExistsError', `a run named '${runName}' already exists; choose another run name`, options);
    this.runName = runName;
  }
}

export { StoreClosedError, StoreUnavailableError } from '../errors.js';
