/**
 * The remote controller: runs the actions of remote runs on `flyte worker` processes, through an {@link Engine}
 * (BullMQ on Redis) for dispatch and the shared run store (Postgres) for every record.
 *
 * - **Submitting** a run records it and its root action `a0` (queued), then enqueues the root's job.
 * - **A worker** takes a job, claims its action in the store (a raised epoch: the fencing token of every write
 *   it makes for the action), and runs it through the same {@link ActionLifecycle} as local mode (inputs,
 *   cache, attempts, retries, timeouts, records). Only the placement differs: a child call records the child,
 *   makes the record durable, then enqueues its job (idempotent: the job id is the run and action names).
 * - **A parent's body keeps running** on the worker that took it, as a plain promise, while its children run
 *   anywhere; nothing is replayed. While it waits on children its lease is parked, so it holds no worker slot.
 * - **A child's end reaches its parent** after the child's worker made it durable and published it on the
 *   parent's channel; the parent's process reads the outcome from the store. As a backstop (messages get lost),
 *   every {@link RECONCILE_MS} and after a reconnect it asks the store which awaited children ended.
 * - **Aborts** are durable requests in the store, broadcast on the engine; every worker applies them to what it
 *   holds of the run, and polls the store for them as a backstop.
 * - **`maxActionConcurrency`** is a semaphore per run in the engine, shared by every worker, whose holders are
 *   action names (see {@link Engine.acquireSlot}). A parent takes the slot for a child before it enqueues the
 *   child's job, so no worker holds a job it may not run; the worker that takes the job takes the slot again
 *   (a no-op for the same holder, a real wait after a takeover). The root does not count; a parent gives its
 *   slot back at its first child call (a tree cannot deadlock); an action's slot is given back when it ends.
 *
 * Runs in `local` mode (`withRunContext({ mode: 'local' })`) are handed to the {@link LocalController} it holds.
 * @module
 */
import {
  ActionAbortedError,
  ModuleLoadError,
  TaskTimeoutError,
  WorkerLostError,
  fromSerialized,
  serializeError,
} from '../errors.js';
import type { ActionJob, Engine, Lease } from '../engine/engine.js';
import { queueName } from '../engine/engine.js';
import type { RunContextOptions } from '../options.js';
import { pickActionRecord, type ActionWrite, type ClaimedAction, type EndedAction } from '../store/run-store.js';
import { isSweepStore } from '../store/sweep-store.js';
import { isTerminal, type ActionRecord, type RunRecord } from '../types.js';
import {
  ActionLifecycle,
  RunningAction,
  newActionRecord,
  type LifecycleRun,
  type Mutable,
  type Placement,
} from './action-lifecycle.js';
import type {
  CancelScope,
  Controller,
  DrivenRun,
  Frame,
  LiveAction,
  RunClaim,
  StepHandle,
  StepReplay,
  SubmitOptions,
} from './controller.js';
import { recordedOptions, type LocalController } from './local-controller.js';
import { log } from './log.js';
import { ROOT_ACTION, childActionName, newRunName, validateRunName } from './naming.js';
import { OWNER, leaseMs } from './owner.js';
import { projectRelative } from './project-root.js';
import type { Recorder } from './recorder.js';
import { RUN_ABORT_WAIT_MS, ACTION_ABORT_WAIT_MS, waitElsewhere } from './runs-elsewhere.js';
import type { ValueCodec } from './serde.js';
import { startBodyHere } from './sync-host.js';
import { DEFAULT_SWEEP_INTERVAL_MS, Sweeper, recordedJob } from './sweeper.js';
import type { TaskDefinition } from './task-definition.js';
import { lookupTask } from './task-registry.js';
import { fromTaskRef, toTaskRef, type TaskRef } from './task-ref.js';
import type { ThreadPool } from './thread-pool.js';
import { setLongTimeout } from './timer.js';
import { activeTraceFields, jobParent, neverRanSpan, traceFields, type SpanParent } from './tracing.js';

/** How often a process asks the store which awaited children ended (the backstop to wake-ups), in ms. */
export const RECONCILE_MS = 1_000;
/** How long a job whose action failed for its store (or engine) waits in its queue before it is taken again, in ms. */
const RETRY_AFTER_STORE_FAILURE_MS = 1_000;
/** How often a worker reads the abort requests of the runs it holds actions of (the backstop), in ms. */
const ABORT_POLL_MS = 500;

/** The channel parent of a run's root: whoever waits for the run waits on this "parent". */
const RUN_WAITERS = '';

/** The part of a remote run one worker holds: the actions of the run that run here, and the run's options. */
export class RemoteRun implements LifecycleRun {
  readonly mode = 'remote' as const;
  readonly recover = false;
  /** The run's slots are in the engine (see {@link RemoteRun.maxSlots}), not in the lifecycle. */
  readonly slots = null;
  readonly takenOver = false;
  readonly live = new Map<string, RunningAction>();
  /** The highest abort request sequence number applied here. */
  abortSeen = 0;
  /** Set once the whole run was aborted: its actions that arrive here later end aborted without running. */
  aborted: ActionAbortedError | null = null;
  /** The run's `maxActionConcurrency` (0: no limit): slots shared by all workers, see {@link Engine.acquireSlot}. */
  readonly maxSlots: number;

  constructor(
    readonly name: string,
    readonly controller: RemoteController,
    readonly options: RunContextOptions,
  ) {
    this.maxSlots = checkedMaxSlots(options.maxActionConcurrency);
  }

  log(frame: Frame, stream: 'stdout' | 'stderr', line: string): void {
    this.controller.recorder.log({
      runName: this.name,
      actionName: frame.action.name,
      attempt: frame.attempt,
      at: Date.now(),
      stream,
      line,
    });
  }

  /** Applies an abort request to the actions of the run held here: all of them, or one and its subtree. */
  applyAbort(actionName: string | null, reason: string): void {
    const suffix = reason ? `: ${reason}` : '';
    if (actionName === null) {
      const error = new ActionAbortedError(`run ${this.name} was aborted${suffix}`);
      this.aborted ??= error;
      for (const action of [...this.live.values()]) action.abort(error);
      return;
    }
    this.live
      .get(actionName)
      ?.abort(new ActionAbortedError(`action ${actionName} was aborted${suffix}`, { actionName }));
  }
}

/** A child that runs on some worker, as its parent's process sees it while it waits. */
class RemoteChild implements LiveAction {
  readonly runName: string;
  readonly taskName: string;
  readonly shortName: string;
  #controller: AbortController | null = null;
  #aborted: Error | null = null;
  settled = false;

