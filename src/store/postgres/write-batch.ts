/**
 * The pending writes of a buffered store, coalesced per run, action, attempt, cache key and map call: what one
 * group commit writes. Written for the Postgres store; it knows nothing of SQL.
 * @module
 */
import type { AttemptRecord, LogLine } from '../../types.js';
import { pickAttempt, type ActionWrite, type CacheEntry, type MapTotal, type RunUpdate } from '../run-store.js';
import { copyActionWrite, type Mutable } from '../sql-rows.js';

/** A caller of `durable()` waiting for a batch to be committed. */
export interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * One group of pending writes. A later write to the same action (attempt, run, cache key, map call) replaces
 * the pending one in place, keeping inputs, their hash and outputs that the later write leaves `undefined`.
 * Maps keep insertion order, so actions are written in the order they were first written (creation order).
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
  /** Pending actions by run, then by name: the batch's own copies. */
  readonly actions = new Map<string, Map<string, Mutable<ActionWrite>>>();
  /** Pending attempts by run, then by `action\0attempt`. */
  readonly attempts = new Map<string, Map<string, AttemptRecord>>();
  readonly runUpdates = new Map<string, Mutable<RunUpdate>>();
  logs: LogLine[] = [];
  readonly cacheEntries = new Map<string, CacheEntry>();
  /** By `run\0parent\0group\0seq`. */
  readonly mapTotals = new Map<string, MapTotal>();
  /** Callers of `durable()` that this batch's commit releases. */
  waiters: Waiter[] = [];
  /** Rows pending in all of the above. */
  rows = 0;

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
      return;
    }
    // parent_name and grp stay as first written: an action's place in the tree is fixed by its first write.
    pending.taskName = action.taskName;
    pending.shortName = action.shortName;
    pending.phase = action.phase;
    pending.cacheHit = action.cacheHit;
    pending.attempts = action.attempts;
    pending.startedAt = action.startedAt;
    pending.endedAt = action.endedAt;
    pending.error = action.error;
    if (action.inputs !== undefined) pending.inputs = action.inputs;
    if (action.inputsHash !== undefined) pending.inputsHash = action.inputsHash;
    if (action.outputs !== undefined) pending.outputs = action.outputs;
  }

  putAttempt(write: AttemptRecord): void {
    const attempt = pickAttempt(write);
    let run = this.attempts.get(attempt.runName);
    if (run === undefined) {
      run = new Map();
      this.attempts.set(attempt.runName, run);
    }
    const key = `${attempt.actionName}\0${attempt.attempt}`;
    if (!run.has(key)) this.rows++;
    run.set(key, attempt);
  }

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

  appendLogs(lines: readonly LogLine[]): void {
    for (const line of lines) this.logs.push({ ...line });
    this.rows += lines.length;
  }

  putCacheEntry(entry: CacheEntry): void {
    if (!this.cacheEntries.has(entry.key)) this.rows++;
    this.cacheEntries.set(entry.key, { ...entry });
  }

  putMapTotal(m: MapTotal): void {
    const { runName, parentName, group, seq, total } = m;
    const key = `${runName}\0${parentName}\0${group}\0${seq}`;
    if (!this.mapTotals.has(key)) this.rows++;
    this.mapTotals.set(key, { runName, parentName, group, seq, total });
  }

  /**
   * Applies the writes of `newer` (made after this batch's) on top of this one, waiters included: how a commit
   * that failed keeps its writes, in order, under the ones made while it ran.
   */
  absorb(newer: WriteBatch): void {
    for (const run of newer.actions.values()) for (const a of run.values()) this.putAction(a);
    for (const run of newer.attempts.values()) for (const t of run.values()) this.putAttempt(t);
    for (const [name, u] of newer.runUpdates) this.updateRun(name, u);
    this.appendLogs(newer.logs);
    for (const c of newer.cacheEntries.values()) this.putCacheEntry(c);
    for (const m of newer.mapTotals.values()) this.putMapTotal(m);
    this.waiters.push(...newer.waiters);
  }

  /** The runs that have pending writes (cache entries aside). */
  runs(): Set<string> {
    const runs = new Set<string>([...this.actions.keys(), ...this.attempts.keys(), ...this.runUpdates.keys()]);
    for (const line of this.logs) runs.add(line.runName);
    for (const m of this.mapTotals.values()) runs.add(m.runName);
    return runs;
  }

  /** Forgets every pending write of `run` (cache entries it produced too); returns how many rows. */
  dropRun(run: string): number {
    const before = this.rows;
    this.rows -= this.actions.get(run)?.size ?? 0;
    this.actions.delete(run);
    this.rows -= this.attempts.get(run)?.size ?? 0;
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
