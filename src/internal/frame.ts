/**
 * The execution frame of the code running right now: which run, which action, which attempt, which group.
 *
 * One `AsyncLocalStorage` carries it through every `await`, so a task call knows its parent without being told,
 * and `Promise.all` / `flyte.map` fan-outs keep their parent. `flyte.group` and `flyte.customContext` run their
 * callback in a copy of the frame with one field changed. The shapes ({@link Frame}, {@link LiveAction},
 * {@link RunScope}) belong to the controller contract (`controller.ts`).
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Frame } from './controller.js';

export type { Frame, LiveAction, RunScope } from './controller.js';

const storage = new AsyncLocalStorage<Frame>();

/** The frame of the running code, or `undefined` outside any task. */
export function currentFrame(): Frame | undefined {
  return storage.getStore();
}

/** Runs `fn` in `frame`. */
export function runInFrame<T>(frame: Frame, fn: () => T): T {
  return storage.run(frame, fn);
}