  constructor(
    readonly name: string,
    readonly parent: RunningAction,
    readonly task: TaskDefinition,
    readonly queue: string,
    private readonly onAbort: (child: RemoteChild, reason: Error) => void,
  ) {
    this.runName = parent.runName;
    this.taskName = task.name;
    this.shortName = task.shortName;
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.#aborted !== null) this.#controller.abort(this.#aborted);
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    if (this.#aborted !== null || this.settled) return;
    this.#aborted = reason;
    this.#controller?.abort(reason);
    this.onAbort(this, reason);
  }
}

/** A parent's process waiting for one child's end. */
interface Waiter {
  readonly child: RemoteChild;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** What a parent's process waits on, per (run, parent): the children, and the subscription to their ends. */
interface ParentWaits {
  readonly children: Map<string, Waiter>;
  /** Resolves once subscribed to the parent's channel; its value ends the subscription. */
  subscribed: Promise<() => void>;
  /** The subscription failed (the engine was unreachable): the next child call subscribes again. */
  failed: boolean;
  /** Ends the subscription when no child was awaited for a while (see {@link SUBSCRIPTION_LINGER_MS}). */
  idle: NodeJS.Timeout | undefined;
}

/**
 * How long a parent's subscription outlives its last awaited child: a parent that awaits its children one after
 * another (a chain) subscribes once, not once per child.
 */
const SUBSCRIPTION_LINGER_MS = 2_000;

/** Options of {@link RemoteController.startWorker}. */
export interface WorkerOptions {
  /** The task environments whose queues this worker takes jobs from. */
  readonly environments: readonly string[];
  /** At most this many busy actions (a parent waiting on children does not count). */
  readonly concurrency: number;
  /**
   * How long a job's lock holds without renewal, in ms: a worker that dies is taken over this long after (plus
   * up to one stalled check); an event loop blocked longer than this causes a false takeover. @default 30_000
   */
  readonly lockMs?: number;
  /** How often stalled jobs (expired locks) are looked for and put back, in ms. @default lockMs / 2 */
  readonly stalledIntervalMs?: number;
  /**
   * How often this worker tries to sweep (see `sweeper.ts`: only one process sweeps at a time), in ms; also the
   * grace of an action's job before it may be swept. Only on a store that can host the sweeper (Postgres).
   * @default {@link DEFAULT_SWEEP_INTERVAL_MS}
   */
  readonly sweepIntervalMs?: number;
  /**
   * Takeovers of one action after which it fails with a {@link WorkerLostError} instead of being taken over
   * again. @default {@link DEFAULT_MAX_TAKEOVERS}
   */
  readonly maxTakeovers?: number;
}

/** Takeovers of one action after which it fails (see {@link WorkerOptions.maxTakeovers}). */
export const DEFAULT_MAX_TAKEOVERS = 5;

/** A running worker: {@link WorkerHandle.drain} stops it. */
export interface WorkerHandle {
  readonly queues: readonly string[];
  /** Actions held now, busy and waiting. */
  readonly held: number;
  /** Stops taking jobs; waits up to `graceMs` for the held ones, then hands the rest back. */
  drain(graceMs: number): Promise<void>;
}

/**
 * The controller of a process configured with an engine: the submitter side of remote runs (start, wait,
 * abort), the worker side (taking jobs, running their actions, submitting their children), and local runs
 * through the {@link LocalController} it holds.
 */
export class RemoteController implements Controller, Placement {
  readonly mode = 'remote' as const;
  readonly lifecycle: ActionLifecycle;
  /** The runs of which this process runs actions now, by name (a worker's share of each run). */
  readonly #runs = new Map<string, RemoteRun>();
  /** The same, as promises: a run's scope is ready once its earlier abort requests were read. */
  readonly #scopes = new Map<string, Promise<RemoteRun>>();
  /** Jobs being served per run: a run's scope stays while any is (its actions may not be live yet). */
  readonly #serving = new Map<string, number>();
  /** The lease of every action that a job of this process runs. */
  readonly #leases = new Map<RunningAction, Lease>();
  /** Children each parent of this process is waiting on, by `run\0parent`. */
  readonly #waits = new Map<string, ParentWaits>();
  /** Outstanding child calls per parent: the parent's lease is parked while it has any. */
  readonly #outstanding = new Map<RunningAction, number>();
  /** Actions whose job this worker lost: their children go on without them (never aborted from here). */
  readonly #detached = new Set<RunningAction>();
  /** The sweepers of the workers of this process (see {@link startWorker}). */
  readonly #sweepers = new Set<Sweeper>();
  #reconcile: NodeJS.Timeout | undefined;
  /** The reconcile pass in progress, and whether another was asked for meanwhile (see #reconcileWaits). */
  #reconciling: Promise<void> | undefined;
  #reconcileAgain = false;
  #abortPoll: NodeJS.Timeout | undefined;
  #listening = false;
  #maxTakeovers = DEFAULT_MAX_TAKEOVERS;
  readonly leaseMs = leaseMs();

  constructor(
    readonly recorder: Recorder,
    readonly codec: ValueCodec,
    readonly engine: Engine,
    /** Runs `local`-mode runs, and owns the thread pool that sync bodies of remote actions run on here. */
    readonly local: LocalController,
    readonly pool?: ThreadPool,
  ) {
    this.lifecycle = new ActionLifecycle(recorder, codec, this);
  }

  get claim(): RunClaim {
    return this.local.claim;
  }

  // ---- The run side: submitting, waiting, aborting ----

  /** See `RunController.startRun`: a `local` run goes to the local controller; a remote one to the queues. */
  async startRun(task: TaskDefinition, args: readonly unknown[], options: RunContextOptions): Promise<DrivenRun> {
    if (options.mode === 'local') return this.local.startRun(task, args, options);
    const name = options.name === undefined ? newRunName() : validateRunName(options.name);
    checkedMaxSlots(options.maxActionConcurrency);
    const inputs = this.codec.encode(args, 'args', task.maxInlineIoBytes);
    await inputs.written;
    const now = Date.now();
    await this.recorder.createRun({
      name,
      taskName: task.name,
      phase: 'running',
      mode: 'remote',
      createdAt: now,
      startedAt: now,
      endedAt: null,
      error: null,
      labels: options.labels ?? {},
      options: recordedOptions(options),
      module: task.module,
      owner: null,
      epoch: 1,
      heartbeatAt: null,
      leaseExpiresAt: null,
      inputs: inputs.text,
    });
    // The root's span goes under the caller's active span, if the caller traces (see `tracing.ts`).
    const job = {
      ...this.#job(name, ROOT_ACTION, task, options.customContext ?? {}),
      inputsHash: inputs.hash,
      ...activeTraceFields(),
    };
    // The job is recorded with the action, so that the sweeper can enqueue it again if it vanishes.
    this.recorder.action({ ...newActionRecord(name, ROOT_ACTION, null, task, null, inputs), ...recordedJob(job) });
    await this.recorder.store.flush();
    await this.engine.enqueue(job);
    const submitted: { name: string; phase: DrivenRun['phase']; done: Promise<void> } = {
      name,
      phase: 'running',
      done: Promise.resolve(),
    };
    submitted.done = this.waitRun(name).then(
      (rec) => {
        submitted.phase = rec.phase;
      },
      () => undefined,
    );
    return submitted;
  }

