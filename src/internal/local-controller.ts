/**
 * The local controller: runs every action of a run in this process and records it in the store.
 *
 * A child's inputs are encoded and hashed and it gets its deterministic name in {@link LocalController.submit};
 * from there its whole life is the placement-neutral {@link ActionLifecycle}, and this controller is its
 * placement: "run the body here" ({@link LocalController.startBody}: inline in a frame, or a sync body on the
 * thread pool). The root action `a0` takes the same path as every child. The run side drives the runs of this
 * process: it starts and resumes them, keeps their leases, applies abort requests from other processes.
 * @module
 */
import { ActionAbortedError } from '../errors.js';
import type { RunContextOptions } from '../options.js';
import type { RunPhase, RunRecord } from '../types.js';
import {
  ActionLifecycle,
  RunningAction,
  newActionRecord,
  takenOverError,
  type LifecycleRun,
  type Mutable,
  type Placement,
} from './action-lifecycle.js';
import type { ActionWrite } from '../store/run-store.js';
import type { Controller, DrivenRun, Frame, RunClaim, StepHandle, StepReplay, SubmitOptions } from './controller.js';
import { ROOT_ACTION, childActionName, newRunName, validateRunName } from './naming.js';
import { OWNER, leaseMs, renewEveryMs } from './owner.js';
import type { Recorder } from './recorder.js';
import { abortActionElsewhere, abortRunElsewhere, claimForRecovery, waitElsewhere } from './runs-elsewhere.js';
import { Semaphore } from './semaphore.js';
import type { ValueCodec } from './serde.js';
import type { TaskDefinition } from './task-definition.js';
import { startBodyHere } from './sync-host.js';
import type { ThreadPool } from './thread-pool.js';

/** A run driven by this process. */
export class LocalRun implements LifecycleRun, DrivenRun {
  readonly mode = 'local' as const;
  phase: RunPhase = 'running';
  /** Every action of the run that is running in this process, by name. */
  readonly live = new Map<string, RunningAction>();
  /** Settles when the run reached a terminal phase and its records are durable. */
  done: Promise<void> = Promise.resolve();
  /** Limits concurrently executing actions when `maxActionConcurrency` is set. */
  readonly slots: Semaphore | null;
  /** Set when another process took the run over: this process stops driving it and records nothing more. */
  takenOver = false;

  constructor(
    readonly name: string,
    readonly controller: LocalController,
    readonly options: RunContextOptions,
    /** The epoch of this process's claim on the run (see `RunStore.claimRun`). */
    readonly epoch: number,
    /** Re-running a recorded run: finished children and steps return their recorded outputs. */
    readonly recover = false,
  ) {
    const max = options.maxActionConcurrency ?? 0;
    if (!Number.isInteger(max) || max < 0) {
      throw new RangeError(
        `maxActionConcurrency: expected a non-negative integer (0 = no limit); received ${String(max)}`,
      );
    }
    this.slots = max > 0 ? new Semaphore(max) : null;
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

  /** Aborts the run: the root and every running descendant. */
  abort(reason: string): void {
    this.live
      .get(ROOT_ACTION)
      ?.abort(new ActionAbortedError(`run ${this.name} was aborted${reason ? `: ${reason}` : ''}`));
  }

  /**
   * Another process claimed the run (this one hung past its lease, and the run was recovered or aborted
   * elsewhere): stops every action here. The store refuses this process's writes to the run from now on.
   */
  loseLease(): void {
    if (this.takenOver) return;
    this.takenOver = true;
    this.live.get(ROOT_ACTION)?.abort(takenOverError(this.name));
  }

  /** Aborts one running action and its running descendants; `false` when it is not running here. */
  abortAction(name: string, reason: string): boolean {
    const action = this.live.get(name);
    if (action === undefined) return false;
    action.abort(
      new ActionAbortedError(`action ${name} was aborted${reason ? `: ${reason}` : ''}`, { actionName: name }),
    );
    return true;
  }
}

/** How often live runs check for abort requests from other processes. */
const ABORT_POLL_MS = 250;

/** Runs actions in this process: the {@link Controller} of local mode, and the placement of its lifecycle. */
export class LocalController implements Controller, Placement {
  readonly mode = 'local' as const;
  /** Runs driven by this process, by name. */
  private readonly runs = new Map<string, LocalRun>();
  /** The life of every action, from its record to its output; this controller places the bodies. */
  readonly lifecycle: ActionLifecycle;

  constructor(
    readonly recorder: Recorder,
    readonly codec: ValueCodec,
    /** Runs sync task bodies on worker threads; without it (or for a task of unknown module) they run inline. */
    readonly pool?: ThreadPool,
  ) {
    this.lifecycle = new ActionLifecycle(recorder, codec, this);
  }

