/**
 * The local controller: runs every action of a run in this process and records it in the store.
 *
 * The whole life of an action is {@link LocalController.execute}: inputs are encoded and hashed, the child gets
 * its deterministic name, it is recorded, waits for a slot, runs its attempts (each under its timeout, retried
 * with backoff unless the error says retrying cannot help), is recorded again with its outcome, and its output
 * is decoded for the caller. The root action `a0` takes the same path as every child.
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import {
  ActionAbortedError,
  BaseRuntimeError,
  NonRecoverableError,
  RuntimeDataValidationError,
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
import { OWNER } from './owner.js';
import type { Recorder } from './recorder.js';
import { Semaphore } from './semaphore.js';
import type { ValueCodec } from './serde.js';
import type { TaskDefinition } from './task-definition.js';
import { runOnPool } from './sync-host.js';
import type { ThreadPool } from './thread-pool.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** An action while it runs in this process: its abort state and its running children. */
class LocalAction implements LiveAction {
  readonly children = new Set<LocalAction>();
  readonly sequencer = new Map<string, number>();
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

  constructor(
    readonly runName: string,
    readonly name: string,
    readonly taskName: string,
    readonly shortName: string,
    readonly parent: LocalAction | null,
  ) {}

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

  /** Resets the per-attempt state before a retry. */
  newAttempt(): void {
    this.attempt++;
    this.#controller = null;
    this.#interrupted = null;
    this.sequencer.clear();
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
    for (const child of this.children) {
      child.abort(new ActionAbortedError(`aborted because its parent ${this.name} ${why}`, { actionName: child.name }));
    }
  }
}

/** A run driven by this process. */
export class LocalRun implements RunScope {
  readonly mode = 'local' as const;
  phase: RunPhase = 'running';
  /** The root action while it runs. */
  root: LocalAction | null = null;
  /** Every action of the run that is running in this process, by name. */
  readonly live = new Map<string, LocalAction>();
  /** Settles when the run reached a terminal phase and its records are durable. */
  done: Promise<void> = Promise.resolve();
  /** Limits concurrently executing actions when `maxActionConcurrency` is set. */
  readonly slots: Semaphore | null;