  /** Remote runs are recovered by takeover on the workers, not by a submitter. */
  async recoverRun(record: RunRecord, task: TaskDefinition, args: readonly unknown[]): Promise<DrivenRun> {
    if (record.mode !== 'remote') return this.local.recoverRun(record, task, args);
    throw new RangeError(`rerun: run ${record.name} is a remote run; recovering remote runs is not supported yet`);
  }

  driven(runName: string): DrivenRun | undefined {
    return this.local.driven(runName);
  }

  drivenRuns(): string[] {
    return this.local.drivenRuns();
  }

  /** Resolves with the run's record once it ended: woken by the root's end, the store read as a backstop. */
  async waitRun(runName: string): Promise<RunRecord> {
    if (this.local.driven(runName) !== undefined) return this.local.waitRun(runName);
    const store = this.recorder.store;
    const first = await store.getRun(runName);
    if (first === undefined) throw new RangeError(`run ${runName} is not in ${store.description}`);
    if (first.mode !== 'remote') return waitElsewhere(store, runName);
    let wake: () => void = () => undefined;
    const unwatch = await this.engine.watchChildren(runName, RUN_WAITERS, () => wake());
    try {
      for (;;) {
        const rec = await store.getRun(runName);
        if (rec !== undefined && isTerminal(rec.phase)) return rec;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, RECONCILE_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      unwatch();
    }
  }

  async abortRun(runName: string, reason: string): Promise<void> {
    if (this.local.driven(runName) !== undefined) return this.local.abortRun(runName, reason);
    const store = this.recorder.store;
    const rec = await store.getRun(runName);
    if (rec === undefined) throw new RangeError(`run ${runName} is not in ${store.description}`);
    if (rec.mode !== 'remote') return this.local.abortRun(runName, reason);
    if (isTerminal(rec.phase)) return;
    await store.requestAbort(runName, reason);
    await this.engine.publishAbort({ runName, actionName: null });
    // A root still in its queue is taken out of it, and recorded as aborted here: no worker will.
    const root = await store.getAction(runName, ROOT_ACTION);
    if (root !== undefined && root.phase === 'queued') {
      const queue = queueName(envOf(root.taskName));
      const removed = await this.engine.dequeue(queue, runName, [ROOT_ACTION]);
      if (removed.length > 0) {
        const error = new ActionAbortedError(`run ${runName} was aborted${reason ? `: ${reason}` : ''}`);
        await this.#recordNeverRan(root, error);
        this.recorder.run(runName, { phase: 'aborted', endedAt: Date.now(), error: serializeError(error) });
        await store.flush();
        await this.engine.publishEnded(runName, RUN_WAITERS, ROOT_ACTION);
        return;
      }
    }
    await withDeadline(
      this.waitRun(runName),
      RUN_ABORT_WAIT_MS,
      () =>
        new Error(`run ${runName} was not recorded as ended within ${RUN_ABORT_WAIT_MS / 1000} s of the abort request`),
    );
  }

  async abortAction(runName: string, actionName: string, reason: string): Promise<void> {
    if (this.local.driven(runName) !== undefined) return this.local.abortAction(runName, actionName, reason);
    const store = this.recorder.store;
    const run = await store.getRun(runName);
    if (run === undefined) throw new RangeError(`run ${runName} is not in ${store.description}`);
    if (run.mode !== 'remote') return this.local.abortAction(runName, actionName, reason);
    const rec = await store.getAction(runName, actionName);
    if (rec === undefined) throw new RangeError(`run ${runName} has no action ${actionName}`);
    if (isTerminal(rec.phase)) return;
    await store.requestAbort(runName, reason, actionName);
    await this.engine.publishAbort({ runName, actionName });
    const deadline = Date.now() + ACTION_ABORT_WAIT_MS;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const now = await store.getAction(runName, actionName);
      if (now === undefined || isTerminal(now.phase)) return;
      if (Date.now() >= deadline) {
        throw new Error(
          `action ${actionName} of run ${runName} was not recorded as ended within ${ACTION_ABORT_WAIT_MS} ms ` +
            'of the abort request; the worker that runs it may still apply it',
        );
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#sweepers].map((sweeper) => sweeper.stop()));
    this.#sweepers.clear();
    await this.local.close();
    clearInterval(this.#reconcile);
    clearInterval(this.#abortPoll);
    this.#reconcile = undefined;
    this.#abortPoll = undefined;
    await this.engine.close();
  }

  // ---- The worker side: taking jobs ----

  /** Starts taking the jobs of `options.environments`' queues. */
  startWorker(options: WorkerOptions): WorkerHandle {
    this.#listen();
    const queues = options.environments.map((env) => queueName(env));
    const maxTakeovers = options.maxTakeovers ?? DEFAULT_MAX_TAKEOVERS;
    if (!Number.isInteger(maxTakeovers) || maxTakeovers < 0) {
      throw new RangeError(`maxTakeovers: expected a non-negative integer; received ${String(options.maxTakeovers)}`);
    }
    this.#maxTakeovers = maxTakeovers;
    const consumer = this.engine.consume(
      queues,
      {
        concurrency: options.concurrency,
        ...(options.lockMs === undefined ? {} : { lockMs: options.lockMs }),
        ...(options.stalledIntervalMs === undefined ? {} : { stalledIntervalMs: options.stalledIntervalMs }),
        // BullMQ gives up on a job at the same count as the store's takeovers: either way the action fails.
        maxStalledCount: maxTakeovers,
        onHandBack: (job) => this.#handBack(job),
      },
      (lease) => void this.#serve(lease),
    );
    const store = this.recorder.store;
    const sweeper = isSweepStore(store)
      ? new Sweeper(store, this.engine, {
          owner: OWNER,
          intervalMs: options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
        })
      : undefined;
    sweeper?.start();
    if (sweeper !== undefined) this.#sweepers.add(sweeper);
    return {
      queues,
      get held() {
        return consumer.held;
      },
      drain: async (graceMs) => {
        await sweeper?.stop();
        if (sweeper !== undefined) this.#sweepers.delete(sweeper);
        await consumer.drain(graceMs);
      },
    };
  }

  /** Runs the action of one job, from its claim to the job's completion. Never rejects. */
  async #serve(lease: Lease): Promise<void> {
    const { job } = lease;
    const store = this.recorder.store;
    this.#serving.set(job.runName, (this.#serving.get(job.runName) ?? 0) + 1);
    try {
      // The claim returns the inputs too: one round trip to start an action.
      const claimed = await store.claimAction(job.runName, job.actionName, { owner: OWNER, leaseMs: this.leaseMs });
      if (claimed === undefined) {
        // A terminal action (or none): the job was delivered again after its action ended. Nothing runs.
        await this.#deliveredAgain(job);
        return;
      }
      const run = await this.#runScope(job.runName);
      const record: Mutable<ActionWrite> = {
        ...pickWrite(claimed),
        phase: 'queued',
        inputs: claimed.inputs ?? undefined,
        inputsHash: job.inputsHash,
        epoch: claimed.epoch,
      };
      // The run is being aborted: an action that reaches a worker now ends at once, without running.
      const refused = run.aborted ?? this.#workerLost(job, claimed, lease.deferredFailure);
      if (refused !== null) {
        await this.#endWithoutRunning(run, record, refused, job);
        return;
      }
      let task: TaskDefinition | undefined;
      let unreadable: Error | undefined;
      try {
        task = this.#taskOf(job);
      } catch (err) {
        unreadable = new ModuleLoadError(
          `the settings of task ${job.taskName} in its job cannot be read by this worker (${OWNER}): ` +
            `${(err as Error).message}`,
        );
      }
      if (task === undefined || record.inputs === undefined) {
        const where = job.module === null ? '' : ` (module ${job.module})`;
        const error =
          unreadable ??
          (task === undefined
            ? new ModuleLoadError(
                `task ${job.taskName}${where} is not defined in this worker (${OWNER}); ` +
                  'start the worker with --module for the module that defines it',
              )
            : new ModuleLoadError(`action ${job.actionName} of run ${job.runName} has no recorded inputs`));
        await this.#endWithoutRunning(run, record, error, job);
        return;
      }
      const live = new RunningAction(run, null, task, record, job.customContext);
      live.spanParent = jobParent(job, job.actionName === ROOT_ACTION);
      this.#leases.set(live, lease);
      const onLost = (): void => {
        // Another worker may hold the job now: this one stops the body and changes nothing any more. Its later
        // writes of the action carry an epoch below the claim's (the store refuses them), and its children are
        // left running for whoever takes the action over (they are not aborted).
        record.epoch = 0;
        this.#detached.add(live);
        live.abort(lostLeaseError(job.runName, job.actionName));
      };
      lease.lost.addEventListener('abort', onLost, { once: true });
      // Its body ran before (a takeover, or a drain handed it back): it runs again in recovery mode. The children
      // it recorded are collected (finished) or re-attached to (queued or running), never submitted again.
      if (claimed.takeovers > 0) {
        const from = claimed.lostOwners[claimed.lostOwners.length - 1] ?? 'an unknown worker';
        workerLog().info(`${job.runName}/${job.actionName}: taken over from ${from} (takeover ${claimed.takeovers})`, {
          run: job.runName,
          action: job.actionName,
          from,
          takeovers: claimed.takeovers,
        });
      }
      if (claimed.attempts > 0 || lease.redeliveries > 0) await this.lifecycle.loadRecorded(live);
      if (run.maxSlots > 0 && job.actionName !== ROOT_ACTION) await this.#takeSlot(run, live, lease);
      const args = this.codec.needsLoad(record.inputs) ? [] : (this.codec.decode(record.inputs) as unknown[]);
      await this.lifecycle.execute(live, args, undefined).catch(() => undefined);
      lease.lost.removeEventListener('abort', onLost);
      this.#leases.delete(live);
      this.#detached.delete(live);
      if (lease.lost.aborted) return; // another worker holds the job now: it records the end (and has the slot)
      if (job.actionName === ROOT_ACTION) await this.#endRun(job.runName);
      await this.#publishEnd(job.runName, record);
      // The slot is given back only by the holder of the job: one that lost it unawares (paused past its lock)
      // must not give back the slot that the action's new worker holds.
      if (await lease.complete()) await this.#giveSlotBack(run, job.actionName);
    } catch (err) {
      // The store or the engine failed (past the store's outage limit, or for another reason): the job goes back
      // to its queue, to be taken again a little later, never completed with its action unfinished. What this
      // worker buffered stays pending and is retried; the next claim of the action fences it.
      workerLog().warn(
        `${job.runName}/${job.actionName}: ${(err as Error).message}; ` +
          `its job is handed back, to be taken again in ${RETRY_AFTER_STORE_FAILURE_MS} ms`,
        { run: job.runName, action: job.actionName, error: err, retryInMs: RETRY_AFTER_STORE_FAILURE_MS },
      );
      if (!lease.lost.aborted) await lease.retryLater(RETRY_AFTER_STORE_FAILURE_MS);
      return;
    } finally {
      if (!lease.lost.aborted) await lease.complete().catch(() => undefined);
      const serving = (this.#serving.get(job.runName) ?? 1) - 1;
      if (serving === 0) this.#serving.delete(job.runName);
      else this.#serving.set(job.runName, serving);
      this.#dropRunScope(job.runName);
    }
  }

  /**
   * The error that ends a claimed action without running it because its workers were lost too often: past
   * {@link WorkerOptions.maxTakeovers} takeovers in the store, or when the engine gave up on its job (it stalled
   * that often). `null` when it may run.
   */
  #workerLost(job: ActionJob, claimed: ClaimedAction, deferredFailure: string | undefined): WorkerLostError | null {
    const max = this.#maxTakeovers;
    if (claimed.takeovers <= max && deferredFailure === undefined) return null;
    const last = claimed.lostOwners.slice(-5);
    const workers = last.length === 0 ? 'unknown' : last.join(', ');
    const why =
      claimed.takeovers > max
        ? `was taken over ${claimed.takeovers} times, more than the limit of ${max}`
        : `stalled more than ${max} times in the engine (${deferredFailure ?? ''}; ${claimed.takeovers} takeovers recorded)`;
    return new WorkerLostError(
      `action ${job.actionName} (${job.taskName}) of run ${job.runName} ${why}: the workers running it were lost ` +
        `(died, or lost the job's lock); the last ones: ${workers}. ` +
        'The limit is flyte worker --max-takeovers.',
      { actionName: job.actionName, takeovers: claimed.takeovers, workers: last },
    );
  }

  /**
   * Ends a claimed action that does not run (its run is being aborted, its task is unknown here, its workers
   * were lost too often): records it ended with `error`, and the run's end if it is the root; wakes its parent.
   */
  async #endWithoutRunning(run: RemoteRun, record: Mutable<ActionWrite>, error: Error, job: ActionJob): Promise<void> {
    await this.#recordNeverRan(record, error, jobParent(job, record.name === ROOT_ACTION));
    if (record.name === ROOT_ACTION) await this.#endRun(run.name);
    await this.#giveSlotBack(run, record.name);
    await this.#publishEnd(run.name, record);
  }

  /**
   * A job whose action has ended (or is gone) was delivered again: nothing runs, and the job is acknowledged.
   * The action's end is told again (its parent woken, the run's end recorded for the root, its slot given back):
   * the worker that ended it may have died between its record and those steps, or its parent was not listening.
   */
  async #deliveredAgain(job: ActionJob): Promise<void> {
    const rec = await this.recorder.store.getAction(job.runName, job.actionName);
    if (rec === undefined || !isTerminal(rec.phase)) return;
    if (job.actionName === ROOT_ACTION) await this.#endRun(job.runName, rec);
    const run = await this.#runScope(job.runName);
    await this.#giveSlotBack(run, job.actionName);
    await this.#publishEnd(job.runName, rec);
  }

  /**
   * Records the run's end from its root's record as the store has it (a worker that was fenced out of the root
   * records nothing of its own), once the root ended.
   */
  async #endRun(runName: string, root?: ActionRecord): Promise<void> {
    const store = this.recorder.store;
    const rec = root ?? (await store.getAction(runName, ROOT_ACTION));
    if (rec === undefined || !isTerminal(rec.phase)) return;
    this.recorder.run(runName, endOf(rec));
    await store.durable(); // waits out an outage of the store: a commit that fails is retried until it is back
  }

