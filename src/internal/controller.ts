/**
 * The controller contract: what the SDK asks of whoever runs actions (the local controller in this process,
 * or the remote controller that hands actions to distributed workers).
 *
 * It has two sides. The **action side** ({@link ActionController}) serves the code running inside a task body:
 * child calls, steps, maps. The **run side** ({@link RunController}) serves the code that starts and watches runs
 * (`flyte.run`, `flyte.rerun`, run handles, the CLI, the UI). A {@link Controller} is both; the runtime holds one.
 * @module
 */
import type { RunContextOptions } from '../options.js';
import type { RunPhase, RunRecord } from '../types.js';
import type { BudgetOptions } from './failure-budget.js';
import type { TaskDefinition } from './task-definition.js';

/**
 * An action while it runs, as any placement sees it: its names, its parent, its signal and how to abort it. What
 * a placement keeps besides (running children, call sequences) is its own business.
 */
export interface LiveAction {
  readonly runName: string;
  readonly name: string;
  readonly taskName: string;
  readonly shortName: string;
  readonly parent: LiveAction | null;
  /** Fires on abort and on timeout of this action or of any ancestor. */
  readonly signal: AbortSignal;
  /** Aborts this action and every running descendant. */
  abort(reason: Error): void;
}

/** The part of a run every frame sees. Controllers extend it with their own state. */
export interface RunScope {
  readonly name: string;
  readonly mode: 'local' | 'remote';
  readonly controller: ActionController;
  /** Records a line the task body of `frame` wrote to the console. */
  log(frame: Frame, stream: 'stdout' | 'stderr', line: string): void;
}

/** What the code that runs now is part of (see `frame.ts`). */
export interface Frame {
  /** The run, and the controller that runs its actions. */
  readonly run: RunScope;
  readonly action: LiveAction;
  /** 1-based attempt of `action`. */
  readonly attempt: number;
  readonly group: string | null;
  readonly customContext: Readonly<Record<string, string>>;
  /** `'trace'` inside a `flyte.trace` function, where task calls are refused. */
  readonly kind: 'task' | 'trace';
  /** `true` when the body is a sync task running on this thread: blocking calls are allowed. */
  readonly sync: boolean;
}

/**
 * A set of child actions that can be aborted together: a `flyte.map` uses one to stop its in-flight items at the
 * first failure (`returnExceptions: false`) or when its `signal` fires.
 */
export class CancelScope {
  #reason: Error | null = null;
  readonly #members = new Set<LiveAction>();

  /** Why the scope was cancelled, or `null`. */
  get reason(): Error | null {
    return this.#reason;
  }

