/**
 * The life of one action, wherever its body runs: from its record to its decoded output.
 *
 * {@link ActionLifecycle.execute} records the action, gets it ready (inputs schema, recovered or cached output, a
 * slot), runs its attempts (each under its timeout, retried with backoff unless the error says retrying cannot
 * help), records it again with its outcome, and hands the output to the caller once its record is durable. Only
 * the start of an attempt's body is left to a {@link Placement}: the local controller runs it here (inline in a
 * frame, or on the thread pool); a worker runs it on itself.
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
import type { CacheBehavior } from '../cache.js';
import type { RunContextOptions } from '../options.js';
import type { ActionWrite } from '../store/run-store.js';
import type { ActionPhase, ActionRecord } from '../types.js';
import { cacheKey } from './cache-key.js';
import type { CancelScope, Frame, LiveAction, RunScope, StepHandle, StepReplay } from './controller.js';
import { childActionName } from './naming.js';
import { OWNER } from './owner.js';
import type { Recorder } from './recorder.js';
import { isFlatPrimitiveArray, type StoredValue, type ValueCodec } from './serde.js';
import type { TaskDefinition } from './task-definition.js';
import { setLongTimeout, type LongTimer } from './timer.js';
import {
  attemptFailedEvent,
  endActionSpan,
  startActionSpan,
  withActiveSpan,
  type ActionSpan,
  type SpanParent,
} from './tracing.js';

/** `T` with its `readonly` fields writable: the lifecycle updates an action's record in place. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The `maxActionConcurrency` slots of a run, as the lifecycle takes and gives them back: a local `Semaphore`.
 * A remote run has none here (`slots: null`): its slots are a semaphore in the engine shared by all workers,
 * which the remote controller takes before it enqueues a child and gives back when the action ends (see
 * `Engine.acquireSlot`); it sets {@link RunningAction.holdsSlot} so that a parent's first child call gives its
 * slot back, as here.
 */
export interface ActionSlots {
  /** Takes a slot if one is free now. */
  tryAcquire(): boolean;
  /** Resolves once a slot was taken for the caller. */
  acquire(): Promise<void>;
  /** Gives a slot back. */
  release(): void;
}

/** The run of an action, as its lifecycle needs it. */
export interface LifecycleRun extends RunScope {
  readonly options: RunContextOptions;
  /** Re-running a recorded run: finished children and steps return their recorded outputs. */
  readonly recover: boolean;
  /** Limits concurrently executing actions when `maxActionConcurrency` is set. */
  readonly slots: ActionSlots | null;
  /** Set when another process took the run over: no outcome reaches a caller here any more. */
  readonly takenOver: boolean;
  /** Every action of the run that is running here, by name. */
  readonly live: Map<string, RunningAction>;
}

/**
 * Where the body of an attempt runs. The lifecycle has already raced it against abort and timeout; the
 * placement only starts it.
 */
export interface Placement {
  /**
   * Starts the body of `action`'s current attempt in `frame`. Returns what the body returned (a value, or a
   * promise of it) and throws what it threw synchronously. A placement that can stop a body which does not
   * listen to its signal (a thread) sets `action.cancelBody`; the lifecycle calls it on interrupt.
   */
  startBody(action: RunningAction, frame: Frame): unknown;
}

/** The calls of one kind under an attempt: every key called, and how often those called more than once were. */
interface KindCalls {
  readonly seen: Set<string>;
  /** The next sequence of each key called more than once (created when the first is). */
  repeated: Map<string, number> | null;
}

/**
 * An action while it runs: what it runs, its record, its abort state and its running children. The lifecycle's
 * steps (see {@link ActionLifecycle.execute}) take it as their one argument.
 */
