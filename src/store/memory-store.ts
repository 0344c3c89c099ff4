/**
 * A {@link RunStore} in plain `Map`s, for unit tests and throwaway runs. Nothing survives the process.
 * @module
 */
import {
  isTerminal,
  type ActionCounts,
  type ActionError,
  type ActionRecord,
  type AttemptRecord,
  type LogLine,
  type RunRecord,
} from '../types.js';
import {
  RunAlreadyExistsError,
  StoreClosedError,
  type AbortRequest,
  type ActionClaim,
  type ClaimedAction,
  type EndedAction,
  type EndedAmongOptions,
  emptyCounts,
  impliedFirstAttempt,
  pickActionRecord,
  pickAttempt,
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
} from './run-store.js';
import { checkActionFilters, checkCausesQuery, checkTail, pageOf, runLogsPage } from './paging.js';
import { causeOf, type ErrorCause } from '../internal/error-cause.js';

interface StoredRun {
  record: RunRecord;
  readonly inputs: string;
  /** Abort requests, in the order made. */
  readonly abortRequests: AbortRequest[];
  /** Actions by name, in creation order (a `Map` keeps insertion order). */
  readonly actions: Map<string, StoredAction>;
  /** Attempts by `action\0attempt`. */
  readonly attempts: Map<string, AttemptRecord>;
  /** In the order written, each with its `seq` (rising across the store). */
  readonly logs: SeqLogLine[];
  /** Map totals by `parent\0group\0seq`. */
  readonly mapTotals: Map<string, MapTotal>;
}

type SeqLogLine = LogLine & { readonly seq: number };

interface StoredAction {
  readonly record: ActionRecord;
  readonly inputs: string | null;
  readonly inputsHash: string | null;
  readonly outputs: string | null;
  /** The epoch of the write (or claim) that last changed the action. */
  readonly epoch: number;
  /** The last claim's owner and lease, if it was ever claimed. */
  readonly owner: string | null;
  readonly leaseExpiresAt: number | null;
  /** Claims that found it held by an earlier claim never given back, and those claims' owners (see the SQL stores). */
  readonly takeovers: number;
  readonly lostOwners: readonly string[];
  /** The last {@link ActionWrite.worker} written: the worker of the attempt implied by the record. */
  readonly worker: string | null;
  /** Its cause of failure, as the SQL stores keep it: computed with each write, `null` unless it failed. */
  readonly cause: ErrorCause | null;
}

/**
 * A {@link RunStore} that keeps everything in memory. Writes are applied at once, so `flush()` resolves
 * immediately; values are copied in and out, so callers never share state with the store. It behaves like the
 * SQLite store in every observable way (the same conformance suite runs against both).
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * await store.createRun({ name: 'r1', taskName: 'env.main', phase: 'queued', mode: 'local', createdAt: Date.now(),
 *   startedAt: null, endedAt: null, error: null, labels: {}, module: null, owner: null, inputs: '[]' });
 * store.updateRun('r1', { phase: 'running', startedAt: Date.now() });
 * (await store.getRun('r1'))?.phase; // 'running'
 * ```
 */
export class MemoryStore implements RunStore {
  /** Always `'memory:'`. */
  readonly description = 'memory:';

  readonly #runs = new Map<string, StoredRun>();
  readonly #cache = new Map<string, CacheEntry>();
  /** The sequence number of the last abort request. */
  #abortSeq = 0;
  /** The seq of the last log line appended (see listRunLogs). */
  #logSeq = 0;
  #closed = false;