  /** See `RunController.startRun`. */
  async startRun(task: TaskDefinition, args: readonly unknown[], options: RunContextOptions): Promise<LocalRun> {
    const name = options.name === undefined ? newRunName() : validateRunName(options.name);
    const inputs = this.codec.encode(args, 'args', task.maxInlineIoBytes);
    await inputs.written; // offloaded inputs are durable before the run record refers to them
    const run = new LocalRun(name, this, options, 1);
    const now = Date.now();
    await this.recorder.createRun({
      name,
      taskName: task.name,
      phase: 'running',
      mode: 'local',
      createdAt: now,
      startedAt: now,
      endedAt: null,
      error: null,
      labels: options.labels ?? {},
      options: recordedOptions(options),
      module: task.module,
      owner: OWNER,
      epoch: 1,
      heartbeatAt: now,
      leaseExpiresAt: now + this.leaseMs,
      inputs: inputs.text,
    });
    return this.launch(run, task, args, inputs, options.customContext ?? {});
  }

  /** See `RunController.recoverRun`. */
  async recoverRun(record: RunRecord, task: TaskDefinition, args: readonly unknown[]): Promise<LocalRun> {
    if (this.runs.has(record.name)) throw new RangeError(`rerun: run ${record.name} is still running in this process`);
    return this.resumeRun(await claimForRecovery(this.recorder.store, this.claim, record), task, args);
  }

  /** Starts the root of `record`, as this process claimed it, in recovery mode. */
  private resumeRun(record: RunRecord, task: TaskDefinition, args: readonly unknown[]): LocalRun {
    const inputs = this.codec.encode(args, 'args', task.maxInlineIoBytes);
    const run = new LocalRun(record.name, this, { ...record.options, labels: record.labels }, record.epoch, true);
    return this.launch(run, task, args, inputs, record.options.customContext ?? {});
  }

  /** How long this process's leases on its runs hold (`FLYTE_LEASE_MS`). */
  readonly leaseMs = leaseMs();

  /** The claim this process makes on a run it takes over. */
  get claim(): RunClaim {
    return { owner: OWNER, leaseMs: this.leaseMs };
  }

  /** Starts the root action `a0` of a recorded run; the run ends (`run.done`) when the root does. */
  private launch(
    run: LocalRun,
    task: TaskDefinition,
    args: readonly unknown[],
    inputs: { text: string; hash: string },
    customContext: Readonly<Record<string, string>>,
  ): LocalRun {
    this.runs.set(run.name, run);
    this.#watchRuns();
    const record = newActionRecord(run.name, ROOT_ACTION, null, task, null, inputs);
    const finish = (): Promise<void> => this.finishRun(run, record);
    run.done = this.lifecycle
      .execute(new RunningAction(run, null, task, record, customContext), args, undefined)
      .then(finish, finish);
    return run;
  }

  #poll: NodeJS.Timeout | undefined;
  #renewedAt = 0;
  /** The highest abort request sequence number each live run has seen (requests stay in the store). */
  readonly #abortSeen = new WeakMap<LocalRun, number>();

