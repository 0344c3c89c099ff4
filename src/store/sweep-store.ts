/**
 * What the sweeper of distributed mode needs from a store (see `src/internal/sweeper.ts`): a lock that only one
 * process holds at a time, the unfinished actions of the unfinished remote runs that carry a recorded job, and a
 * log of the sweeps made.
 *
 * Only the Postgres store implements it. The sweeper exists for `flyte worker` processes on many machines that
 * share one store, and its lock is a Postgres advisory lock; the memory and SQLite stores serve one machine,
 * where a vanished Redis job has no sweeper to bring it back (run the workers on Postgres). So this is a narrower
 * interface beside {@link RunStore}, not a part of it: {@link isSweepStore} tells which stores have it.
 * @module
 */
import type { RunStore } from './run-store.js';

/** An unfinished action of an unfinished remote run, with the job recorded for it (`ActionWrite.job`). */
export interface SweepCandidate {
  readonly runName: string;
  readonly actionName: string;
  readonly taskName: string;
  readonly inputsHash: string | null;
  /** The recorded job, as JSON (`ActionWrite.job`). */
  readonly job: string;
}

/** Where a page of candidates ended: the next page starts after it. */
export interface SweepCursor {
  readonly runName: string;
  /** The action's creation order within the store. */
  readonly seq: number;
}

/** A page of {@link SweepCandidate}s. */
export interface SweepPage {
  readonly candidates: readonly SweepCandidate[];
  /** Where the next page starts; `null` once the last page was read. */
  readonly next: SweepCursor | null;
}

/** Options of {@link SweepSession.candidates}. */
export interface SweepQuery {
  /** Only actions whose job was recorded before this time (ms since the epoch): older than the grace period. */
  readonly enqueuedBefore: number;
  /** Start after this action (`null`: from the first). */
  readonly after: SweepCursor | null;
  /** At most this many candidates. */
  readonly limit: number;
}

/** The reads a sweep makes while it holds the sweeper lock (in the lock's transaction). */
export interface SweepSession {
  /**
   * One page of the unfinished (`queued`, `running`) actions of the unfinished remote runs whose job was
   * recorded, in (run, creation) order.
   */
  candidates(query: SweepQuery): Promise<SweepPage>;
  /** Which of `actions` of `runName` are still unfinished now (a read of the committed records). */
  stillUnfinished(runName: string, actionNames: readonly string[]): Promise<Set<string>>;
}

/** What one sweep did, as it reports it to the store's log. */
export interface SweepOutcome {
  /** Candidates read. */
  readonly candidates: number;
  /** The actions whose job was enqueued again, as `run/action`. */
  readonly requeued: readonly string[];
}

/** One sweep, as the store logged it (see {@link SweepStore.listSweeps}). */
export interface SweepRecord extends SweepOutcome {
  /** The sweeping process (`host:pid`). */
  readonly owner: string;
  /**
   * Where the sweep began and ended in one sequence shared by every sweep of the store (numbers taken while the
   * lock was held): two sweeps overlapped if and only if one began between the other's `beganSeq` and `endedSeq`.
   */
  readonly beganSeq: number;
  readonly endedSeq: number;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** A store that can host the sweeper. */
export interface SweepStore {
  /**
   * Runs `sweep` if no other process is sweeping this store now, holding the sweeper lock until it settles, and
   * logs it ({@link listSweeps}). Resolves to what `sweep` resolved to, or `undefined` at once when another
   * process holds the lock (this process does not wait for it). Rejects with what `sweep` threw (nothing is
   * logged then), or with the store's error.
   */
  sweep<T extends SweepOutcome>(owner: string, sweep: (session: SweepSession) => Promise<T>): Promise<T | undefined>;
  /** The last `limit` sweeps logged, oldest first. The store keeps the last {@link SWEEPS_KEPT}. */
  listSweeps(limit?: number): Promise<SweepRecord[]>;
}

/** How many sweeps a store keeps in its log. */
export const SWEEPS_KEPT = 1000;

/** Whether `store` can host the sweeper (only the Postgres store can). */
export function isSweepStore(store: RunStore): store is RunStore & SweepStore {
  const s = store as Partial<SweepStore>;
  return typeof s.sweep === 'function' && typeof s.listSweeps === 'function';
}