  async createRun(run: RunWrite): Promise<void> {
    this.#check();
    const existing = this.#runs.get(run.name);
    if (existing !== undefined && this.#created(existing)) throw new RunAlreadyExistsError(run.name);
    this.#runs.set(run.name, {
      record: copyRun({
        ...run,
        epoch: run.epoch ?? 1,
        heartbeatAt: run.heartbeatAt ?? null,
        leaseExpiresAt: run.leaseExpiresAt ?? null,
      }),
      inputs: run.inputs,
      actions: existing?.actions ?? new Map<string, StoredAction>(),
      attempts: existing?.attempts ?? new Map<string, AttemptRecord>(),
      logs: existing?.logs ?? [],
      mapTotals: existing?.mapTotals ?? new Map<string, MapTotal>(),
      abortRequests: existing?.abortRequests ?? [],
    });
  }

  updateRun(name: string, update: RunUpdate): void {
    this.#check();
    const run = this.#runs.get(name);
    // Like an SQL UPDATE that matches no row: an update of an unknown run changes nothing.
    if (run === undefined) return;
    const r = run.record;
    run.record = {
      ...r,
      phase: update.phase ?? r.phase,
      startedAt: update.startedAt === undefined ? r.startedAt : update.startedAt,
      endedAt: update.endedAt === undefined ? r.endedAt : update.endedAt,
      error: update.error === undefined ? r.error : copyError(update.error),
      owner: update.owner === undefined ? r.owner : update.owner,
    };
  }

  putAction(action: ActionWrite): void {
    this.#check();
    const run = this.#runOrNew(action.runName);
    const prev = run.actions.get(action.name);
    // One instance drives every run it holds: the default epoch is the run's.
    const epoch = action.epoch ?? (this.#created(run) ? run.record.epoch : 0);
    if (prev !== undefined && refusedWrite(prev, action.phase, epoch)) return;
    const record = copyAction(action);
    run.actions.set(action.name, {
      // As in the SQL stores, an action's place in the tree is fixed by its first write.
      record:
        prev === undefined
          ? record
          : {
              ...record,
              parentName: prev.record.parentName,
              group: prev.record.group,
              itemIndex: prev.record.itemIndex,
            },
      inputs: action.inputs ?? prev?.inputs ?? null,
      inputsHash: action.inputsHash ?? prev?.inputsHash ?? null,
      outputs: action.outputs ?? prev?.outputs ?? null,
      epoch,
      owner: prev?.owner ?? null,
      leaseExpiresAt: prev?.leaseExpiresAt ?? null,
      takeovers: prev?.takeovers ?? 0,
      lostOwners: prev?.lostOwners ?? [],
      worker: action.worker ?? prev?.worker ?? null,
      cause: causeOf(action),
    });
  }

  putAttempt(attempt: AttemptRecord): void {
    this.#check();
    const run = this.#runOrNew(attempt.runName);
    run.attempts.set(`${attempt.actionName}\0${attempt.attempt}`, copyAttempt(attempt));
  }

  appendLogs(lines: readonly LogLine[]): void {
    this.#check();
    for (const line of lines) this.#runOrNew(line.runName).logs.push({ ...copyLog(line), seq: ++this.#logSeq });
  }

  putCacheEntry(entry: CacheEntry): void {
    this.#check();
    this.#cache.set(entry.key, copyCacheEntry(entry));
  }

  putMapTotal(m: MapTotal): void {
    this.#check();
    const { runName, parentName, group, seq, total } = m;
    this.#runOrNew(runName).mapTotals.set(`${parentName}\0${group}\0${seq}`, {
      runName,
      parentName,
      group,
      seq,
      total,
    });
  }

  async flush(): Promise<void> {
    this.#check();
  }

  /** Writes are applied at once: durable (for as long as the process lives) when made. */
  async durable(): Promise<void> {
    this.#check();
  }

  async claimAction(runName: string, actionName: string, claim: ActionClaim): Promise<ClaimedAction | undefined> {
    this.#check();
    const prev = this.#runs.get(runName)?.actions.get(actionName);
    if (prev === undefined || isTerminal(prev.record.phase)) return undefined;
    const leaseExpiresAt = Date.now() + claim.leaseMs;
    const claimed: StoredAction = {
      ...prev,
      record: { ...prev.record, phase: 'running' },
      epoch: prev.epoch + 1,
      owner: claim.owner,
      leaseExpiresAt,
      takeovers: prev.takeovers + (prev.owner === null ? 0 : 1),
      lostOwners: prev.owner === null ? prev.lostOwners : [...prev.lostOwners, prev.owner],
    };
    this.#runs.get(runName)?.actions.set(actionName, claimed);
    return {
      ...copyAction(claimed.record),
      epoch: claimed.epoch,
      owner: claim.owner,
      leaseExpiresAt,
      inputs: claimed.inputs,
      takeovers: claimed.takeovers,
      lostOwners: claimed.lostOwners,
    };
  }

  async releaseAction(runName: string, actionName: string, epoch: number): Promise<boolean> {
    this.#check();
    const actions = this.#runs.get(runName)?.actions;
    const prev = actions?.get(actionName);
    if (actions === undefined || prev === undefined || prev.epoch !== epoch || isTerminal(prev.record.phase))
      return false;
    actions.set(actionName, { ...prev, owner: null });
    return true;
  }

  async claimRun(name: string, expectedEpoch: number, claim: RunClaim): Promise<RunRecord | undefined> {
    this.#check();
    const run = this.#runs.get(name);
    if (run === undefined || !this.#created(run) || run.record.epoch !== expectedEpoch) return undefined;
    const now = Date.now();
    run.record = {
      ...run.record,
      phase: 'running',
      endedAt: null,
      error: null,
      owner: claim.owner,
      epoch: expectedEpoch + 1,
      heartbeatAt: now,
      leaseExpiresAt: now + claim.leaseMs,
    };
    return copyRun(run.record);
  }

  async renewLease(name: string, epoch: number, leaseMs: number): Promise<boolean> {
    this.#check();
    const run = this.#runs.get(name);
    if (run === undefined || !this.#created(run) || run.record.epoch !== epoch) return false;
    const now = Date.now();
    const phase = run.record.phase === 'orphaned' ? 'running' : run.record.phase;
    run.record = { ...run.record, phase, heartbeatAt: now, leaseExpiresAt: now + leaseMs };
    return true;
  }

  async markOrphaned(name: string, epoch: number): Promise<boolean> {
    this.#check();
    const run = this.#runs.get(name);
    if (run === undefined || run.record.phase !== 'running' || run.record.epoch !== epoch) return false;
    run.record = { ...run.record, phase: 'orphaned' };
    return true;
  }

  async getRun(name: string): Promise<RunRecord | undefined> {
    this.#check();
    const run = this.#runs.get(name);
    return run === undefined || !this.#created(run) ? undefined : copyRun(run.record);
  }

  async requestAbort(runName: string, reason: string, actionName?: string): Promise<void> {
    this.#check();
    const run = this.#runs.get(runName);
    if (run === undefined || !this.#created(run)) throw new RangeError(`requestAbort: no run named ${runName}`);
    run.abortRequests.push({
      seq: ++this.#abortSeq,
      runName,
      actionName: actionName ?? null,
      reason,
      runEpoch: run.record.epoch,
      requestedAt: Date.now(),
    });
  }

  async listAbortRequests(runNames: readonly string[], afterSeq = 0): Promise<AbortRequest[]> {
    this.#check();
    const found: AbortRequest[] = [];
    for (const runName of new Set(runNames)) {
      for (const r of this.#runs.get(runName)?.abortRequests ?? []) if (r.seq > afterSeq) found.push({ ...r });
    }
    return found.sort((a, b) => a.seq - b.seq);
  }

  async endedAmong(
    runName: string,
    actionNames: readonly string[],
    options: EndedAmongOptions = {},
  ): Promise<EndedAction[]> {
    this.#check();
    const run = this.#runs.get(runName);
    if (run === undefined) return [];
    const wanted = new Set(actionNames);
    const ended: EndedAction[] = [];
    for (const [name, a] of run.actions) {
      if (!wanted.has(name) || !isTerminal(a.record.phase)) continue;
      ended.push(options.withOutputs === true ? { ...copyAction(a.record), outputs: a.outputs } : copyAction(a.record));
    }
    return ended;
  }

  async getRunInputs(name: string): Promise<string | undefined> {
    this.#check();
    const run = this.#runs.get(name);
    return run === undefined || !this.#created(run) ? undefined : run.inputs;
  }

  async listRuns(query: ListRunsQuery = {}): Promise<RunRecord[]> {
    this.#check();
    const { offset, limit } = pageOf(query, 50);
    return [...this.#runs.values()]
      .filter((run) => this.#created(run))
      .map((run) => run.record)
      .filter((r) => query.phase === undefined || r.phase === query.phase)
      .filter((r) => query.taskName === undefined || r.taskName === query.taskName)
      .sort((a, b) => b.createdAt - a.createdAt || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0))
      .slice(offset, offset + limit)
      .map(copyRun);
  }

  async getAction(runName: string, actionName: string): Promise<ActionRecord | undefined> {
    this.#check();
    const a = this.#runs.get(runName)?.actions.get(actionName);
    return a === undefined ? undefined : copyAction(a.record);
  }

  async getActionIO(runName: string, actionName: string): Promise<ActionIO | undefined> {
    this.#check();
    const a = this.#runs.get(runName)?.actions.get(actionName);
    return a === undefined ? undefined : { inputs: a.inputs, outputs: a.outputs };
  }

  async listActions(runName: string, query: ListActionsQuery = {}): Promise<ActionRecord[]> {
    this.#check();
    const { offset, limit } = pageOf(query, Infinity);
    checkActionFilters(query);
    const run = this.#runs.get(runName);
    if (run === undefined) return [];
    const end = offset + limit;
    const out: ActionRecord[] = [];
    let matched = 0;
    const text = query.text?.toLowerCase();
    // The cursor: skip up to and including the action named `after` (none matches when the run has no such one).
    let passed = query.after === undefined;
    for (const stored of run.actions.values()) {
      const a = stored.record;
      if (!passed) {
        passed = a.name === query.after;
        continue;
      }
      if (query.parentName !== undefined && a.parentName !== query.parentName) continue;
      if (query.group !== undefined && a.group !== query.group) continue;
      if (query.phase !== undefined && a.phase !== query.phase) continue;
      if (query.failed === true && a.phase !== 'failed' && a.phase !== 'timed_out') continue;
      if (query.itemIndex !== undefined && a.itemIndex !== query.itemIndex) continue;
      if (query.cause !== undefined && !sameCause(stored.cause, query.cause)) continue;
      if (text !== undefined && !containsText(stored, text)) continue;
      if (matched >= end) break;
      if (matched >= offset) out.push(copyAction(a));
      matched++;
    }
    return out;
  }

  async countActions(runName: string): Promise<ActionCounts> {
    this.#check();
    const counts = mutableCounts();
    for (const { record } of this.#runs.get(runName)?.actions.values() ?? []) addTo(counts, record);
    return counts;
  }

  async listGroups(runName: string): Promise<GroupSummary[]> {
    this.#check();
    const groups = new Map<string, GroupTally>();
    const run = this.#runs.get(runName);
    const expected = new Map<string, number>();
    for (const m of run?.mapTotals.values() ?? []) {
      const key = `${m.parentName}\0${m.group}`;
      expected.set(key, (expected.get(key) ?? 0) + m.total);
    }
    for (const { record: a } of run?.actions.values() ?? []) {
      if (a.group === null || a.parentName === null) continue;
      const key = `${a.parentName}\0${a.group}`;
      let g = groups.get(key);
      if (g === undefined) {
        g = {
          parentName: a.parentName,
          group: a.group,
          counts: mutableCounts(),
          expected: expected.get(key) ?? null,
          startedAt: null,
          endedAt: null,
        };
        groups.set(key, g);
      }
      addTo(g.counts, a);
      if (a.startedAt !== null && (g.startedAt === null || a.startedAt < g.startedAt)) g.startedAt = a.startedAt;
      if (a.endedAt !== null && (g.endedAt === null || a.endedAt > g.endedAt)) g.endedAt = a.endedAt;
    }
    return [...groups.values()];
  }

  async listCauses(runName: string, query: ListCausesQuery): Promise<FailureCause[]> {
    this.#check();
    checkCausesQuery(query);
    const causes = new Map<string, { code: string; pattern: string; count: number; example: string }>();
    for (const { record: a, cause } of this.#runs.get(runName)?.actions.values() ?? []) {
      if (cause === null || a.parentName !== query.parentName || a.group !== query.group) continue;
      const key = `${cause.code}\0${cause.pattern}`;
      const seen = causes.get(key);
      if (seen === undefined) causes.set(key, { ...cause, count: 1, example: a.name });
      else seen.count++;
    }
    // A stable sort: equal counts stay in the order their first member was created.
    return [...causes.values()].sort((x, y) => y.count - x.count);
  }

  async listAttempts(runName: string, actionName: string): Promise<AttemptRecord[]> {
    this.#check();
    const run = this.#runs.get(runName);
    const out: AttemptRecord[] = [];
    for (const a of run?.attempts.values() ?? []) {
      if (a.actionName === actionName) out.push(copyAttempt(a));
    }
    if (out.length === 0) {
      const action = run?.actions.get(actionName);
      const first = action === undefined ? undefined : impliedFirstAttempt(action.record, action.worker);
      return first === undefined ? [] : [copyAttempt(first)];
    }
    return out.sort((x, y) => x.attempt - y.attempt);
  }

  async listLogs(runName: string, actionName?: string, query: ListLogsQuery = {}): Promise<LogLine[]> {
    const tail = checkTail(query.tail);
    this.#check();
    const logs = this.#runs.get(runName)?.logs ?? [];
    const mine = logs.filter((l) => actionName === undefined || l.actionName === actionName);
    return (tail === undefined ? mine : tail === 0 ? [] : mine.slice(-tail)).map(copyLog);
  }

  async listRunLogs(runName: string, query: RunLogsQuery = {}): Promise<RunLogLine[]> {
    const { afterSeq, beforeSeq, limit } = runLogsPage(query);
    this.#check();
    const run = this.#runs.get(runName);
    if (run === undefined) return [];
    // The lines are in seq order: find the first after the cursor (and the first at or past the other) by bisection.
    const start = firstAbove(run.logs, afterSeq);
    const end = beforeSeq === undefined ? run.logs.length : firstAbove(run.logs, beforeSeq - 1);
    const page =
      beforeSeq === undefined
        ? run.logs.slice(start, start + limit)
        : run.logs.slice(Math.max(start, end - limit), end);
    return page.map((l) => {
      const action = run.actions.get(l.actionName)?.record;
      return { ...copyLog(l), seq: l.seq, shortName: action?.shortName ?? null, itemIndex: action?.itemIndex ?? null };
    });
  }

  async countLogs(runName: string, actionName?: string): Promise<number> {
    this.#check();
    const logs = this.#runs.get(runName)?.logs ?? [];
    return actionName === undefined ? logs.length : logs.filter((l) => l.actionName === actionName).length;
  }

  async getCacheEntry(key: string): Promise<CacheEntry | undefined> {
    this.#check();
    const e = this.#cache.get(key);
    return e === undefined ? undefined : copyCacheEntry(e);
  }

  async clearCache(): Promise<number> {
    this.#check();
    const n = this.#cache.size;
    this.#cache.clear();
    return n;
  }

  /** Resolves at once: a memory store is ready when constructed. */
  ready(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #check(): void {
    if (this.#closed) throw new StoreClosedError(this.description);
  }

  /**
   * The entry for a run, made on demand when actions, attempts or logs arrive before (or without) `createRun`,
   * as the SQL stores accept such rows too. Such a run stays invisible to `getRun`/`listRuns`.
   */
  #runOrNew(name: string): StoredRun {
    let run = this.#runs.get(name);
    if (run === undefined) {
      run = {
        record: PLACEHOLDER_RUN,
        inputs: '',
        actions: new Map(),
        attempts: new Map(),
        logs: [],
        mapTotals: new Map(),
        abortRequests: [],
      };
      this.#runs.set(name, run);
    }
    return run;
  }

  #created(run: StoredRun): boolean {
    return run.record !== PLACEHOLDER_RUN;
  }
}

/**
 * The guard of {@link MemoryStore.putAction} (the SQL stores' upsert has the same): a write of an older epoch
 * than the stored action's, or one that would make a terminal action unfinished at the same epoch, is refused.
 */
function refusedWrite(prev: StoredAction, phase: ActionRecord['phase'], epoch: number): boolean {
  return prev.epoch > epoch || (prev.epoch === epoch && isTerminal(prev.record.phase) && !isTerminal(phase));
}

/** Marks a run entry that holds rows but was never created. */
const PLACEHOLDER_RUN: RunRecord = Object.freeze({
  name: '',
  taskName: '',
  phase: 'queued',
  mode: 'local',
  createdAt: 0,
  startedAt: null,
  endedAt: null,
  error: null,
  labels: {},
  options: {},
  module: null,
  owner: null,
  epoch: 0,
  heartbeatAt: null,
  leaseExpiresAt: null,
});

type MutableCounts = { -readonly [K in keyof ActionCounts]: number };

/** A {@link GroupSummary} being added up. */
type GroupTally = { -readonly [K in keyof GroupSummary]: K extends 'counts' ? MutableCounts : GroupSummary[K] };

function mutableCounts(): MutableCounts {
  return emptyCounts();
}

function addTo(counts: MutableCounts, a: ActionRecord): void {
  counts.total++;
  counts[a.phase]++;
  if (a.cacheHit) counts.cached++;
}

/** Errors go through JSON as in the SQL stores, so both return the same shape (no `undefined` fields). */
function copyError(error: ActionError | null): ActionError | null {
  return error === null ? null : (JSON.parse(JSON.stringify(error)) as ActionError);
}

// The copies pick the record's fields by name, as a SQL row would: extra properties of what was written
// (such as an ActionWrite's inputs) never show up in what is read.

function copyRun(r: RunRecord): RunRecord {
  return {
    name: r.name,
    taskName: r.taskName,
    phase: r.phase,
    mode: r.mode,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    error: copyError(r.error),
    labels: { ...r.labels },
    options: JSON.parse(JSON.stringify(r.options ?? {})) as RunRecord['options'],
    module: r.module,
    owner: r.owner,
    epoch: r.epoch,
    heartbeatAt: r.heartbeatAt,
    leaseExpiresAt: r.leaseExpiresAt,
  };
}

function sameCause(a: ErrorCause | null, b: ErrorCause): boolean {
  return a !== null && a.code === b.code && a.pattern === b.pattern;
}

/** Whether the action's encoded inputs or error message contain `lower` (lower-cased), ignoring case. */
function containsText(a: StoredAction, lower: string): boolean {
  return (
    (a.inputs?.toLowerCase().includes(lower) ?? false) ||
    (a.record.error?.message.toLowerCase().includes(lower) ?? false)
  );
}

function copyAction(a: ActionRecord): ActionRecord {
  return { ...pickActionRecord(a), error: copyError(a.error) };
}

function copyAttempt(a: AttemptRecord): AttemptRecord {
  return { ...pickAttempt(a), error: copyError(a.error) };
}

/** The index of the first of `logs` (in seq order) whose seq is above `seq`, by bisection. */
function firstAbove(logs: readonly SeqLogLine[], seq: number): number {
  let lo = 0;
  let hi = logs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((logs[mid]?.seq ?? Infinity) <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function copyLog(l: LogLine): LogLine {
  return {
    runName: l.runName,
    actionName: l.actionName,
    attempt: l.attempt,
    at: l.at,
    stream: l.stream,
    line: l.line,
  };
}

function copyCacheEntry(e: CacheEntry): CacheEntry {
  return {
    key: e.key,
    taskName: e.taskName,
    outputs: e.outputs,
    createdAt: e.createdAt,
    runName: e.runName,
    actionName: e.actionName,
  };
}