  /**
   * While runs are live: renews this process's lease on each of them every `renewEveryMs`, and polls the store
   * for abort requests made by other processes (`flyte abort run`, or `run.action(name).abort()` from another
   * process). Requests stay in the store (every process sees them); each is applied once here, and one for an
   * action that is not live here any more (it ended) does nothing. A run whose lease cannot be renewed was taken
   * over: it stops here.
   */
  #watchRuns(): void {
    if (this.#poll !== undefined) return;
    this.#renewedAt = Date.now();
    const renewEvery = renewEveryMs(this.leaseMs);
    this.#poll = setInterval(
      () => {
        if (this.runs.size === 0) {
          clearInterval(this.#poll);
          this.#poll = undefined;
          return;
        }
        const store = this.recorder.store;
        if (Date.now() - this.#renewedAt >= renewEvery) {
          this.#renewedAt = Date.now();
          for (const run of this.runs.values()) {
            store.renewLease(run.name, run.epoch, this.leaseMs).then(
              (held) => {
                if (!held) run.loseLease();
              },
              // A failed renewal is retried at the next tick; the lease is long enough for several.
              () => undefined,
            );
          }
        }
        // Requests stay in the store: a run asks for those after the last it saw, and applies only those made at
        // its own epoch or later, so a recovered run does not apply again what an earlier driver was asked.
        const live = [...this.runs.values()];
        const after = Math.min(...live.map((run) => this.#abortSeen.get(run) ?? 0));
        const names = live.map((run) => run.name);
        store.listAbortRequests(names, after).then(
          (requests) => {
            for (const { seq, runName, actionName, reason, runEpoch } of requests) {
              const run = this.runs.get(runName);
              if (run === undefined || seq <= (this.#abortSeen.get(run) ?? 0)) continue;
              this.#abortSeen.set(run, seq);
              if (runEpoch < run.epoch) continue;
              if (actionName === null) run.abort(reason);
              else run.abortAction(actionName, reason);
            }
          },
          // A failed poll is retried at the next tick; the store reports lasting failures through flush().
          () => undefined,
        );
      },
      Math.min(ABORT_POLL_MS, renewEvery),
    );
    // Not unref'd: while a run is live the process stays alive, even if its tasks only wait on signals, so a
    // run is never left half-done by an event loop that ran dry.
  }

  submit(frame: Frame, task: TaskDefinition, args: readonly unknown[], options?: SubmitOptions): Promise<unknown> {
    const run = frame.run as LocalRun;
    const parent = frame.action as RunningAction;
    if (parent.interrupted !== null || parent.ended || frame.attempt !== parent.attempt) {
      return Promise.reject(
        new ActionAbortedError(`cannot start ${task.name}: its parent ${parent.name} is no longer running`, {
          cause: parent.interrupted ?? undefined,
        }),
      );
    }
    let inputs: { text: string; hash: string };
    try {
      inputs = this.codec.encode(args, 'args', task.maxInlineIoBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    // The name is fixed here, synchronously, so the order of calls decides it (not the order of completion).
    const sequence = parent.nextSequence(task.name, inputs.hash);
    const name = childActionName(parent.name, inputs.hash, task.name, sequence, frame.group);
    if (parent.holdsSlot) {
      // A parent that waits for children gives its slot to them, so a deep tree cannot deadlock.
      parent.holdsSlot = false;
      run.slots?.release();
    }
    const record = newActionRecord(run.name, name, parent.name, task, frame.group, inputs, options?.itemIndex ?? null);
    return this.lifecycle.execute(
      new RunningAction(run, parent, task, record, frame.customContext),
      args,
      options?.scope,
    );
  }

  /** Blocking calls come from sync bodies on pool threads (their thread-side controller); never from here. */
  submitSync(): unknown {
    throw new TypeError('a blocking task call can only be made from a sync task body running on the thread pool');
  }

  /**
   * The placement of local mode: runs the body of `action` here. A sync body of a task whose module is known runs
   * on a pool thread (an interrupt ends that thread, even when the body spins); any other body runs inline in
   * `frame`.
   */
  startBody(action: RunningAction, frame: Frame): unknown {
    return startBodyHere(this.pool, this.codec, action, frame);
  }

  beginMap(frame: Frame, total: number): void {
    this.lifecycle.beginMap(frame, total);
  }

  beginStep(frame: Frame, kind: 'trace' | 'durable', name: string, args: readonly unknown[]): StepHandle | StepReplay {
    return this.lifecycle.beginStep(frame, kind, name, args);
  }

  driven(runName: string): LocalRun | undefined {
    return this.runs.get(runName);
  }

  drivenRuns(): string[] {
    return [...this.runs.keys()];
  }

  async waitRun(runName: string): Promise<RunRecord> {
    const run = this.runs.get(runName);
    if (run !== undefined) await run.done;
    return waitElsewhere(this.recorder.store, runName);
  }

  async abortRun(runName: string, reason: string): Promise<void> {
    const run = this.runs.get(runName);
    if (run === undefined) return abortRunElsewhere(this.recorder.store, this.claim, runName, reason);
    run.abort(reason);
    await run.done;
  }

  async abortAction(runName: string, actionName: string, reason: string): Promise<void> {
    const run = this.runs.get(runName);
    if (run === undefined) return abortActionElsewhere(this.recorder.store, runName, actionName, reason);
    if (run.abortAction(actionName, reason)) {
      // The interrupted action records its end and leaves the run's live actions within a few ticks.
      while (run.live.has(actionName)) await new Promise((resolve) => setImmediate(resolve));
      return this.recorder.store.flush();
    }
    // Not running here: it ended (its end is being recorded, or is), or the run has no such action.
    await this.recorder.store.flush();
    const rec = await this.recorder.store.getAction(runName, actionName);
    if (rec === undefined) throw new RangeError(`run ${runName} has no action ${actionName}`);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.runs.values()].map((run) => run.done));
    await this.pool?.close();
  }

  private async finishRun(run: LocalRun, root: Mutable<ActionWrite>): Promise<void> {
    run.phase = root.phase;
    this.recorder.run(run.name, { phase: root.phase, endedAt: root.endedAt ?? Date.now(), error: root.error });
    try {
      await this.recorder.store.flush();
    } finally {
      this.runs.delete(run.name);
    }
  }
}

/** The options of a run that a recovery (or a remote worker) must reuse. */
export function recordedOptions(options: RunContextOptions): RunRecord['options'] {
  const { overwriteCache, disableRunCache, maxActionConcurrency, customContext } = options;
  return { overwriteCache, disableRunCache, maxActionConcurrency, customContext };
}