  /** A drain hands `job` back: its claim is given back first, so that the next one is no takeover. */
  async #handBack(job: ActionJob): Promise<void> {
    const live = this.#runs.get(job.runName)?.live.get(job.actionName);
    const epoch = live?.record.epoch;
    if (epoch === undefined || epoch === 0) return;
    await this.recorder.store.durable(); // its writes so far land before the next claim
    await this.recorder.store.releaseAction(job.runName, job.actionName, epoch);
  }

  /**
   * Before a non-root action of a limited run starts here: takes its slot. The parent took it before it enqueued
   * the job, so this is a no-op for the same holder; after a takeover of a parent that had given its slot back,
   * it waits for one, its lease parked meanwhile (it holds no worker slot while it may not run). An abort (or
   * the lease's loss) ends the wait; the action then ends without running, as the lifecycle sees it interrupted.
   */
  async #takeSlot(run: RemoteRun, live: RunningAction, lease: Lease): Promise<void> {
    if (!(await this.engine.tryAcquireSlot(run.name, live.name, run.maxSlots))) {
      lease.park();
      try {
        await this.engine.acquireSlot(run.name, live.name, run.maxSlots, AbortSignal.any([lease.lost, live.signal]));
      } catch (err) {
        if (lease.lost.aborted || live.interrupted !== null) return;
        throw err;
      } finally {
        lease.unpark();
      }
    }
    live.holdsSlot = true;
  }

