/**
 * The local controller: runs every action of a run in this process and records it in the store.
 *
 * A child's inputs are encoded and hashed and it gets its deterministic name in {@link LocalController.submit};
 * from there its whole life is {@link LocalController.execute}: it is recorded, gets ready (inputs schema,
 * recovered or cached output, a slot), runs its attempts (each under its timeout, retried with backoff unless
 * the error says retrying cannot help), is recorded again with its outcome, and its output is decoded for the
 * caller. The root action `a0` takes the same path as every child.
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import {
  ActionAbortedError,
  BaseRuntimeError,
  NonRecoverableError,
  RuntimeDataValidationError,
  RuntimeSystemError,
  TaskTimeoutError,
  fromSerialized,
  serializeError,
} from '../errors.js';
import type { RunContextOptions } from '../options.js';
import type { ActionWrite } from '../store/run-store.js';
import type { CacheBehavior } from '../cache.js';
import type { ActionPhase, ActionRecord, RunPhase, RunRecord } from '../types.js';
import type { CancelScope, Controller, StepHandle, StepReplay, SubmitOptions } from './controller.js';
import { runInFrame, type Frame, type LiveAction, type RunScope } from './frame.js';
import { cacheKey } from './cache-key.js';
import { ROOT_ACTION, childActionName, newRunName, validateRunName } from './naming.js';
import { OWNER, leaseMs, renewEveryMs } from './owner.js';
import type { Recorder } from './recorder.js';
import { Semaphore } from './semaphore.js';
import { isFlatPrimitiveArray, type ValueCodec } from './serde.js';
import type { TaskDefinition } from './task-definition.js';
import { runOnPool } from './sync-host.js';
import { setLongTimeout, type LongTimer } from './timer.js';
import type { ThreadPool } from './thread-pool.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * An action while it runs in this process: what it runs, its record, its abort state and its running children.
 * The controller's steps (see {@link LocalController.execute}) take it as their one argument.
 */
class LocalAction implements LiveAction {
  readonly runName: string;
  readonly name: string;
  readonly taskName: string;
  readonly shortName: string;
  /** The arguments the body gets: decoded from the record, then checked by the task's inputs schema if any. */
  args: unknown[] = [];
  /** The cache key under which a successful output is stored; `undefined` when caching is off. */
  cacheKey: string | undefined = undefined;
  /** Set once the action is aborted for good (run abort, parent abort, cancelled map): no more attempts. */
  abortReason: Error | null = null;
  /** Whether the action holds one of the run's `maxActionConcurrency` slots. */
  holdsSlot = false;
  /** Called once when the current attempt is interrupted (abort or timeout). */
  onInterrupt: ((reason: Error) => void) | null = null;
  /** The attempt running now (1-based): the body of an earlier, given-up attempt may not start children. */
  attempt = 1;
  /** Set once the action ended: a body still going on (detached or given up) may not start children. */
  ended = false;
  /** When recovering: this action's children as recorded before, by name. */
  recorded: Map<string, ActionRecord> | null = null;
  /** When recovering: the encoded outputs of this action's finished traces and durable steps, by name. */
  replay: Map<string, string> | null = null;
  #interrupted: Error | null = null;
  #controller: AbortController | null = null;
  // Created on first use: most actions start no children (a fan-out holds 100 000 of them in flight).
  #children: Set<LocalAction> | null = null;
  #sequencer: Map<string, number> | null = null;

  constructor(
    readonly run: LocalRun,
    readonly parent: LocalAction | null,
    readonly task: TaskDefinition,
    /** The action's record as last written: the controller changes it, then writes it again. */
    readonly record: Mutable<ActionWrite>,
    readonly customContext: Readonly<Record<string, string>>,
  ) {
    this.runName = run.name;
    this.name = record.name;
    this.taskName = task.name;
    this.shortName = task.shortName;
  }