  /** Adds a running action; it is aborted at once if the scope is already cancelled. */
  enter(action: LiveAction): void {
    if (this.#reason !== null) action.abort(this.#reason);
    else this.#members.add(action);
  }

  leave(action: LiveAction): void {
    this.#members.delete(action);
  }

  /** Aborts every member, now and later. */
  cancel(reason: Error): void {
    if (this.#reason !== null) return;
    this.#reason = reason;
    for (const action of this.#members) action.abort(reason);
    this.#members.clear();
  }
}

/** Per-call options of {@link Controller.submit}. */
export interface SubmitOptions {
  /** The child joins this scope while it runs. */
  readonly scope?: CancelScope | undefined;
  /** The child is item `itemIndex` (0-based) of a `flyte.map`: recorded as its `ActionRecord.itemIndex`. */
  readonly itemIndex?: number | undefined;
}

/** A step (trace, durable time) whose outcome was recorded before: its decoded output. */
export interface StepReplay {
  readonly replayed: true;
  readonly value: unknown;
}

/** A step being recorded: run it in `frame` (where task calls are refused), then report how it ended. */
export interface StepHandle {
  readonly replayed: false;
  readonly frame: Frame;
  succeed(value: unknown): void;
  fail(error: unknown): void;
}

/** Options of {@link SyncActionController.mapSync}, resolved by `flyte.map`. */
export interface SyncMapOptions {
  readonly concurrency: number;
  readonly returnExceptions: boolean;
  /** The group of the map's actions. */
  readonly group: string;
  /** How many items the map will run, when its input has a known size (its progress denominator). */
  readonly total: number | null;
  /** The map's failure budget, or `null` for none (see `failure-budget.ts`). */
  readonly budget: BudgetOptions | null;
}

/** The action side: runs child actions and steps on behalf of the action running in `frame`. */
export interface ActionController {
  readonly mode: 'local' | 'remote';
  /**
   * Creates the child action of `frame.action` for a call of `task` with `args`, runs it to a terminal phase and
   * resolves to its (decoded) output, or rejects with its error rebuilt as a flyte error.
   *
   * The child's name is derived synchronously, before the first `await`, so call order decides names.
   */
  submit(frame: Frame, task: TaskDefinition, args: readonly unknown[], options?: SubmitOptions): Promise<unknown>;
  /**
   * The blocking form of {@link submit}, for a sync task body calling a sync task: blocks the calling thread
   * (never the main event loop) until the child finished, and returns its output or throws its error.
   */
  submitSync(frame: Frame, task: TaskDefinition, args: readonly unknown[]): unknown;
  /**
   * A `flyte.map` in the group `frame.group` starts, and its input has `total` items: records it as the map's
   * progress denominator. Called once per map call, before its first item.
   */
  beginMap?(frame: Frame, total: number): void;
  /**
   * Starts a recorded step of `frame.action` (a `flyte.trace` call, `flyte.durable.now()`...). Its name is
   * deterministic like a child action's. When the run is being recovered and the step finished before, returns
   * its recorded output instead.
   */
  beginStep(frame: Frame, kind: 'trace' | 'durable', name: string, args: readonly unknown[]): StepHandle | StepReplay;
}

/**
 * The action side of a sync frame (a sync task body blocking on its own thread): it can also iterate a
 * `flyte.map` synchronously.
 */
export interface SyncActionController extends ActionController {
  /**
   * A `flyte.map` iterated synchronously inside a sync task body: an iterator of the results in input order,
   * blocking in `next()` until the next one is ready. Each argument list pulled from `items` becomes one child
   * (at most `concurrency` running at once, in the group `options.group`). Items are pulled lazily: at most
   * `concurrency` (or a fixed window when it is `0`, unbounded) ahead of the results consumed. With
   * `returnExceptions`, failed items are flyte errors in place; else the first failure is thrown and the items
   * still running are aborted. Closing the iterator early (`break`) aborts the items still running.
   */
  mapSync(
    frame: Frame,
    task: TaskDefinition,
    bound: readonly unknown[],
    items: Iterator<unknown[]>,
    options: SyncMapOptions,
  ): Iterator<unknown>;
}

/** The controller of `frame` when it can iterate a map synchronously (a sync frame), else `undefined`. */
export function syncController(frame: Frame): SyncActionController | undefined {
  const controller = frame.run.controller as Partial<SyncActionController>;
  return frame.sync && typeof controller.mapSync === 'function' ? (controller as SyncActionController) : undefined;
}

/** How this process claims a run it takes over (see `RunStore.claimRun`). */
export interface RunClaim {
  readonly owner: string;
  readonly leaseMs: number;
}

/** A run this process drives: started or resumed by its controller, and going on until {@link done}. */
export interface DrivenRun {
  readonly name: string;
  /** The live phase: `running` until the run ended, then its terminal phase. */
  readonly phase: RunPhase;
  /** Settles (never rejects) when the run reached a terminal phase and its records are durable. */
  readonly done: Promise<void>;
}

/**
 * The run side: starts runs, takes recorded runs over, waits for them, aborts them, and says which runs this
 * process drives. It reaches every run, wherever it is driven: the local controller reaches the runs of other
 * processes through the store (`runs-elsewhere.ts`); the remote one will reach them through its engine.
 */
export interface RunController {
  /** The claim this process makes on a run it takes over (a recovery, the abort of an orphaned run). */
  readonly claim: RunClaim;
  /**
   * Records a new run of `task` with `args` and starts its root action. Resolves once the run is recorded; the
   * run goes on in the background until `done`.
   *
   * Thrown (rejected) by it when `options` are invalid (a bad name, a bad `maxActionConcurrency`) or `args`
   * cannot be serialized; the run is then not recorded.
   */
  startRun(task: TaskDefinition, args: readonly unknown[], options: RunContextOptions): Promise<DrivenRun>;
  /**
   * Takes the recorded run `record` over (an atomic claim on the epoch read in `record`) and starts its root
   * again under the same run, in recovery mode: children, traces and durable steps that succeeded before return
   * their recorded outputs instead of running. Resolves once the claim is made; the run goes on until `done`.
   *
   * Thrown (rejected) by it with a RangeError when this process drives the run already, when a live process
   * drives it, or when another process claimed it first.
   */
  recoverRun(record: RunRecord, task: TaskDefinition, args: readonly unknown[]): Promise<DrivenRun>;
  /** The run named `runName` if this process drives it, else `undefined`. */
  driven(runName: string): DrivenRun | undefined;
  /** The names of the runs this process drives now. */
  drivenRuns(): string[];
  /**
   * Resolves with the run's record once it is terminal, wherever it is driven. A run whose driver died never
   * ends by itself: it is marked `orphaned`, and the wait ends. Never rejects because the run failed.
   *
   * Thrown (rejected) by it with a RangeError when there is no such run.
   */
  waitRun(runName: string): Promise<RunRecord>;
  /**
   * Aborts a run wherever it is driven: its root and every running descendant end `aborted`. Resolves once the
   * run's end is durable (at once for a run that has ended). A run whose driver is gone is taken over and
   * recorded as aborted by this process.
   *
   * Thrown (rejected) by it with a RangeError when there is no such run, and an Error when the process that
   * drives the run did not record its end in time (the abort may still take effect).
   */
  abortRun(runName: string, reason: string): Promise<void>;
  /**
   * Aborts one action of a run, wherever the run is driven, and its running descendants. Resolves once the
   * action's end is durable (at once for an action that has ended).
   *
   * Thrown (rejected) by it with a RangeError when the run has no such action or its driver is gone (recover
   * the run, or abort all of it), and an Error when the driving process did not record the action's end in time.
   */
  abortAction(runName: string, actionName: string, reason: string): Promise<void>;
  /** Waits for the runs this process drives to end, then releases what the controller holds (threads). */
  close(): Promise<void>;
}

/** A whole controller: the action side for task bodies and the run side for run handles, the CLI and the UI. */
export interface Controller extends ActionController, RunController {}