  constructor(
    readonly name: string,
    readonly controller: LocalController,
    readonly options: RunContextOptions,
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
    this.root?.abort(new ActionAbortedError(`run ${this.name} was aborted${reason ? `: ${reason}` : ''}`));
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
    const run = new LocalRun(name, this, options);
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
      inputs: inputs.text,
    });
    this.runs.set(name, run);
    this.#watchAbortRequests();
    const root: Mutable<ActionWrite> = this.newRecord(name, ROOT_ACTION, null, task, null, inputs);
    run.done = this.execute(run, null, task, root, options.customContext ?? {}, undefined).then(
      () => this.finishRun(run, root),
      () => this.finishRun(run, root),
    );
    return run;
  }

  /**
   * Starts the root of a recorded run again under the same run, in recovery mode: children, traces and durable
   * steps that succeeded before return their recorded outputs instead of running.
   */
  async resumeRun(record: RunRecord, task: TaskDefinition, args: readonly unknown[]): Promise<LocalRun> {
    const inputs = this.codec.encode(args, 'args', task.maxInlineIoBytes);
    const run = new LocalRun(record.name, this, { ...record.options, labels: record.labels }, true);
    this.recorder.run(record.name, { phase: 'running', endedAt: null, error: null, owner: OWNER });
    await this.recorder.store.flush();
    this.runs.set(run.name, run);
    this.#watchAbortRequests();
    const root: Mutable<ActionWrite> = this.newRecord(run.name, ROOT_ACTION, null, task, null, inputs);
    run.done = this.execute(run, null, task, root, record.options.customContext ?? {}, undefined).then(
      () => this.finishRun(run, root),
      () => this.finishRun(run, root),
    );
    return run;
  }

  #abortPoll: NodeJS.Timeout | undefined;

  /**
   * While runs are live, polls the store for abort requests made by other processes (`flyte abort run`), and
   * keeps the process alive.
   */
  #watchAbortRequests(): void {
    if (this.#abortPoll !== undefined) return;
    this.#abortPoll = setInterval(() => {
      if (this.runs.size === 0) {
        clearInterval(this.#abortPoll);
        this.#abortPoll = undefined;
        return;
      }
      this.recorder.store.listAbortRequests([...this.runs.keys()]).then(
        (requests) => {
          for (const [name, reason] of requests) this.runs.get(name)?.abort(reason);
        },
        // A failed poll is retried at the next tick; the store reports lasting failures through flush().
        () => undefined,
      );
    }, ABORT_POLL_MS);
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
    const key = `${task.name}\0${inputs.hash}`;
    const sequence = parent.sequencer.get(key) ?? 0;
    parent.sequencer.set(key, sequence + 1);
    const name = childActionName(parent.name, inputs.hash, task.name, sequence, frame.group);
    if (parent.holdsSlot) {
      // A parent that waits for children gives its slot to them, so a deep tree cannot deadlock.
      parent.holdsSlot = false;
      run.slots?.release();
    }
    const record = this.newRecord(run.name, name, parent.name, task, frame.group, inputs);
    return this.execute(run, parent, task, record, frame.customContext, options?.scope);
  }

  submitSync(): unknown {
    throw new TypeError('blocking calls of sync tasks from sync task bodies need the worker-thread pool (not built yet)');
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

  /** The whole life of one action, from its record to its decoded output. */
  private async execute(
    run: LocalRun,
    parent: LocalAction | null,
    task: TaskDefinition,
    record: Mutable<ActionWrite>,
    customContext: Readonly<Record<string, string>>,
    scope: CancelScope | undefined,
  ): Promise<unknown> {
    const live = new LocalAction(run.name, record.name, task.name, task.shortName, parent);
    if (parent === null) run.root = live;
    else parent.children.add(live);
    run.live.set(live.name, live);
    scope?.enter(live);
    try {
      let args = this.codec.decode(record.inputs as string) as unknown[];
      if (task.inputs !== undefined) args = await validateInputs(task.inputs, args, task.name);
      const earlier = parent?.recorded?.get(record.name);
      if (earlier?.phase === 'succeeded') {
        const io = await this.recorder.store.getActionIO(run.name, record.name);
        // Recovered: the child finished before; its record stays as it is.
        if (io?.outputs != null) return this.codec.decode(io.outputs);
      }
      const behavior = cacheBehavior(run, task);
      const key = behavior === 'disable' ? undefined : cacheKey(task, args, record.inputsHash as string);
      if (behavior === 'auto') {
        const hit = await this.recorder.store.getCacheEntry(key as string);
        if (hit !== undefined) return this.recordCacheHit(record, hit.outputs);
      }
      if (parent !== null && run.slots !== null) await this.acquireSlot(run.slots, live, record);
      return await this.attempts(run, live, task, args, record, customContext, key);
    } catch (err) {
      if (record.endedAt === null) this.recordFinal(live, record, err);
      throw fromSerialized(record.error ?? serializeError(err, live.name));
    } finally {
      live.ended = true;
      run.live.delete(live.name);
      // Structured concurrency: children the body started but did not wait for end with it.
      for (const child of live.children) {
        child.abort(new ActionAbortedError(`aborted: its parent ${live.name} finished before it`, { actionName: child.name }));
      }
      if (live.holdsSlot) {
        live.holdsSlot = false;
        run.slots?.release();
      }
      parent?.children.delete(live);
      scope?.leave(live);
    }
  }

  private async acquireSlot(slots: Semaphore, live: LocalAction, record: Mutable<ActionWrite>): Promise<void> {
    if (!slots.tryAcquire()) {
      this.recorder.action({ ...record });
      let gaveUp = false;
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
      live.onInterrupt = null;
    }
    live.holdsSlot = true;
  }

  private async attempts(
    run: LocalRun,
    live: LocalAction,
    task: TaskDefinition,
    args: unknown[],
    record: Mutable<ActionWrite>,
    customContext: Readonly<Record<string, string>>,
    cacheKeyToWrite: string | undefined,
  ): Promise<unknown> {
    const maxAttempts = task.retries.count + 1;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) live.newAttempt();
      if (run.recover) await this.loadRecorded(run, live);
      const startedAt = Date.now();
      record.phase = 'running';
      record.attempts = attempt;
      record.startedAt ??= startedAt;
      this.recorder.action({ ...record });
      const attemptRecord = {
        runName: run.name,
        actionName: live.name,
        attempt,
        phase: 'running' as ActionPhase,
        startedAt,
        endedAt: null as number | null,
        error: null as ActionWrite['error'],
      };
      this.recorder.attempt(attemptRecord);
      try {
        const value = await this.runBody(run, live, task, args, attempt, customContext);
        const output = this.codec.encode(value, 'output', task.maxInlineIoBytes);
        const endedAt = Date.now();
        this.recorder.attempt({ ...attemptRecord, phase: 'succeeded', endedAt });
        record.phase = 'succeeded';
        record.endedAt = endedAt;
        record.outputs = output.text;
        this.recorder.action({ ...record, inputs: undefined, inputsHash: undefined });
        if (cacheKeyToWrite !== undefined) {
          this.recorder.store.putCacheEntry({
            key: cacheKeyToWrite,
            taskName: task.name,
            outputs: output.text,
            createdAt: endedAt,
            runName: run.name,
            actionName: live.name,
          });
        }
        return this.codec.decode(output.text);
      } catch (err) {
        const { phase, error } = outcome(live, err);
        const stored = serializeError(error, live.name);
        this.recorder.attempt({ ...attemptRecord, phase, endedAt: Date.now(), error: stored });
        if (phase !== 'aborted' && attempt < maxAttempts && isRetryable(error)) {
          await this.backoff(task, attempt, live);
          if (live.abortReason === null) continue;
        }
        this.recordFinal(live, record, live.abortReason ?? error);
        throw error;
      }
    }
  }

  /** Runs one attempt of the body, racing it against interruption (abort, timeout). */
  private runBody(
    run: LocalRun,
    live: LocalAction,
    task: TaskDefinition,
    args: unknown[],
    attempt: number,
    customContext: Readonly<Record<string, string>>,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (live.interrupted !== null) {
        reject(live.interrupted);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const settle = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        live.onInterrupt = null;
      };
      live.onInterrupt = (reason) => {
        settle();
        reject(reason);
      };
      if (task.timeoutMs !== undefined) {
        const ms = task.timeoutMs;
        timer = setTimeout(() => {
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
    this.recorder.action({ ...record });
    return this.codec.decode(outputs);
  }

  /** Recovery: loads what this action's children and steps recorded before. */
  private async loadRecorded(run: LocalRun, live: LocalAction): Promise<void> {
    const store = this.recorder.store;
    const children = await store.listActions(run.name, { parentName: live.name });
    live.recorded = new Map(children.map((a) => [a.name, a]));
    live.replay = new Map();
    for (const step of children) {
      if (step.phase !== 'succeeded' || !isStepName(step.taskName)) continue;
      const io = await store.getActionIO(run.name, step.name);
      if (io?.outputs != null) live.replay.set(step.name, io.outputs);
    }
  }

  beginStep(frame: Frame, kind: 'trace' | 'durable', name: string, args: readonly unknown[]): StepHandle | StepReplay {
    const run = frame.run as LocalRun;
    const live = frame.action as LocalAction;
    const inputs = this.codec.encode(args, 'args', Number.POSITIVE_INFINITY);
    const taskName = `${kind}:${name}`;
    const key = `${taskName}\0${inputs.hash}`;
    const sequence = live.sequencer.get(key) ?? 0;
    live.sequencer.set(key, sequence + 1);
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
    this.recorder.action({ ...record });
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

  private backoff(task: TaskDefinition, attempt: number, live: LocalAction): Promise<void> {
    const { backoffMs, backoffFactor, maxBackoffMs } = task.retries;
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

  private recordFinal(live: LocalAction, record: Mutable<ActionWrite>, err: unknown): void {
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
