/**
 * The engine contract of distributed mode: how runnable actions travel between processes, and how a waiting
 * parent learns that its children ended. The engine is only transport and scheduling: every record lives in the
 * run store (Postgres), and a job holds ids, never values.
 *
 * The one implementation is BullMQ on Redis (`redis-engine.ts`); this module imports neither, so the SDK can
 * depend on the contract without loading the drivers.
 * @module
 */

/** One runnable action, as a job: ids and names, never values (inputs and outputs are in the store). */
export interface ActionJob {
  /** The queue: one per task environment (and code version), see {@link queueName}. */
  readonly queue: string;
  readonly runName: string;
  readonly actionName: string;
  /** The task's fully qualified name (`env.short`). */
  readonly taskName: string;
  /**
   * The task's module, as a path relative to the project root of the process that enqueued it (the nearest
   * `package.json` above the module); `null` when unknown.
   */
  readonly module: string | null;
  /** The custom context of the call (small strings, as `withCustomContext` gave them). */
  readonly customContext: Readonly<Record<string, string>>;
  /** The canonical hash of the action's inputs (an id: the cache key is derived from it). */
  readonly inputsHash?: string | undefined;
  /**
   * The task's settings as the caller used them, when they differ from the task as defined (an `override()`:
   * retries, timeouts, cache...): plain JSON, opaque to the engine. Absent for a task called as defined.
   */
  readonly task?: Readonly<Record<string, unknown>> | undefined;
  /**
   * The W3C trace context (`traceparent`, `tracestate`) of the span the action's span goes under: its parent
   * action's span, or the submitter's active span for a run's root. Absent when the submitter does not trace.
   */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

/** Which job: its queue, run and action (see {@link Engine.missingJobs}). */
export type JobRef = Pick<ActionJob, 'queue' | 'runName' | 'actionName'>;

/** Options of {@link Engine.consume}. */
export interface ConsumeOptions {
  /**
   * At most this many **busy** leases at once. A parked lease (a parent waiting on children) does not count;
   * a lease that unparks takes its slot back at once, even past the limit (the busy count may briefly exceed
   * it, a tree never deadlocks).
   */
  readonly concurrency: number;
  /** How long a job's lock holds without renewal, in ms (renewed every ¼ of it). @default 30_000 */
  readonly lockMs?: number;
  /** How often stalled jobs (locks that expired) are looked for and put back, in ms. @default lockMs / 2 */
  readonly stalledIntervalMs?: number;
  /**
   * Stalls after which the engine gives up on a job: the next lease of it carries {@link Lease.deferredFailure}.
   * The worker passes its takeover limit, so that the engine and the store's takeover count agree. @default 10
   */
  readonly maxStalledCount?: number;
  /**
   * Awaited before a drain hands a leased job back to its queue (its lock is still held then): the holder gives
   * its claim back, so that the next one is not counted as a takeover. What it throws is ignored.
   */
  readonly onHandBack?: (job: ActionJob) => Promise<void>;
  /**
   * Told when the consumer cannot reach Redis (it cannot start, or a fetch failed); it keeps trying until it
   * is drained. Called once per streak of failures, not for each. @default a process warning
   */
  readonly onError?: (error: Error) => void;
}

/**
 * A job this process holds: it runs the action, then completes or fails the job. The lock is renewed for as
 * long as the lease is held, parked or not.
 */
export interface Lease {
  readonly job: ActionJob;
  /**
   * How many times this job was taken by a worker before, this delivery excluded (0 on the first delivery; more
   * after a stalled job came back).
   */
  readonly redeliveries: number;
  /**
   * Set when the engine gave up on this job (it stalled more than `maxStalledCount` times): the holder must not
   * run the action, but record it as failed, then complete the job. `undefined` otherwise.
   */
  readonly deferredFailure: string | undefined;
  /**
   * Fires when this process lost the job: a lock renewal was refused (another worker may hold it now), or the
   * consumer handed it back (drain past its grace). The holder stops the action and records nothing more.
   */
  readonly lost: AbortSignal;
  /** The action waits on children: gives its slot back (idempotent). */
  park(): void;
  /** The action resumes: takes its slot back without waiting (idempotent). */
  unpark(): void;
  /**
   * The action ended (whatever its phase) and its record is durable: removes the job. Resolves `true` once Redis
   * removed it, `false` when this process no longer held it (its lock was lost: the job is someone else's now).
   * Never rejects for a lost lock.
   */
  complete(): Promise<boolean>;
  /**
   * The action could not be run or recorded here (the store failed): gives the job back to its queue, to be
   * taken again, by any worker, after `delayMs`; the lease leaves the gate without firing `lost`, and
   * `complete()` does nothing afterwards. Never rejects: if Redis refuses, the lock expires and the stalled
   * check returns the job.
   */
  retryLater(delayMs: number): Promise<void>;
}

/** What {@link Engine.consume} returns: the running consumer. */
export interface Consumer {
  /** Leases held now, busy and parked. */
  readonly held: number;
  /** Leases held now that are not parked. */
  readonly busy: number;
  /**
   * Stops taking jobs. Resolves once every held lease completed, or, for those still held after `graceMs`,
   * once they were handed back to their queue at once (not after a lock timeout), their `lost` signal fired.
   */
  drain(graceMs: number): Promise<void>;
}

/** Ends a subscription of {@link Engine.watchChildren}. */
export type Unwatch = () => void;

/** An abort request broadcast to every process (see {@link Engine.publishAbort}). */
export interface AbortNotice {
  readonly runName: string;
  /** `null`: the whole run. */
  readonly actionName: string | null;
}

/** Dispatch and wake-ups between processes. */
export interface Engine {
  /** The engine URL without its password, for messages. */
  readonly description: string;
  /** The key prefix of every Redis key and channel. */
  readonly prefix: string;
  /**
   * Adds `job` to its queue, idempotently: the job id is derived from the run and action names, so enqueuing an
   * action that is queued or held already adds nothing. Resolves once Redis has it.
   */
  enqueue(job: ActionJob): Promise<void>;
  /**
   * Removes the waiting (not yet taken) job of each action, where there is one. Resolves to the names of the
   * actions whose job it removed: those were never taken by any worker.
   */
  dequeue(queue: string, runName: string, actionNames: readonly string[]): Promise<string[]>;
  /**
   * Those of `jobs` that have no job in their queue at all: neither waiting nor held (a job removed by hand, lost
   * with a Redis that restarted without persistence, or never added because the enqueue failed). Checked in
   * batches, one round trip per batch; a job that ended and was removed is missing too (the caller checks the
   * action's record). What the sweeper asks before it enqueues a job again.
   */
  missingJobs<T extends JobRef>(jobs: readonly T[]): Promise<T[]>;
  /** Starts taking jobs from `queues`; `onLease` is called for each job taken (it must not throw). */
  consume(queues: readonly string[], options: ConsumeOptions, onLease: (lease: Lease) => void): Consumer;
  /** After the child's end is durable: wakes whoever waits on `parentName`'s children. */
  publishEnded(runName: string, parentName: string, actionName: string): Promise<void>;
  /**
   * Calls `onEnded` with the name of each child of `parentName` whose end is published from now on. Resolves
   * once subscribed, so that a reader who subscribes, then reads the store, misses no end. Messages may still
   * be lost: a waiter also reads the store now and then (and on {@link onReconnect}).
   */
  watchChildren(runName: string, parentName: string, onEnded: (actionName: string) => void): Promise<Unwatch>;
  /** Broadcasts an abort request to every process (the durable request is in the store already). */
  publishAbort(notice: AbortNotice): Promise<void>;
  /** Calls `listener` for every abort notice published from now on. */
  onAbort(listener: (notice: AbortNotice) => void): void;
  /** Calls `listener` after the subscriber connection came back (messages may have been lost meanwhile). */
  onReconnect(listener: () => void): void;
  /**
   * Takes one of the `max` slots of run `runName` for `holder` (an action name) if one is free now: the
   * run-wide semaphore behind `maxActionConcurrency`, shared by every process. Resolves `true` when `holder`
   * holds a slot afterwards, `false` when all `max` are held by others.
   *
   * - **Atomic:** the check and the take are one step in Redis; at most `max` holders at any time, whatever
   *   number of processes ask at once.
   * - **Idempotent per holder:** a holder that holds a slot already gets `true` and takes no second one (so a
   *   worker that takes over an action re-acquires its slot harmlessly).
   * - `max` is the caller's, per call: every caller of one run passes the run's `maxActionConcurrency`.
   */
  tryAcquireSlot(runName: string, holder: string, max: number): Promise<boolean>;
  /**
   * Like {@link tryAcquireSlot}, but waits until `holder` holds a slot. Waiters are woken by releases (a
   * message), with a poll as the backstop when messages get lost; they are **not** served in order. Rejects
   * with `signal.reason` once `signal` fires, holding no slot.
   */
  acquireSlot(runName: string, holder: string, max: number, signal?: AbortSignal): Promise<void>;
  /** Gives `holder`'s slot of run `runName` back, waking a waiter; idempotent (no slot held: nothing happens). */
  releaseSlot(runName: string, holder: string): Promise<void>;
  /**
   * Removes every slot of run `runName` (the run ended). The slots of a run also expire
   * ({@link SLOTS_TTL_MS} after the last take), so that a run whose end was never recorded leaves nothing.
   */
  clearSlots(runName: string): Promise<void>;
  /** Stops consumers at once (their leases lost) and closes every connection. */
  close(): Promise<void>;
}

/** How long the slots of a run live after their last take, in ms (a backstop for runs that never end). */
export const SLOTS_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * The queue of a task environment: `env.<name>`, with `@<version>` when a code version is set
 * (`FLYTE_CODE_VERSION`), so that during a rolling deploy old runs stay on old workers.
 */
export function queueName(
  environment: string,
  codeVersion: string | undefined = process.env.FLYTE_CODE_VERSION,
): string {
  return codeVersion === undefined || codeVersion === '' ? `env.${environment}` : `env.${environment}@${codeVersion}`;
}
