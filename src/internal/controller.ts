/**
 * The controller contract: what the SDK asks of whoever runs actions (the local controller in this process,
 * or the remote controller that hands actions to distributed workers).
 * @module
 */
import type { Frame, LiveAction } from './frame.js';
import type { TaskDefinition } from './task-definition.js';

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

/** Options of {@link Controller.mapSync}, resolved by `flyte.map`. */
export interface SyncMapOptions {
  readonly concurrency: number;
  readonly returnExceptions: boolean;
  /** The group of the map's actions. */
  readonly group: string;
  /** How many items the map will run, when its input has a known size (its progress denominator). */
  readonly total: number | null;
}

/** Runs child actions on behalf of the action running in `frame`. */
export interface Controller {
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
   * A `flyte.map` iterated synchronously inside a sync task body: an iterator of the results in input order,
   * blocking in `next()` until the next one is ready. Each argument list pulled from `items` becomes one child
   * (at most `concurrency` running at once, in the group `options.group`). Items are pulled lazily: at most
   * `concurrency` (or a fixed window when it is `0`, unbounded) ahead of the results consumed. With
   * `returnExceptions`, failed items are flyte errors in place; else the first failure is thrown and the items
   * still running are aborted. Closing the iterator early (`break`) aborts the items still running.
   * Only controllers of sync frames implement it.
   */
  mapSync?(
    frame: Frame,
    task: TaskDefinition,
    bound: readonly unknown[],
    items: Iterator<unknown[]>,
    options: SyncMapOptions,
  ): Iterator<unknown>;
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