  /**
   * An action of a limited run ended here (its end durable): gives its slot back (idempotent: a parent that made
   * a child call gave it back already). The root holds none: its end removes the run's slots.
   */
  async #giveSlotBack(run: RemoteRun, actionName: string): Promise<void> {
    if (run.maxSlots === 0) return;
    if (actionName === ROOT_ACTION) await this.engine.clearSlots(run.name);
    else await this.engine.releaseSlot(run.name, actionName);
  }

  /** The definition a job runs: the registered task, with the caller's overrides when the job carries them. */
  #taskOf(job: ActionJob): TaskDefinition | undefined {
    const registered = lookupTask(job.taskName);
    if (registered === undefined || job.task === undefined) return registered;
    return fromTaskRef(job.task as unknown as TaskRef, registered);
  }

  /** After an action's end is durable: wakes its parent (or, for the root, whoever waits for the run). */
  async #publishEnd(runName: string, record: ActionRecord): Promise<void> {
    await this.engine.publishEnded(runName, record.parentName ?? RUN_WAITERS, record.name);
  }

  /**
   * Records an action that never ran (its task is unknown here, or it was taken out of its queue) as ended; its
   * span, of no length, goes under `spanParent` (none when `null`).
   */
  async #recordNeverRan(record: ActionRecord, error: Error, spanParent: SpanParent | null = null): Promise<void> {
    const now = Date.now();
    const aborted = error instanceof ActionAbortedError;
    const ended: Mutable<ActionWrite> = {
      ...pickWrite(record),
      phase: aborted ? 'aborted' : error instanceof TaskTimeoutError ? 'timed_out' : 'failed',
      startedAt: record.startedAt ?? now,
      endedAt: now,
      error: serializeError(error, record.name),
    };
    Object.assign(record, ended);
    this.recorder.action(ended);
    if (spanParent !== null) neverRanSpan(ended, spanParent);
    await this.recorder.store.durable();
  }

  /** This worker's share of a run: created with the run's options when its first action arrives here. */
  #runScope(runName: string): Promise<RemoteRun> {
    let scope = this.#scopes.get(runName);
    if (scope === undefined) {
      scope = this.#newRunScope(runName);
      this.#scopes.set(runName, scope);
      scope.catch(() => this.#scopes.delete(runName));
    }
    return scope;
  }

  async #newRunScope(runName: string): Promise<RemoteRun> {
    const rec = await this.recorder.store.getRun(runName);
    if (rec === undefined) throw new RangeError(`run ${runName} is not in ${this.recorder.store.description}`);
    const run = new RemoteRun(runName, this, { ...rec.options, labels: rec.labels });
    this.#runs.set(runName, run);
    this.#pollAborts();
    // Requests made before this worker held anything of the run apply too (an abort of the whole run, first).
    await this.#readAborts([runName]);
    return run;
  }

  #dropRunScope(runName: string): void {
    const run = this.#runs.get(runName);
    if (run !== undefined && run.live.size === 0 && (this.#serving.get(runName) ?? 0) === 0) {
      this.#runs.delete(runName);
      this.#scopes.delete(runName);
    }
  }

  /** Applies abort notices from the engine, and reconciles after the subscriber reconnected. */
  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    this.engine.onAbort(({ runName }) => {
      if (this.#runs.has(runName)) void this.#readAborts([runName]);
    });
    this.engine.onReconnect(() => void this.#reconcileWaits());
  }

  /** While this worker holds actions of runs: reads their abort requests every {@link ABORT_POLL_MS}. */
  #pollAborts(): void {
    if (this.#abortPoll !== undefined) return;
    this.#abortPoll = setInterval(() => {
      if (this.#runs.size === 0) {
        clearInterval(this.#abortPoll);
        this.#abortPoll = undefined;
        return;
      }
      void this.#readAborts([...this.#runs.keys()]);
    }, ABORT_POLL_MS);
    this.#abortPoll.unref();
    void this.#readAborts([...this.#runs.keys()]);
  }

  async #readAborts(runNames: string[]): Promise<void> {
    const runs = runNames.map((name) => this.#runs.get(name)).filter((run) => run !== undefined);
    if (runs.length === 0) return;
    const after = Math.min(...runs.map((run) => run.abortSeen));
    let requests;
    try {
      requests = await this.recorder.store.listAbortRequests(
        runs.map((run) => run.name),
        after,
      );
    } catch {
      return; // retried at the next poll
    }
    for (const { seq, runName, actionName, reason } of requests) {
      const run = this.#runs.get(runName);
      if (run === undefined || seq <= run.abortSeen) continue;
      run.abortSeen = seq;
      run.applyAbort(actionName, reason);
    }
  }

  // ---- The action side: child calls of the actions running here ----

  submit(frame: Frame, task: TaskDefinition, args: readonly unknown[], options?: SubmitOptions): Promise<unknown> {
    if (frame.run.mode === 'local') return this.local.submit(frame, task, args, options);
    const parent = frame.action as RunningAction;
    if (parent.interrupted !== null || parent.ended || frame.attempt !== parent.attempt) {
      return Promise.reject(
        new ActionAbortedError(`cannot start ${task.name}: its parent ${parent.name} is no longer running`, {
          cause: parent.interrupted ?? undefined,
        }),
      );
    }
    let inputs: ReturnType<ValueCodec['encode']>;
    try {
      inputs = this.codec.encode(args, 'args', task.maxInlineIoBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    // The name is fixed here, synchronously, so the order of calls decides it (not the order of completion).
    const sequence = parent.nextSequence(task.name, inputs.hash);
    const name = childActionName(parent.name, inputs.hash, task.name, sequence, frame.group);
    // Recovery (the parent's body runs again after a takeover): a child that ended gives its recorded outcome;
    // one still queued or running is waited for as it is, never recorded or submitted anew.
    const earlier = parent.recorded?.get(name);
    if (earlier !== undefined && isTerminal(earlier.phase)) return this.#recordedOutcome(earlier);
    const itemIndex = options?.itemIndex ?? null;
    const record = newActionRecord(parent.runName, name, parent.name, task, frame.group, inputs, itemIndex);
    const child = new RemoteChild(name, parent, task, queueName(task.envName), (c, reason) =>
      this.#abortChild(c, reason),
    );
    return this.#callChild(frame, parent, child, record, inputs, options?.scope, earlier !== undefined);
  }

  /** The outcome of a child that ended before its parent's takeover, as recorded: its output, or its error. */
  async #recordedOutcome(rec: ActionRecord): Promise<unknown> {
    const outputs =
      rec.phase === 'succeeded'
        ? ((await this.recorder.store.getActionIO(rec.runName, rec.name))?.outputs ?? null)
        : null;
    return this.#outcomeOf({ ...rec, outputs });
  }

  /** What an ended child gives its caller: its decoded output, or (rejects) its recorded error. */
  async #outcomeOf(rec: EndedAction): Promise<unknown> {
    if (rec.phase !== 'succeeded') {
      throw fromSerialized(rec.error ?? serializeError(new Error(`${rec.name} ended ${rec.phase}`), rec.name));
    }
    return rec.outputs == null ? undefined : this.codec.load(rec.outputs);
  }

  /**
   * Records `child`, makes the record durable, then enqueues its job and waits for its end. `attach`: the child
   * was recorded by an earlier run of the parent's body (a takeover) and has not ended; its record is left as it
   * is, and its end is read once after subscribing (it may have ended unheard, with no parent listening).
   */
  async #callChild(
    frame: Frame,
    parent: RunningAction,
    child: RemoteChild,
    record: Mutable<ActionWrite>,
    inputs: ReturnType<ValueCodec['encode']>,
    scope: CancelScope | undefined,
    attach = false,
  ): Promise<unknown> {
    parent.children.add(child);
    scope?.enter(child);
    this.#park(parent, +1);
    const run = parent.run as RemoteRun;
    if (run.maxSlots > 0 && parent.holdsSlot) {
      // A parent that waits for children gives its slot to them, so a deep tree cannot deadlock. Given back
      // again at its end if this fails (releasing is idempotent).
      parent.holdsSlot = false;
      this.engine.releaseSlot(run.name, parent.name).catch(() => undefined);
    }
    try {
      const ended = this.#waitFor(child);
      const job = {
        ...this.#job(parent.runName, child.name, child.task, frame.customContext),
        ...traceFields(parent.span),
        inputsHash: inputs.hash,
      };
      if (attach) {
        await ended.subscribed;
        await this.#settle(run.name, parent.name, [child.name]);
      } else {
        // The job is recorded with the action, so that the sweeper can enqueue it again if it vanishes; in a run
        // with limited slots, only once the child was admitted (the sweeper must not enqueue a child that waits
        // for its slot).
        if (run.maxSlots === 0) Object.assign(record, recordedJob(job));
        await inputs.written; // offloaded inputs are durable before the record that refers to them
        this.recorder.action(record);
        // Subscribed before the job exists, so no end is missed; the subscription and the commit overlap.
        await Promise.all([ended.subscribed, this.recorder.store.durable()]);
      }
      // A re-attached child is enqueued again too: idempotent while its job exists (waiting or held), and it
      // brings back a job lost with the parent (recorded, never enqueued). A job for a child that has ended
      // meanwhile is acknowledged without running.
      const refused = run.maxSlots > 0 && !child.settled ? await this.#admit(run, child) : null;
      if (refused !== null) {
        await this.#recordNeverRan(record, refused, parent.span);
        await this.#publishEnd(run.name, record);
      } else if (!child.settled) {
        if (run.maxSlots > 0) {
          // Durable before the enqueue: written later, it would be refused once the child's worker claimed it.
          this.recorder.action(Object.assign(record, recordedJob(job)));
          await this.recorder.store.durable();
        }
        await this.engine.enqueue(job);
      }
      return await ended.outcome;
    } finally {
      this.#forget(child); // a call that failed before its outcome (the engine refused the job) waits no more
      child.settled = true;
      parent.children.delete(child);
      scope?.leave(child);
      this.#park(parent, -1);
      // Its worker gave it back already; this one is for a child that never ran (taken out of its queue, never
      // enqueued). Idempotent, so a lost message costs nothing but a round trip.
      if (run.maxSlots > 0) this.engine.releaseSlot(run.name, child.name).catch(() => undefined);
    }
  }

  /**
   * Takes the slot of `child` before its job is enqueued, waiting at most its task's `Timeout.maxQueuedTime`.
   * Resolves `null` once it holds the slot, or the error to record the child with: a {@link TaskTimeoutError}
   * past the bound, the abort reason if the child was aborted meanwhile.
   */
  async #admit(run: RemoteRun, child: RemoteChild): Promise<Error | null> {
    if (await this.engine.tryAcquireSlot(run.name, child.name, run.maxSlots)) return null;
    const limit = child.task.queuedTimeoutMs;
    const timeout = new AbortController();
    const timer =
      limit === undefined
        ? undefined
        : setLongTimeout(() => {
            const message = `${child.task.name} (action ${child.name}) waited more than ${limit} ms to start`;
            timeout.abort(new TaskTimeoutError(message, { actionName: child.name, timeoutMs: limit }));
          }, limit);
    const signal = AbortSignal.any([child.signal, timeout.signal]);
    try {
      await this.engine.acquireSlot(run.name, child.name, run.maxSlots, signal);
      return null;
    } catch (err) {
      if (signal.aborted && signal.reason instanceof Error) return signal.reason;
      throw err;
    } finally {
      timer?.clear();
    }
  }

  /** Counts the outstanding child calls of `parent`: its lease is parked while there is any. */
  #park(parent: RunningAction, delta: number): void {
    const lease = this.#leases.get(parent);
    const count = (this.#outstanding.get(parent) ?? 0) + delta;
    if (count === 0) {
      this.#outstanding.delete(parent);
      lease?.unpark();
    } else {
      this.#outstanding.set(parent, count);
      if (count === 1 && delta > 0) lease?.park();
    }
  }

  /**
   * Starts waiting for `child`'s end: subscribes to its parent's channel (once per parent), and registers the
   * waiter that a wake-up or a reconcile settles with the child's outcome, read from the store.
   */
  #waitFor(child: RemoteChild): { subscribed: Promise<unknown>; outcome: Promise<unknown> } {
    const key = `${child.runName}\0${child.parent.name}`;
    let waits = this.#waits.get(key);
    if (waits === undefined) {
      waits = {
        children: new Map<string, Waiter>(),
        subscribed: Promise.resolve(() => undefined),
        idle: undefined,
        failed: true,
      };
      this.#waits.set(key, waits);
      this.#startReconciling();
    }
    if (waits.failed) {
      const entry = waits;
      entry.failed = false;
      entry.subscribed = this.engine.watchChildren(child.runName, child.parent.name, (name) => this.#wake(key, name));
      // Children already waiting are still found by the reconcile meanwhile.
      entry.subscribed.catch(() => {
        entry.failed = true;
      });
    }
    clearTimeout(waits.idle);
    waits.idle = undefined;
    const outcome = new Promise<unknown>((resolve, reject) => {
      waits.children.set(child.name, { child, resolve, reject });
    });
    // The caller awaits it only once the child's job is enqueued; it may be settled before (the parent's job was
    // lost while the enqueue waited for Redis to come back), and must not end the process as unhandled meanwhile.
    outcome.catch(() => undefined);
    return { subscribed: waits.subscribed, outcome };
  }

  /** Wake-ups of one turn of the event loop, by `run\0parent`: read from the store together. */
  readonly #wakes = new Map<string, Set<string>>();

  /** A child's end was published: its outcome is read with the others of this turn, in one query per parent. */
  #wake(key: string, name: string): void {
    const first = this.#wakes.size === 0;
    let names = this.#wakes.get(key);
    if (names === undefined) this.#wakes.set(key, (names = new Set()));
    names.add(name);
    if (!first) return;
    setImmediate(() => {
      const wakes = [...this.#wakes];
      this.#wakes.clear();
      for (const [k, set] of wakes) {
        const [runName, parentName] = k.split('\0') as [string, string];
        void this.#settle(runName, parentName, [...set]);
      }
    });
  }

  /** Reads the outcome of those of `names` (children of `parentName`) that ended, and hands it to their waiters. */
  async #settle(runName: string, parentName: string, names: readonly string[]): Promise<void> {
    const key = `${runName}\0${parentName}`;
    const waits = this.#waits.get(key);
    if (waits === undefined) return;
    const wanted = names.filter((n) => waits.children.has(n));
    if (wanted.length === 0) return;
    const store = this.recorder.store;
    let ended: EndedAction[];
    try {
      ended = await store.endedAmong(runName, wanted, { withOutputs: true });
    } catch {
      return; // the reconcile tries again
    }
    // The outputs of the children that ended are read at once, not one round trip after another.
    await Promise.all(
      ended.map(async (rec) => {
        const waiter = waits.children.get(rec.name);
        if (waiter === undefined) return;
        waits.children.delete(rec.name);
        waiter.child.settled = true;
        await this.#outcomeOf(rec).then(waiter.resolve, waiter.reject);
      }),
    );
    this.#unwatchIfDone(key, waits);
  }

  /** Ends the subscription of a parent that waits on no child any more. */
  #unwatchIfDone(key: string, waits: ParentWaits): void {
    if (waits.children.size > 0 || this.#waits.get(key) !== waits || waits.idle !== undefined) return;
    waits.idle = setTimeout(() => {
      if (waits.children.size > 0 || this.#waits.get(key) !== waits) return;
      this.#waits.delete(key);
      void waits.subscribed.then(
        (unwatch) => unwatch(),
        () => undefined,
      );
    }, SUBSCRIPTION_LINGER_MS);
    waits.idle.unref();
  }

  /** The backstop: every {@link RECONCILE_MS}, asks the store which awaited children ended. */
  #startReconciling(): void {
    if (this.#reconcile !== undefined) return;
    this.#reconcile = setInterval(() => {
      if (this.#waits.size === 0) {
        clearInterval(this.#reconcile);
        this.#reconcile = undefined;
        return;
      }
      if (this.#reconciling === undefined) void this.#reconcileWaits(); // else: skip a tick, as the pass is late
    }, RECONCILE_MS);
    this.#reconcile.unref();
  }

  /**
   * Reads which awaited children ended, for every waiting parent of this process. One pass at a time (passes used
   * to pile up under a slow store, each a query per waiting parent): a tick that comes while a pass runs is
   * skipped; a reconnect asks for one more pass after it (the one running may have read before the subscriptions
   * were back).
   */
  #reconcileWaits(): Promise<void> {
    if (this.#reconciling !== undefined) {
      this.#reconcileAgain = true;
      return this.#reconciling;
    }
    this.#reconciling = (async () => {
      do {
        this.#reconcileAgain = false;
        for (const [key, waits] of [...this.#waits]) {
          const [runName, parentName] = key.split('\0') as [string, string];
          await this.#settle(runName, parentName, [...waits.children.keys()]);
        }
      } while (this.#reconcileAgain);
    })().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  /**
   * A child of a parent here is aborted (the parent was, or its map was cancelled): a durable request for the
   * worker that holds it; a job still in its queue is taken out, and the child recorded as aborted here.
   */
  #abortChild(child: RemoteChild, reason: Error): void {
    const store = this.recorder.store;
    if (this.#detached.has(child.parent)) {
      // The parent's job was lost: the child goes on, and the parent's new worker collects its outcome.
      this.#giveUp(child, reason);
      return;
    }
    void (async () => {
      await store.requestAbort(child.runName, reason.message, child.name);
      await this.engine.publishAbort({ runName: child.runName, actionName: child.name });
      const removed = await this.engine.dequeue(child.queue, child.runName, [child.name]);
      if (removed.length > 0) {
        const rec = await store.getAction(child.runName, child.name);
        if (rec !== undefined && !isTerminal(rec.phase)) {
          await this.#recordNeverRan(rec, reason, child.parent.span);
          await this.#publishEnd(child.runName, rec);
        }
      }
      await this.#settle(child.runName, child.parent.name, [child.name]);
    })().catch(() => undefined); // the reconcile settles the child once its end is recorded
  }

  /** Stops waiting for `child` here, if this process still does, without settling its caller. */
  #forget(child: RemoteChild): void {
    const key = `${child.runName}\0${child.parent.name}`;
    const waits = this.#waits.get(key);
    if (waits === undefined || !waits.children.delete(child.name)) return;
    this.#unwatchIfDone(key, waits);
  }

  /** Stops waiting for `child` here, rejecting its caller with `reason`. */
  #giveUp(child: RemoteChild, reason: Error): void {
    const key = `${child.runName}\0${child.parent.name}`;
    const waits = this.#waits.get(key);
    const waiter = waits?.children.get(child.name);
    if (waits === undefined || waiter === undefined) return;
    waits.children.delete(child.name);
    child.settled = true;
    waiter.reject(reason);
    this.#unwatchIfDone(key, waits);
  }

  /** Blocking calls come from sync bodies on pool threads (their thread-side controller); never from here. */
  submitSync(): unknown {
    throw new TypeError('a blocking task call can only be made from a sync task body running on the thread pool');
  }

  /** The placement on a worker: a sync body of a known module on the pool, any other body inline. */
  startBody(action: RunningAction, frame: Frame): unknown {
    return startBodyHere(this.pool, this.codec, action, frame);
  }

  beginMap(frame: Frame, total: number): void {
    if (frame.run.mode === 'local') this.local.beginMap(frame, total);
    else this.lifecycle.beginMap(frame, total);
  }

  beginStep(frame: Frame, kind: 'trace' | 'durable', name: string, args: readonly unknown[]): StepHandle | StepReplay {
    if (frame.run.mode === 'local') return this.local.beginStep(frame, kind, name, args);
    return this.lifecycle.beginStep(frame, kind, name, args);
  }

  #job(runName: string, actionName: string, task: TaskDefinition, customContext: Readonly<Record<string, string>>) {
    // A task called as defined needs only its name; an override() travels as its settings (a task reference).
    const overridden = lookupTask(task.name) !== task;
    return {
      ...(overridden ? { task: toTaskRef(task) as unknown as Readonly<Record<string, unknown>> } : {}),
      queue: queueName(task.envName),
      runName,
      actionName,
      taskName: task.name,
      module: task.module === null ? null : projectRelative(task.module),
      customContext,
    };
  }
}