export class RunningAction implements LiveAction {
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
  /** Set by a {@link Placement} that can stop the running body by force (it ends the body's thread). */
  cancelBody: (() => void) | null = null;
  /** The attempt running now (1-based): the body of an earlier, given-up attempt may not start children. */
  attempt = 1;
  /** Set once the action ended: a body still going on (detached or given up) may not start children. */
  ended = false;
  /** When recovering: this action's children as recorded before, by name. */
  recorded: Map<string, ActionRecord> | null = null;
  /** When recovering: the encoded outputs of this action's finished traces and durable steps, by name. */
  replay: Map<string, string> | null = null;
  /**
   * Writes of this action's steps still waiting for the uploads they refer to (see `beginStep`): the action's
   * own end is recorded after them, so that no reader sees the action ended and one of its steps still running.
   */
  stepWrites: Promise<void>[] | null = null;
  /** The action's OpenTelemetry span, `null` when tracing is off (see `tracing.ts`). */
  span: ActionSpan | null = null;
  /**
   * Where the span of an action without a parent here goes: under the caller's active context (`undefined`, a
   * run's root started in this process), under the context its job carried (an action on a worker), or nowhere
   * (`null`: no span). A child of an action running here goes under its parent's span, if it has one.
   */
  spanParent: SpanParent | null = undefined;
  #interrupted: Error | null = null;
  #controller: AbortController | null = null;
  // Created on first use: most actions start no children (a fan-out holds 100 000 of them in flight).
  // A child runs here (a RunningAction) or elsewhere (a remote controller's handle on it).
  #children: Set<LiveAction> | null = null;
  /** Calls so far under the current attempt: per kind of call (a task's name, `map`), then per key (inputs hash). */
  #sequencer: Map<string, KindCalls> | null = null;