  /** Created on first use: most actions never look at their signal. */
  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#interrupted !== null) this.#controller.abort(this.#interrupted);
    }
    return this.#controller.signal;
  }

  /** Why the current attempt was interrupted, or `null`. */
  get interrupted(): Error | null {
    return this.#interrupted;
  }

  /** Children that have not finished yet. */
  get children(): Set<LocalAction> {
    return (this.#children ??= new Set());
  }

  /** Calls so far under the current attempt, per task and inputs hash. */
  get sequencer(): Map<string, number> {
    return (this.#sequencer ??= new Map());
  }

  /** The call sequence of the next identical call (same `key`: task and inputs hash) under this attempt. */
  nextSequence(key: string): number {
    const sequencer = this.sequencer;
    const sequence = sequencer.get(key) ?? 0;
    sequencer.set(key, sequence + 1);
    return sequence;
  }

  /** Resets the per-attempt state before a retry. */
  newAttempt(): void {
    this.attempt++;
    this.#controller = null;
    this.#interrupted = null;
    this.#sequencer = null;
  }

  abort(reason: Error): void {
    if (this.abortReason !== null) return;
    this.abortReason = reason;
    this.interrupt(reason);
  }

  /** Stops the current attempt: fires the signal, rejects the body's race, aborts the running children. */
  interrupt(reason: Error): void {
    if (this.#interrupted !== null) return;
    this.#interrupted = reason;
    this.#controller?.abort(reason);
    const onInterrupt = this.onInterrupt;
    this.onInterrupt = null;
    onInterrupt?.(reason);
    const why = reason instanceof TaskTimeoutError ? 'timed out' : 'was aborted';
    this.abortChildren(`aborted because its parent ${this.name} ${why}`);
  }

  /** Aborts every running child with an {@link ActionAbortedError} of `message`. */
  abortChildren(message: string): void {
    if (this.#children === null) return;
    for (const child of this.#children) child.abort(new ActionAbortedError(message, { actionName: child.name }));
  }
}

/** A run driven by this process. */
export class LocalRun implements RunScope {
  readonly mode = 'local' as const;
  phase: RunPhase = 'running';
  /** Every action of the run that is running in this process, by name. */
  readonly live = new Map<string, LocalAction>();
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
      throw new RangeError(`maxActionConcurrency: expected a non-negative integer (0 = no limit); received ${String(max)}`);
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
    this.live.get(ROOT_ACTION)?.abort(new ActionAbortedError(`run ${this.name} was aborted${reason ? `: ${reason}` : ''}`));
  }

  /**
   * Another process claimed the run (this one hung past its lease, and the run was recovered or aborted
   * elsewhere): stops every action here. The store refuses this process's writes to the run from now on.
   */
  loseLease(): void {
    if (this.takenOver) return;
    this.takenOver = true;
    this.live.get(ROOT_ACTION)?.abort(takenOverError(this));
  }

  /** Aborts one running action and its running descendants; `false` when it is not running here. */
  abortAction(name: string, reason: string): boolean {
    const action = this.live.get(name);
    if (action === undefined) return false;
    action.abort(new ActionAbortedError(`action ${name} was aborted${reason ? `: ${reason}` : ''}`, { actionName: name }));
    return true;
  }
}

/** How often live runs check for abort requests from other processes. */
const ABORT_POLL_MS = 250;

/** Why a run's actions stop in a process that lost the run to another one (its lease was not renewed in time). */
function takenOverError(run: LocalRun): RuntimeSystemError {
  return new RuntimeSystemError(
    'RunTakenOver',
    `run ${run.name} was taken over by another process while this one (${OWNER}) did not renew its lease; ` +
      'this process stopped driving it',
  );
}

/** Runs actions in this process. */
export class LocalController implements Controller {
  readonly mode = 'local' as const;
  /** Runs driven by this process, by name. */
  readonly runs = new Map<string, LocalRun>();
  /** Runs sync task bodies on worker threads; without it (or for a task of unknown module) they run inline. */
  pool: ThreadPool | undefined;

  constructor(
    readonly recorder: Recorder,
    readonly codec: ValueCodec,
  ) {}

  /**
   * Records a new run of `task` and starts its root action. Resolves once the run is recorded; the run goes on
   * in the background (`run.done`).
   */
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

  /**
   * Starts the root of a recorded run again under the same run, in recovery mode: children, traces and durable
   * steps that succeeded before return their recorded outputs instead of running. `record` is the run as this
   * process claimed it (`RunStore.claimRun` with {@link LocalController.claim}): the claim makes this process
   * its one driver.
   */
  resumeRun(record: RunRecord, task: TaskDefinition, args: readonly unknown[]): LocalRun {
    const inputs = this.codec.encode(args, 'args', task.maxInlineIoBytes);
    const run = new LocalRun(record.name, this, { ...record.options, labels: record.labels }, record.epoch, true);
    return this.launch(run, task, args, inputs, record.options.customContext ?? {});
  }

  /** How long this process's leases on its runs hold (`FLYTE_LEASE_MS`). */
  readonly leaseMs = leaseMs();

  /** The claim this process makes on a run it takes over. */
  get claim(): { owner: string; leaseMs: number } {
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
    const record = this.newRecord(run.name, ROOT_ACTION, null, task, null, inputs);
    const finish = (): Promise<void> => this.finishRun(run, record);
    run.done = this.execute(new LocalAction(run, null, task, record, customContext), args, undefined).then(
      finish,
      finish,
    );
    return run;
  }

  #poll: NodeJS.Timeout | undefined;
  #renewedAt = 0;

  /**
   * While runs are live: renews this process's lease on each of them every `renewEveryMs`, and polls the store
   * for abort requests made by other processes (`flyte abort run`, or `run.action(name).abort()` from another
   * process). Requests are taken out of the store as they are applied; one for an action that is not live here
   * any more (it ended) is dropped. A run whose lease cannot be renewed was taken over: it stops here.
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
        store.takeAbortRequests([...this.runs.keys()]).then(
          (requests) => {
            for (const { runName, actionName, reason } of requests) {
              const run = this.runs.get(runName);
              if (actionName === null) run?.abort(reason);
              else run?.abortAction(actionName, reason);
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
    const parent = frame.action as LocalAction;
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
    const sequence = parent.nextSequence(`${task.name}\0${inputs.hash}`);
    const name = childActionName(parent.name, inputs.hash, task.name, sequence, frame.group);
    if (parent.holdsSlot) {
      // A parent that waits for children gives its slot to them, so a deep tree cannot deadlock.
      parent.holdsSlot = false;
      run.slots?.release();
    }
    const record = this.newRecord(run.name, name, parent.name, task, frame.group, inputs);
    return this.execute(new LocalAction(run, parent, task, record, frame.customContext), args, options?.scope);
  }

  /** Blocking calls come from sync bodies on pool threads (their thread-side controller); never from here. */
  submitSync(): unknown {
    throw new TypeError('a blocking task call can only be made from a sync task body running on the thread pool');
  }

  private newRecord(
    runName: string,
    name: string,
    parentName: string | null,
    task: TaskDefinition,
    group: string | null,
    inputs: { text: string; hash: string },
  ): Mutable<ActionWrite> {
    return {
      runName,
      name,
      parentName,
      taskName: task.name,
      shortName: task.shortName,
      group,
      phase: 'queued',
      cacheHit: false,
      attempts: 0,
      startedAt: null,
      endedAt: null,
      error: null,
      inputs: inputs.text,
      inputsHash: inputs.hash,
    };
  }

  /**
   * The whole life of one action, from its record to its decoded output. It joins the tree of running actions;
   * gets ready ({@link LocalController.prepare}: inputs schema, output recorded before, cache, slot); runs its
   * attempts ({@link LocalController.attempt}: each recorded, under its timeout, retried with backoff unless the
   * error says retrying cannot help); is recorded with its outcome; and leaves the tree, ending the children it
   * did not wait for.
   *
   * The usual child has nothing to get ready for, and its first attempt starts at once. Only the steps that
   * wait are async functions: in a fan-out of 100 000 children every pending async frame stays in memory.
   */
  private execute(live: LocalAction, args: readonly unknown[], scope: CancelScope | undefined): Promise<unknown> {
    const { run, parent, record } = live;
    parent?.children.add(live);
    run.live.set(live.name, live);
    scope?.enter(live);
    let result: Promise<unknown>;
    try {
      // The body gets its own copy of the arguments, as decoded from the record (a copy of primitives is the same).
      const inputs = record.inputs as string;
      if (this.codec.needsLoad(inputs)) {
        // Offloaded inputs (or uploading files): read back once durable, before any record refers to them.
        result = this.codec.load(inputs).then((decoded) => {
          live.args = decoded as unknown[];
          return mayWaitBeforeFirstAttempt(live) ? this.prepare(live) : this.attempt(live, 1);
        });
      } else {
        live.args = isFlatPrimitiveArray(args) ? args.slice() : (this.codec.decode(inputs) as unknown[]);
        result = mayWaitBeforeFirstAttempt(live) ? this.prepare(live) : this.attempt(live, 1);
      }
    } catch (err) {
      result = Promise.reject(err);
    }
    // The outcome reaches the caller only once the commit that holds it is done (group commit: the children
    // that end in one turn of the event loop share one commit), so a crash can never lose an outcome that a
    // parent acted on: recovery re-runs at most the children that were still in flight.
    const store = this.recorder.store;
    return result.then(
      (value) => {
        this.leave(live, scope);
        return store.durable().then(() => {
          if (run.takenOver) throw takenOverError(run);
          return value;
        });
      },
      (err: unknown) => {
        try {
          if (record.endedAt === null) this.recordFinal(live, err);
        } finally {
          this.leave(live, scope);
        }
        const error = fromSerialized(record.error ?? serializeError(err, live.name));
        // Thrown, not a rejected promise returned: that would settle two ticks later than a success does.
        return store.durable().then(() => {
          throw error;
        });
      },
    );
  }

  /**
   * Before the first attempt: checks the inputs schema, returns the output recorded before (recovery) or the
   * cached one, waits for a slot; then runs the attempts.
   */
  private async prepare(live: LocalAction): Promise<unknown> {
    const { run, parent, task, record } = live;
    if (task.inputs !== undefined) live.args = await validateInputs(task.inputs, live.args, task.name);
    const earlier = parent?.recorded?.get(record.name);
    if (earlier?.phase === 'succeeded') {
      const io = await this.recorder.store.getActionIO(run.name, record.name);
      // Recovered: the child finished before; its record stays as it is.
      if (io?.outputs != null) return this.codec.load(io.outputs);
    }
    const behavior = cacheBehavior(run, task);
    if (behavior !== 'disable') live.cacheKey = cacheKey(task, live.args, record.inputsHash as string);
    if (behavior === 'auto') {
      const hit = await this.recorder.store.getCacheEntry(live.cacheKey as string);
      if (hit !== undefined) return this.recordCacheHit(record, hit.outputs);
    }
    if (parent !== null && run.slots !== null) await this.acquireSlot(run.slots, live);
    if (run.recover) await this.loadRecorded(live);
    return this.attempt(live, 1);
  }

  /** Waits for one of the run's slots, at most `Timeout.maxQueuedTime`: past it the action ends `timed_out`. */
  private async acquireSlot(slots: Semaphore, live: LocalAction): Promise<void> {
    if (!slots.tryAcquire()) {
      this.recorder.action(live.record);
      let gaveUp = false;
      let timer: LongTimer | undefined;
      const limit = live.task.queuedTimeoutMs;
      if (limit !== undefined) {
        timer = setLongTimeout(() => {
          live.interrupt(
            new TaskTimeoutError(`${live.task.name} (action ${live.name}) waited more than ${limit} ms to start`, {
              actionName: live.name,
              timeoutMs: limit,
            }),
          );
        }, limit);
      }
      try {
        await new Promise<void>((resolve, reject) => {
          live.onInterrupt = (reason) => {
            gaveUp = true;
            reject(reason);
          };
          void slots.acquire().then(() => {
            if (gaveUp) slots.release();
            else resolve();
          });
        });
      } finally {
        timer?.clear();
        live.onInterrupt = null;
      }
    }
    live.holdsSlot = true;
  }

  /**
   * Runs attempt `n`, and the next ones while attempts fail and may be retried: resolves with the output of the
   * attempt that succeeded, or rejects with the error of the last one, the action recorded as failed.
   */
  private attempt(live: LocalAction, n: number): Promise<unknown> {
    const { record } = live;
    const startedAt = Date.now();
    record.phase = 'running';
    record.attempts = n;
    record.startedAt ??= startedAt;
    this.recorder.action(record);
    if (recordsAttempt(live, n)) this.recordAttempt(live, n, 'running', startedAt, null, null);
    return this.runBody(live, n).then(
      (value) => this.attemptSucceeded(live, n, startedAt, value),
      (err: unknown) => this.attemptFailed(live, n, startedAt, err),
    );
  }

  /** Attempt `n` returned `value`: records the output and the success; returns the output as the caller gets it. */
  private attemptSucceeded(live: LocalAction, n: number, startedAt: number, value: unknown): unknown {
    const { run, task, record } = live;
    try {
      const output = this.codec.encode(value, 'output', task.maxInlineIoBytes);
      if (output.written !== undefined) {
        // An offloaded output (or uploaded files) is durable before the record that refers to it: then again.
        const again = (): unknown => this.attemptSucceeded(live, n, startedAt, value);
        return output.written.then(again, (err: unknown) => this.attemptFailed(live, n, startedAt, err));
      }
      const endedAt = Date.now();
      if (recordsAttempt(live, n)) this.recordAttempt(live, n, 'succeeded', startedAt, endedAt, null);
      record.phase = 'succeeded';
      record.endedAt = endedAt;
      record.outputs = output.text;
      this.recorder.action({ ...record, inputs: undefined, inputsHash: undefined });
      if (live.cacheKey !== undefined) {
        this.recorder.store.putCacheEntry({
          key: live.cacheKey,
          taskName: task.name,
          outputs: output.text,
          createdAt: endedAt,
          runName: run.name,
          actionName: live.name,
        });
      }
      // The caller gets its own copy, as decoded from the record; a primitive is its own copy.
      return isPrimitive(value) ? value : this.codec.decode(output.full);
    } catch (err) {
      return this.attemptFailed(live, n, startedAt, err);
    }
  }

  /**
   * Attempt `n` failed with `err` (or was interrupted): records it, then retries if the error may be retried;
   * otherwise records the action's failure and throws. (Not async: a failure that is not retried reaches the
   * caller as soon as a success would.)
   */
  private attemptFailed(live: LocalAction, n: number, startedAt: number, err: unknown): Promise<unknown> {
    const { phase, error } = outcome(live, err);
    this.recordAttempt(live, n, phase, startedAt, Date.now(), serializeError(error, live.name));
    if (phase !== 'aborted' && n < live.task.retries.count + 1 && isRetryable(error)) return this.retry(live, n, error);
    this.recordFinal(live, live.abortReason ?? error);
    throw error;
  }

  /** After attempt `n` failed with `error`: waits for the backoff, then runs the next attempt unless aborted. */
  private async retry(live: LocalAction, n: number, error: unknown): Promise<unknown> {
    await this.backoff(live, n);
    if (live.abortReason !== null) {
      this.recordFinal(live, live.abortReason);
      throw error;
    }
    live.newAttempt();
    if (live.run.recover) await this.loadRecorded(live);
    return this.attempt(live, n + 1);
  }

  /** Leaves the tree of running actions: ends the children the body did not wait for, gives back the slot. */
  private leave(live: LocalAction, scope: CancelScope | undefined): void {
    const { run, parent } = live;
    live.ended = true;
    run.live.delete(live.name);
    // Structured concurrency: children the body started but did not wait for end with it.
    live.abortChildren(`aborted: its parent ${live.name} finished before it`);
    if (live.holdsSlot) {
      live.holdsSlot = false;
      run.slots?.release();
    }
    parent?.children.delete(live);
    scope?.leave(live);
  }

  /** Runs one attempt of the body, racing it against interruption (abort, timeout). */
  private runBody(live: LocalAction, attempt: number): Promise<unknown> {
    const { run, task, args, customContext } = live;
    return new Promise((resolve, reject) => {
      if (live.interrupted !== null) {
        reject(live.interrupted);
        return;
      }
      let timer: LongTimer | undefined;
      const settle = (): void => {
        timer?.clear();
        live.onInterrupt = null;
      };
      live.onInterrupt = (reason) => {
        settle();
        reject(reason);
      };
      if (task.timeoutMs !== undefined) {
        const ms = task.timeoutMs;
        timer = setLongTimeout(() => {
          live.interrupt(
            new TaskTimeoutError(`${task.name} (action ${live.name}) timed out after ${ms} ms`, {
              actionName: live.name,
              timeoutMs: ms,
            }),
          );
        }, ms);
      }
      const frame: Frame = { run, action: live, attempt, group: null, customContext, kind: 'task', sync: false };
      if (!task.isAsync && task.module !== null && this.pool !== undefined) {
        // A sync body runs on a pool thread; an interrupt ends that thread, even when the body spins.
        const job = runOnPool(this.pool, this.codec, frame, task, args);
        live.onInterrupt = (reason) => {
          settle();
          job.cancel();
          reject(reason);
        };
        job.result.then(
          (value) => {
            settle();
            resolve(value);
          },
          (err: unknown) => {
            settle();
            reject(err);
          },
        );
        return;
      }
      let result: unknown;
      try {
        result = runInFrame(frame, () => task.fn(...(args as never[])));
      } catch (err) {
        settle();
        reject(err);
        return;
      }
      if (isPromiseLike(result)) {
        result.then(
          (value) => {
            settle();
            resolve(value);
          },
          (err: unknown) => {
            settle();
            reject(err);
          },
        );
      } else {
        settle();
        resolve(result);
      }
    });
  }

  /** Records an action answered from the cache, and decodes the cached output. */
  private recordCacheHit(record: Mutable<ActionWrite>, outputs: string): unknown {
    const now = Date.now();
    record.phase = 'succeeded';
    record.cacheHit = true;
    record.startedAt = now;
    record.endedAt = now;
    record.outputs = outputs;
    this.recorder.action(record);
    return this.codec.load(outputs);
  }

  /** Recovery: loads what this action's children and steps recorded before. */
  private async loadRecorded(live: LocalAction): Promise<void> {
    const store = this.recorder.store;
    const runName = live.runName;
    const children = await store.listActions(runName, { parentName: live.name });
    live.recorded = new Map(children.map((a) => [a.name, a]));
    live.replay = new Map();
    for (const step of children) {
      if (step.phase !== 'succeeded' || !isStepName(step.taskName)) continue;
      const io = await store.getActionIO(runName, step.name);
      if (io?.outputs != null) live.replay.set(step.name, io.outputs);
    }
  }

  beginMap(frame: Frame, total: number): void {
    const parent = frame.action as LocalAction;
    if (frame.group === null) return;
    // Numbered like child calls, per attempt: running the same parent again writes the same record.
    const seq = parent.nextSequence(`map\0${frame.group}`);
    this.recorder.mapTotal({ runName: frame.run.name, parentName: parent.name, group: frame.group, seq, total });
  }

  beginStep(frame: Frame, kind: 'trace' | 'durable', name: string, args: readonly unknown[]): StepHandle | StepReplay {
    const run = frame.run as LocalRun;
    const live = frame.action as LocalAction;
    const inputs = this.codec.encode(args, 'args', Number.POSITIVE_INFINITY);
    const taskName = `${kind}:${name}`;
    const sequence = live.nextSequence(`${taskName}\0${inputs.hash}`);
    const actionName = childActionName(live.name, inputs.hash, taskName, sequence, frame.group);
    const replayed = live.replay?.get(actionName);
    if (replayed !== undefined) return { replayed: true, value: this.codec.decode(replayed) };
    const startedAt = Date.now();
    const record: Mutable<ActionWrite> = {
      runName: run.name,
      name: actionName,
      parentName: live.name,
      taskName,
      shortName: name,
      group: frame.group,
      phase: 'running',
      cacheHit: false,
      attempts: 1,
      startedAt,
      endedAt: null,
      error: null,
      inputs: inputs.text,
      inputsHash: inputs.hash,
    };
    this.recorder.action(record);
    const stepFrame: Frame = { ...frame, kind: 'trace' };
    return {
      replayed: false,
      frame: stepFrame,
      succeed: (value: unknown) => {
        const output = this.codec.encode(value, 'output', Number.POSITIVE_INFINITY);
        record.phase = 'succeeded';
        record.endedAt = Date.now();
        record.outputs = output.text;
        this.recorder.action({ ...record, inputs: undefined, inputsHash: undefined });
      },
      fail: (err: unknown) => {
        record.phase = 'failed';
        record.endedAt = Date.now();
        record.error = serializeError(err, actionName);
        this.recorder.action({ ...record, inputs: undefined, inputsHash: undefined });
      },
    };
  }

  private backoff(live: LocalAction, attempt: number): Promise<void> {
    const { backoffMs, backoffFactor, maxBackoffMs } = live.task.retries;
    const ms = Math.min(backoffMs * backoffFactor ** (attempt - 1), maxBackoffMs);
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        live.onInterrupt = null;
        resolve();
      }, ms);
      live.onInterrupt = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private recordAttempt(
    live: LocalAction,
    attempt: number,
    phase: ActionPhase,
    startedAt: number,
    endedAt: number | null,
    error: ActionWrite['error'],
  ): void {
    this.recorder.attempt({ runName: live.runName, actionName: live.name, attempt, phase, startedAt, endedAt, error });
  }

  /** Records the action's end: failed, timed out or aborted, with its error. */
  private recordFinal(live: LocalAction, err: unknown): void {
    const { record } = live;
    const { phase, error } = outcome(live, err);
    record.phase = phase;
    record.endedAt = Date.now();
    record.error = serializeError(error, live.name);
    this.recorder.action({ ...record, inputs: undefined, inputsHash: undefined });
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

/** The options of a run that a recovery must reuse. */
function recordedOptions(options: RunContextOptions): RunRecord['options'] {
  const { overwriteCache, disableRunCache, maxActionConcurrency, customContext } = options;
  return { overwriteCache, disableRunCache, maxActionConcurrency, customContext };
}

/**
 * Whether an action may have to wait for something before its first attempt: its inputs schema (which may be
 * async), the store (recovery, cache), or a slot of `maxActionConcurrency`.
 */
function mayWaitBeforeFirstAttempt(live: LocalAction): boolean {
  const { run, task } = live;
  return (
    task.inputs !== undefined ||
    run.recover ||
    cacheBehavior(run, task) !== 'disable' ||
    (live.parent !== null && run.slots !== null)
  );
}

/**
 * Whether attempt `n` of an action gets an attempt record of its own while it runs and when it succeeds. The
 * first attempt does not: until it fails it is the action itself, and stores list it from the action record
 * (see `RunStore.listAttempts`), which saves a row write per action. In a recovered run it does, because the
 * action may have attempt records from the earlier process that it must replace. Every failed attempt is
 * recorded.
 */
function recordsAttempt(live: LocalAction, n: number): boolean {
  return n > 1 || live.run.recover;
}

/** Whether a record is a trace or durable step rather than a task's action. */
function isStepName(taskName: string): boolean {
  return taskName.startsWith('trace:') || taskName.startsWith('durable:');
}

/** The cache behaviour of a call, after the run's switches. */
function cacheBehavior(run: LocalRun, task: TaskDefinition): CacheBehavior {
  const own = task.cache.behavior;
  if (own === 'disable' || run.options.disableRunCache === true) return 'disable';
  if (run.options.overwriteCache === true) return 'override';
  return own;
}

/** The terminal phase of a failed attempt and the error to record for it. */
function outcome(live: LocalAction, err: unknown): { phase: ActionPhase; error: unknown } {
  if (live.abortReason !== null) return { phase: 'aborted', error: live.abortReason };
  if (live.interrupted instanceof TaskTimeoutError) return { phase: 'timed_out', error: live.interrupted };
  return { phase: 'failed', error: err };
}

/** Every user error is retried, except those that say retrying cannot help. */
function isRetryable(err: unknown): boolean {
  if (err instanceof NonRecoverableError || err instanceof RuntimeDataValidationError) return false;
  if (err instanceof BaseRuntimeError && err.code === 'NonRecoverableError') return false;
  return true;
}

function isPrimitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

async function validateInputs(schema: StandardSchemaV1, args: unknown[], taskName: string): Promise<unknown[]> {
  const result = await schema['~standard'].validate(args);
  if (result.issues === undefined) return result.value as unknown[];
  const first = result.issues[0];
  const path = first?.path?.map((p) => (typeof p === 'object' ? p.key : p)) ?? [];
  const where = path.length === 0 ? 'args' : `args${path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}`;
  const all = result.issues.map((i) => i.message).join('; ');
  throw new RuntimeDataValidationError(`inputs of ${taskName} failed validation at ${where}: ${all}`, { path: where });
}