/** The error that stops an action whose job this worker lost (another worker may run it now). */
function lostLeaseError(runName: string, actionName: string): ActionAbortedError {
  return new ActionAbortedError(
    `action ${actionName} of run ${runName}: this worker (${OWNER}) lost its job's lock; it stopped running it`,
    { actionName },
  );
}

/** The run's end, from its root's record. */
function endOf(root: ActionRecord): { phase: RunRecord['phase']; endedAt: number; error: RunRecord['error'] } {
  return { phase: root.phase, endedAt: root.endedAt ?? Date.now(), error: root.error };
}

/** The environment of a fully qualified task name (`env.task`). */
function envOf(taskName: string): string {
  const dot = taskName.lastIndexOf('.');
  return dot < 0 ? taskName : taskName.slice(0, dot);
}

/** The writable fields of `record` (an {@link ActionWrite} keeps its epoch). */
function pickWrite(record: ActionRecord): Mutable<ActionWrite> {
  const epoch = (record as ActionWrite).epoch;
  return { ...pickActionRecord(record), ...(epoch === undefined ? {} : { epoch }) };
}

async function withDeadline<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(error()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A run's `maxActionConcurrency`, checked as locally: a non-negative integer, 0 (the default) for no limit. */
function checkedMaxSlots(max: number | undefined): number {
  const value = max ?? 0;
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(
      `maxActionConcurrency: expected a non-negative integer (0 = no limit); received ${String(max)}`,
    );
  }
  return value;
}

/** The lines of the worker side: `flyte worker: ...` in the process's log format. */
function workerLog(): ReturnType<typeof log> {
  return log().child({ name: 'flyte worker', worker: OWNER });
}
