/**
 * The sweeper of distributed mode: enqueues again the unfinished actions of remote runs whose BullMQ job
 * vanished (its key deleted by hand, a Redis restarted without persistence, an enqueue that failed after the
 * record was written). Without it such an action waits for ever, and so does every parent above it.
 *
 * - **One at a time.** Every `flyte worker` runs a sweeper, every {@link SweeperOptions.intervalMs}; each sweep
 *   runs under the store's sweeper lock (a Postgres advisory lock, see {@link SweepStore.sweep}), and a process
 *   that finds it taken skips its turn. Each sweep is logged in the store, with numbers that prove the lock.
 * - **Cheap when there is nothing to do.** A sweep reads the unfinished actions of the unfinished remote runs
 *   whose job was recorded more than {@link SweeperOptions.graceMs} ago, a page of at most
 *   {@link SweeperOptions.batch} at a time (the next sweep goes on where this one stopped), asks Redis which of
 *   them have no job at all (one pipeline per page), reads the records of those again, and enqueues the jobs of
 *   those still unfinished, rebuilt from their record.
 * - **Races it leaves alone:**
 *   - an action recorded `queued` whose enqueue is still in flight: younger than the grace, and if not, the job
 *     id (run + action) makes the second add a no-op while the first job exists;
 *   - a job that completed and was removed just after its action's end was committed: the record is terminal, so
 *     it is no candidate, or it fails the second read;
 *   - a running action whose worker is alive, a parent parked waiting for its children: their job exists (held
 *     and locked);
 *   - a job removed between the second read and the add: it is delivered again, and the worker's claim finds the
 *     action terminal and runs nothing (a duplicate delivery).
 * - **Slots.** The sweeper takes no `maxActionConcurrency` slot: the worker that claims the job takes its slot,
 *   as after a takeover (waiting for one, its lease parked, if the run's slots are all held).
 * @module
 */
import type { ActionJob, Engine } from '../engine/engine.js';
import type { SweepCandidate, SweepCursor, SweepOutcome, SweepSession, SweepStore } from '../store/sweep-store.js';

/** The parts of an action's job that its record does not hold otherwise: what `ActionWrite.job` keeps. */
interface RecordedJob {
  readonly queue: string;
  readonly module: string | null;
  readonly customContext?: Readonly<Record<string, string>>;
  readonly task?: Readonly<Record<string, unknown>>;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/**
 * The fields of an action write that record its job (`ActionWrite.job`, `ActionWrite.enqueuedAt`): written just
 * before the job is enqueued, so that the sweeper can rebuild it.
 */
export function recordedJob(job: ActionJob, now = Date.now()): { job: string; enqueuedAt: number } {
  const recorded: RecordedJob = {
    queue: job.queue,
    module: job.module,
    ...(Object.keys(job.customContext).length === 0 ? {} : { customContext: job.customContext }),
    ...(job.task === undefined ? {} : { task: job.task }),
    ...(job.traceparent === undefined ? {} : { traceparent: job.traceparent }),
    ...(job.tracestate === undefined ? {} : { tracestate: job.tracestate }),
  };
  return { job: JSON.stringify(recorded), enqueuedAt: now };
}

/**
 * The job of a candidate, rebuilt from its record.
 *
 * @throws TypeError when the recorded job is not one that {@link recordedJob} wrote.
 */
export function jobOf(candidate: SweepCandidate): ActionJob {
  let value: unknown;
  try {
    value = JSON.parse(candidate.job);
  } catch (e) {
    throw new TypeError(`the recorded job of ${where(candidate)} is not JSON: ${(e as Error).message}`);
  }
  const rec = value as Partial<RecordedJob> | null;
  if (rec === null || typeof rec !== 'object' || typeof rec.queue !== 'string' || rec.queue === '') {
    throw new TypeError(`the recorded job of ${where(candidate)} has no queue; received ${candidate.job}`);
  }
  return {
    queue: rec.queue,
    runName: candidate.runName,
    actionName: candidate.actionName,
    taskName: candidate.taskName,
    module: typeof rec.module === 'string' ? rec.module : null,
    customContext: rec.customContext ?? {},
    ...(candidate.inputsHash === null ? {} : { inputsHash: candidate.inputsHash }),
    ...(rec.task === undefined ? {} : { task: rec.task }),
    ...(typeof rec.traceparent === 'string' ? { traceparent: rec.traceparent } : {}),
    ...(typeof rec.tracestate === 'string' ? { tracestate: rec.tracestate } : {}),
  };
}

/** Options of {@link Sweeper}. */
export interface SweeperOptions {
  /** The process sweeping, as logged (`host:pid`). */
  readonly owner: string;
  /** How often this process tries to sweep, in ms. @default {@link DEFAULT_SWEEP_INTERVAL_MS} */
  readonly intervalMs?: number;
  /**
   * Actions whose job was recorded less than this long ago are left alone (their enqueue may be in flight), in
   * ms. @default the interval
   */
  readonly graceMs?: number;
  /** Candidates per page (one query, one Redis pipeline). @default 500 */
  readonly batch?: number;
  /** At most this many pages per sweep; the next sweep goes on after them. @default 20 */
  readonly maxPages?: number;
  /** Told when a sweep failed (the store or Redis unreachable...); the next one tries again. @default a warning */
  readonly onError?: (error: Error) => void;
}

/** How often a worker tries to sweep, by default, in ms. */
export const DEFAULT_SWEEP_INTERVAL_MS = 15_000;

/** What {@link Sweeper.sweep} did: `undefined` when another process held the lock. */
export type SweepResult = SweepOutcome | undefined;

/** The sweeper of one process: see the module's documentation. */
export class Sweeper {
  readonly #store: SweepStore;
  readonly #engine: Engine;
  readonly #owner: string;
  readonly #intervalMs: number;
  readonly #graceMs: number;
  readonly #batch: number;
  readonly #maxPages: number;
  readonly #onError: (error: Error) => void;
  /** Where this process's next sweep starts (it stopped there, past {@link SweeperOptions.maxPages}). */
  #cursor: SweepCursor | null = null;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<SweepResult> | undefined;
  #stopped = false;

