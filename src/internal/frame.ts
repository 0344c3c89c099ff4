/**
 * The execution frame of the code running right now: which run, which action, which attempt, which group.
 *
 * One `AsyncLocalStorage` carries it through every `await`, so a task call knows its parent without being told,
 * and `Promise.all` / `flyte.map` fan-outs keep their parent. `flyte.group` and `flyte.customContext` run their
 * callback in a copy of the frame with one field changed.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Controller } from './controller.js';

/** The live (in-process) state of one action, as long as it runs. Children form the abort tree. */
export interface LiveAction {
  readonly runName: string;
  readonly name: string;
  readonly taskName: string;
  readonly shortName: string;
  readonly parent: LiveAction | null;
  /** Fires on abort and on timeout of this action or of any ancestor. */
  readonly signal: AbortSignal;
  /** Children that have not finished yet. */
  readonly children: Set<LiveAction>;
  /** Counts identical calls (task + inputs hash) under this action, for deterministic child names. */
  readonly sequencer: Map<string, number>;
  /** Aborts this action and every running descendant. */
  abort(reason: Error): void;
}

/** The part of a run every frame sees. Controllers extend it with their own state. */
export interface RunScope {
  readonly name: string;
  readonly mode: 'local' | 'remote';
  readonly controller: Controller;
  /** Records a line the task body of `frame` wrote to the console. */
  log(frame: Frame, stream: 'stdout' | 'stderr', line: string): void;
}

/** What the code that runs now is part of. */
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

const storage = new AsyncLocalStorage<Frame>();

/** The frame of the running code, or `undefined` outside any task. */
export function currentFrame(): Frame | undefined {
  return storage.getStore();
}

/** Runs `fn` in `frame`. */
export function runInFrame<T>(frame: Frame, fn: () => T): T {
  return storage.run(frame, fn);
}