  constructor(
    readonly run: LifecycleRun,
    readonly parent: RunningAction | null,
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
  get children(): Set<LiveAction> {
    return (this.#children ??= new Set());
  }

  /**
   * The call sequence of the next identical call under this attempt: same `kind` (a task's name, `map`) and
   * `key` (its inputs hash, a map's group). The same numbers as one key `${kind}\0${key}` would give, without
   * building that string per call: a fan-out of 100 000 children kept 100 000 of them.
   */
  nextSequence(kind: string, key = ''): number {
    const sequencer = (this.#sequencer ??= new Map<string, KindCalls>());
    let calls = sequencer.get(kind);
    if (calls === undefined) {
      calls = { seen: new Set<string>(), repeated: null };
      sequencer.set(kind, calls);
    }
    const seen = calls.seen;
    const size = seen.size;
    seen.add(key);
    if (seen.size !== size) return 0; // the first such call, the usual one: one lookup
    const repeated = (calls.repeated ??= new Map<string, number>());
    const sequence = repeated.get(key) ?? 1;
    repeated.set(key, sequence + 1);
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

/** The record of an action about to run: `queued`, no attempt yet, with its encoded inputs. */
export function newActionRecord(
  runName: string,
  name: string,
  parentName: string | null,
  task: TaskDefinition,
  group: string | null,
  inputs: { text: string; hash: string },
  itemIndex: number | null = null,
): Mutable<ActionWrite> {
  return {
    runName,
    name,
    parentName,
    taskName: task.name,
    shortName: task.shortName,
    group,
    itemIndex,
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

/** Why a run's actions stop in a process that lost the run to another one (its lease was not renewed in time). */
export function takenOverError(runName: string): RuntimeSystemError {
  return new RuntimeSystemError(
    'RunTakenOver',
    `run ${runName} was taken over by another process while this one (${OWNER}) did not renew its lease; ` +
      'this process stopped driving it',
  );
}

/**
 * The placement-neutral action lifecycle. One per controller (or worker); it keeps no state of its own besides
 * where it records and how it encodes.
 */
export class ActionLifecycle {
  constructor(
    readonly recorder: Recorder,
    readonly codec: ValueCodec,
    readonly placement: Placement,
  ) {}

  /**
   * The whole life of one action, from its record to its decoded output. It joins the tree of running actions;
   * gets ready ({@link ActionLifecycle.prepare}: inputs schema, output recorded before, cache, slot); runs its
   * attempts ({@link ActionLifecycle.attempt}: each recorded, under its timeout, retried with backoff unless the
   * error says retrying cannot help); is recorded with its outcome; and leaves the tree, ending the children it
   * did not wait for.
   *
   * The usual child has nothing to get ready for, and its first attempt starts at once. Only the steps that
   * wait are async functions: in a fan-out of 100 000 children every pending async frame stays in memory.
   */
  execute(live: RunningAction, args: readonly unknown[], scope: CancelScope | undefined): Promise<unknown> {
    const { run, parent, record } = live;
    parent?.children.add(live);
    run.live.set(live.name, live);
    scope?.enter(live);
    const spanParent = parent === null ? live.spanParent : parent.span;
    if (spanParent !== null) live.span = startActionSpan(run.name, live.name, live.taskName, record.group, spanParent);
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
        // An output recorded by an earlier process (recovery) leaves the record as it was: nothing ran here.
        if (live.span !== null) endActionSpan(live.span, record, record.attempts === 0 && !record.cacheHit);
        return store.durable().then(() => {
          if (run.takenOver) throw takenOverError(run.name);
          return value;
        });
      },
      (err: unknown) => {
        try {
          if (record.endedAt === null) this.recordFinal(live, err);
        } finally {
          this.leave(live, scope);
        }
        if (live.span !== null) endActionSpan(live.span, record);
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
  private async prepare(live: RunningAction): Promise<unknown> {
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
  private async acquireSlot(slots: ActionSlots, live: RunningAction): Promise<void> {
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
  private attempt(live: RunningAction, n: number): Promise<unknown> {
    const { record } = live;
    const startedAt = Date.now();
    record.phase = 'running';
    record.attempts = n;
    record.startedAt ??= startedAt;
    // Which process runs this attempt: what the attempt implied by the action record names as its worker.
    record.worker = OWNER;
    this.recorder.action(record);
    if (recordsAttempt(live, n)) this.recordAttempt(live, n, 'running', startedAt, null, null);
    return this.runBody(live, n).then(
      (value) => this.attemptSucceeded(live, n, startedAt, value),
      (err: unknown) => this.attemptFailed(live, n, startedAt, err),
    );
  }

  /** Attempt `n` returned `value`: records the output and the success; returns the output as the caller gets it. */
  private attemptSucceeded(live: RunningAction, n: number, startedAt: number, value: unknown): unknown {
    const steps = live.stepWrites;
    if (steps !== null) {
      live.stepWrites = null;
      return Promise.all(steps).then(() => this.attemptSucceeded(live, n, startedAt, value));
    }
    let output: StoredValue;
    try {
      output = this.codec.encode(value, 'output', live.task.maxInlineIoBytes);
    } catch (err) {
      return this.attemptFailed(live, n, startedAt, err);
    }
    if (output.written === undefined) return this.recordSuccess(live, n, startedAt, value, output);
    // An offloaded output (or uploaded files) is durable before the record that refers to it.
    return output.written.then(
      () => this.recordSuccess(live, n, startedAt, value, output),
      (err: unknown) => this.attemptFailed(live, n, startedAt, err),
    );
  }

  /** Records attempt `n`'s success with its encoded `output`; returns the output as the caller gets it. */
  private recordSuccess(
    live: RunningAction,
    n: number,
    startedAt: number,
    value: unknown,
    output: StoredValue,
  ): unknown {
    const { run, task, record } = live;
    try {
      const endedAt = Date.now();
      if (recordsAttempt(live, n)) this.recordAttempt(live, n, 'succeeded', startedAt, endedAt, null);
      record.phase = 'succeeded';
      record.endedAt = endedAt;
      record.outputs = output.text;
      recordEnd(this.recorder, record);
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
  private attemptFailed(live: RunningAction, n: number, startedAt: number, err: unknown): Promise<unknown> {
    const { phase, error } = outcome(live, err);
    const serialized = serializeError(error, live.name);
    this.recordAttempt(live, n, phase, startedAt, Date.now(), serialized);
    const retry = phase !== 'aborted' && n < live.task.retries.count + 1 && isRetryable(error);
    if (live.span !== null) attemptFailedEvent(live.span, n, phase, serialized, retry);
    if (retry) return this.retry(live, n, error);
    this.recordFinal(live, live.abortReason ?? error);
    throw error;
  }

  /** After attempt `n` failed with `error`: waits for the backoff, then runs the next attempt unless aborted. */
  private async retry(live: RunningAction, n: number, error: unknown): Promise<unknown> {
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
  private leave(live: RunningAction, scope: CancelScope | undefined): void {
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

  /** Runs one attempt of the body in its placement, racing it against interruption (abort, timeout). */
  private runBody(live: RunningAction, attempt: number): Promise<unknown> {
    const { run, task, customContext } = live;
    return new Promise((resolve, reject) => {
      if (live.interrupted !== null) {
        reject(live.interrupted);
        return;
      }
      let timer: LongTimer | undefined;
      const settle = (): void => {
        timer?.clear();
        live.onInterrupt = null;
        live.cancelBody = null;
      };
      live.onInterrupt = (reason) => {
        // A body on a thread is ended with its thread, even when it spins.
        const cancel = live.cancelBody;
        settle();
        cancel?.();
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
      let result: unknown;
      try {
        const span = live.span;
        result =
          span === null
            ? this.placement.startBody(live, frame)
            : withActiveSpan(span, () => this.placement.startBody(live, frame));
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

  /**
   * Recovery: reads the children `live` recorded in an earlier process (by name) and the outputs of its finished
   * steps, so that a body run again collects them instead of running them again.
   */
  async loadRecorded(live: RunningAction): Promise<void> {
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

  /** See `ActionController.beginMap`: `frame.action` is running in this lifecycle. */
  beginMap(frame: Frame, total: number): void {
    const parent = frame.action as RunningAction;
    if (frame.group === null) return;
    // Numbered like child calls, per attempt: running the same parent again writes the same record.
    const seq = parent.nextSequence('map', frame.group);
    this.recorder.mapTotal({ runName: frame.run.name, parentName: parent.name, group: frame.group, seq, total });
  }

  /** See `ActionController.beginStep`: `frame.action` is running in this lifecycle. */
  beginStep(frame: Frame, kind: 'trace' | 'durable', name: string, args: readonly unknown[]): StepHandle | StepReplay {
    const run = frame.run;
    const live = frame.action as RunningAction;
    const inputs = this.codec.encode(args, 'args', Number.POSITIVE_INFINITY);
    const taskName = `${kind}:${name}`;
    const sequence = live.nextSequence(taskName, inputs.hash);
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
      itemIndex: null,
      phase: 'running',
      cacheHit: false,
      attempts: 1,
      startedAt,
      endedAt: null,
      error: null,
      inputs: inputs.text,
      inputsHash: inputs.hash,
      worker: OWNER,
    };
    // A step's record refers to files uploaded with its inputs or output (a shared blob store): each write waits
    // for the uploads it refers to, and for the writes before it, so that a record never names a missing blob
    // and the step's writes land in order. Without uploads (the usual case) each write is made at once.
    let queued: Promise<void> | undefined;
    const write = (snapshot: ActionWrite, written: Promise<void> | undefined): void => {
      const after = written === undefined ? queued : queued === undefined ? written : Promise.all([queued, written]);
      if (after === undefined) {
        this.recorder.action(snapshot);
        return;
      }
      queued = after.then(
        () => this.recorder.action(snapshot),
        (err: unknown) => {
          const error = serializeError(err, actionName);
          this.recorder.action({ ...snapshot, phase: 'failed', outputs: undefined, endedAt: Date.now(), error });
        },
      );
      (live.stepWrites ??= []).push(queued);
    };
    write({ ...record }, inputs.written);
    // A step's span goes under its action's span; its own function's spans nest under the action's span too.
    const span = live.span === null ? null : startActionSpan(run.name, actionName, taskName, frame.group, live.span);
    const stepFrame: Frame = { ...frame, kind: 'trace' };
    return {
      replayed: false,
      frame: stepFrame,
      succeed: (value: unknown) => {
        const output = this.codec.encode(value, 'output', Number.POSITIVE_INFINITY);
        record.phase = 'succeeded';
        record.endedAt = Date.now();
        record.outputs = output.text;
        write({ ...record, inputs: undefined, inputsHash: undefined }, output.written);
        if (span !== null) endActionSpan(span, record);
      },
      fail: (err: unknown) => {
        record.phase = 'failed';
        record.endedAt = Date.now();
        record.error = serializeError(err, actionName);
        write({ ...record, inputs: undefined, inputsHash: undefined }, undefined);
        if (span !== null) endActionSpan(span, record);
      },
    };
  }

  private backoff(live: RunningAction, attempt: number): Promise<void> {
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
    live: RunningAction,
    attempt: number,
    phase: ActionPhase,
    startedAt: number,
    endedAt: number | null,
    error: ActionWrite['error'],
  ): void {
    this.recorder.attempt({
      runName: live.runName,
      actionName: live.name,
      attempt,
      phase,
      startedAt,
      endedAt,
      error,
      worker: OWNER,
    });
  }

  /** Records the action's end: failed, timed out or aborted, with its error. */
  private recordFinal(live: RunningAction, err: unknown): void {
    const { record } = live;
    const { phase, error } = outcome(live, err);
    record.phase = phase;
    record.endedAt = Date.now();
    record.error = serializeError(error, live.name);
    recordEnd(this.recorder, record);
  }
}

/**
 * Writes an action's end without its inputs and their hash: written with its first record, the store keeps them
 * (a write that leaves them `undefined` does not change them), so its end does not send them again. Without a
 * copy of the record: the recorder takes a snapshot, so the fields are set back at once.
 */
function recordEnd(recorder: Recorder, record: Mutable<ActionWrite>): void {
  const { inputs, inputsHash } = record;
  record.inputs = undefined;
  record.inputsHash = undefined;
  try {
    recorder.action(record);
  } finally {
    record.inputs = inputs;
    record.inputsHash = inputsHash;
  }
}

/**
 * Whether an action may have to wait for something before its first attempt: its inputs schema (which may be
 * async), the store (recovery, cache), or a slot of `maxActionConcurrency`.
 */
function mayWaitBeforeFirstAttempt(live: RunningAction): boolean {
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
function recordsAttempt(live: RunningAction, n: number): boolean {
  return n > 1 || live.run.recover;
}

/** Whether a record is a trace or durable step rather than a task's action. */
function isStepName(taskName: string): boolean {
  return taskName.startsWith('trace:') || taskName.startsWith('durable:');
}

/** The cache behaviour of a call, after the run's switches. */
function cacheBehavior(run: LifecycleRun, task: TaskDefinition): CacheBehavior {
  const own = task.cache.behavior;
  if (own === 'disable' || run.options.disableRunCache === true) return 'disable';
  if (run.options.overwriteCache === true) return 'override';
  return own;
}

/** The terminal phase of a failed attempt and the error to record for it. */
function outcome(live: RunningAction, err: unknown): { phase: ActionPhase; error: unknown } {
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
  const where =
    path.length === 0
      ? 'args'
      : `args${path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}`;
  const all = result.issues.map((i) => i.message).join('; ');
  throw new RuntimeDataValidationError(`inputs of ${taskName} failed validation at ${where}: ${all}`, { path: where });
}