  constructor(store: SweepStore, engine: Engine, options: SweeperOptions) {
    this.#store = store;
    this.#engine = engine;
    this.#owner = options.owner;
    this.#intervalMs = positive('intervalMs', options.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    this.#graceMs = nonNegative('graceMs', options.graceMs ?? this.#intervalMs);
    this.#batch = positive('batch', options.batch ?? 500);
    this.#maxPages = positive('maxPages', options.maxPages ?? 20);
    this.#onError =
      options.onError ?? ((e: Error) => process.emitWarning(`flyte sweeper: a sweep failed: ${e.message}`));
  }

  /** Sweeps every interval from now on (the first sweep after one interval). */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => {
      if (this.#sweeping !== undefined) return; // the last sweep still runs: skip a turn
      this.sweep().catch((e: unknown) => this.#onError(e instanceof Error ? e : new Error(String(e))));
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops sweeping; resolves once a sweep in progress settled. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sweeping?.catch(() => undefined);
  }

  /** Sweeps once now, unless a sweep of this process is in progress (then: that one's result). */
  sweep(): Promise<SweepResult> {
    this.#sweeping ??= this.#store
      .sweep(this.#owner, (session) => this.#sweepPages(session))
      .finally(() => {
        this.#sweeping = undefined;
      });
    return this.#sweeping;
  }

  async #sweepPages(session: SweepSession): Promise<SweepOutcome> {
    const enqueuedBefore = Date.now() - this.#graceMs;
    const requeued: string[] = [];
    let candidates = 0;
    let cursor = this.#cursor;
    for (let page = 0; page < this.#maxPages; page++) {
      const { candidates: found, next } = await session.candidates({
        enqueuedBefore,
        after: cursor,
        limit: this.#batch,
      });
      candidates += found.length;
      const jobs: ActionJob[] = [];
      for (const candidate of found) {
        try {
          jobs.push(jobOf(candidate));
        } catch (e) {
          // One unreadable record must not stop the sweep of the others: reported, and skipped.
          this.#onError(e as Error);
        }
      }
      const missing = await this.#engine.missingJobs(jobs);
      for (const [runName, names] of byRun(missing)) {
        const still = await session.stillUnfinished(runName, [...names.keys()]);
        const again = [...names].filter(([name]) => still.has(name));
        // Together: the engine sends the jobs of one queue enqueued at once in one addBulk.
        await Promise.all(again.map(([, job]) => this.#engine.enqueue(job)));
        for (const [name] of again) requeued.push(`${runName}/${name}`);
      }
      cursor = next;
      if (next === null) break;
    }
    this.#cursor = cursor;
    return { candidates, requeued };
  }
}

function byRun(jobs: readonly ActionJob[]): Map<string, Map<string, ActionJob>> {
  const runs = new Map<string, Map<string, ActionJob>>();
  for (const job of jobs) {
    let names = runs.get(job.runName);
    if (names === undefined) runs.set(job.runName, (names = new Map<string, ActionJob>()));
    names.set(job.actionName, job);
  }
  return runs;
}

function where(candidate: SweepCandidate): string {
  return `action ${candidate.actionName} of run ${candidate.runName}`;
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`sweeper: expected ${name} to be an integer >= 1; received ${value}`);
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`sweeper: expected ${name} to be an integer >= 0; received ${value}`);
  }
  return value;
}
