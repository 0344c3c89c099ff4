/**
 * The machinery of `flyte.map` (see `src/map.ts`): {@link MapRun} runs a map awaited or iterated by an async
 * caller, {@link SyncMapRun} the main-thread side of a map iterated by a sync body on a pool thread. Each item is
 * a child action submitted through the frame's controller, a member of the map's {@link CancelScope}.
 * @module
 */
import { ActionAbortedError, BaseRuntimeError, RuntimeUserError, errorCode } from '../errors.js';
import { CancelScope, type Frame, type SyncMapOptions } from './controller.js';
import { FailureBudget, type BudgetOptions } from './failure-budget.js';
import { Fifo } from './fifo.js';
import type { TaskDefinition } from './task-definition.js';

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** An item's result for the caller: the value, or (with `returnExceptions`) the error as a flyte error. */
function asUserError(error: unknown): BaseRuntimeError {
  if (error instanceof BaseRuntimeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RuntimeUserError(errorCode(error), message, { cause: error });
}

/** Why the items still running are aborted when the map's failure budget broke. */
function budgetAbort(): ActionAbortedError {
  return new ActionAbortedError("aborted: the map's failure budget was exceeded (see MapFailureBudgetExceeded)");
}

/**
 * Runs one map: pulls items lazily, calls the task in the map's group, keeps at most `limit` running. Outside a
 * task (no `frame`) the items are plain calls of the task's function.
 *
 * With a failure budget, the moment it breaks the map's scope is cancelled (no item starts any more, those
 * running are aborted) and the caller gets the budget's error: `collect` rejects with it, the iterators throw it
 * at their next step (results not yielded yet are dropped; the error counts them).
 */
export class MapRun {
  readonly #call: (args: unknown[]) => Promise<unknown>;
  readonly #items: Iterator<unknown[]>;
  readonly #limit: number;
  readonly #returnExceptions: boolean;
  readonly #scope = new CancelScope();
  readonly #signal: AbortSignal | undefined;
  readonly #budget: FailureBudget | undefined;
  /** Items pulled from the input so far (the next one's index). */
  #pulled = 0;
  /** Settles when the budget breaks: wakes an iterator waiting on an item. */
  readonly #broke: Promise<void>;
  #wakeOnBreak!: () => void;
  #onSignal: (() => void) | undefined;

  constructor(
    frame: Frame | undefined,
    task: TaskDefinition,
    bound: readonly unknown[],
    iterables: Iterable<unknown>[],
    options: ResolvedMap,
  ) {
    this.#limit = options.concurrency === 0 ? Infinity : options.concurrency;
    this.#returnExceptions = options.returnExceptions;
    this.#items = zip(iterables);
    this.#signal = options.signal;
    this.#broke = new Promise<void>((resolve) => (this.#wakeOnBreak = resolve));
    const total = sizeOf(iterables) ?? null;
    if (options.budget !== null) this.#budget = new FailureBudget(task.name, options.budget, total);
    if (frame === undefined) {
      this.#call = (args) => Promise.resolve().then(() => task.fn(...([...bound, ...args] as never[])));
    } else {
      this.#call = childCall(frame, task, bound, options.group, this.#scope, total ?? undefined);
    }
    if (this.#signal !== undefined) {
      const signal = this.#signal;
      this.#onSignal = () => this.#cancel(new ActionAbortedError(`map of ${task.name} was aborted: ${String(signal.reason)}`));
      signal.addEventListener('abort', this.#onSignal, { once: true });
    }
  }

  #cancel(reason: Error): void {
    this.#scope.cancel(reason);
  }

  #detach(): void {
    if (this.#onSignal !== undefined) this.#signal?.removeEventListener('abort', this.#onSignal);
  }

  /** Starts the next item, or returns `undefined` when there is none (or the map was stopped). */
  #startNext(): Promise<unknown> | undefined {
    if (this.#scope.reason !== null) return undefined;
    if (this.#signal?.aborted === true) {
      this.#cancel(new ActionAbortedError(`map was aborted: ${String(this.#signal.reason)}`));
      return undefined;
    }
    const next = this.#items.next();
    if (next.done === true) {
      this.#budgetReport(this.#budget?.exhausted(this.#pulled));
      return undefined;
    }
    const index = this.#pulled++;
    const started = this.#call(next.value);
    const budget = this.#budget;
    if (budget !== undefined) {
      budget.start();
      // Counted before any consumer hears of the outcome: it registers its reactions after this one.
      void started.then(
        () => this.#budgetReport(budget.settle(index, true)),
        (error: unknown) => this.#budgetReport(budget.settle(index, false, error)),
      );
    }
    return started;
  }

  /** The budget broke (when `broken` is set): stop the map, wake its iterator. */
  #budgetReport(broken: Error | undefined): void {
    if (broken === undefined) return;
    this.#cancel(budgetAbort());
    this.#wakeOnBreak();
  }

  /** Throws the budget's error, once it broke. */
  #throwIfBroken(): void {
    const broken = this.#budget?.broken;
    if (broken !== undefined) throw broken;
  }

  #result(s: Settled): unknown {
    if (s.ok) return s.value;
    if (this.#returnExceptions) return asUserError(s.error);
    throw s.error;
  }

  /** Every result, in input order. */
  collect(): Promise<unknown[]> {
    return new Promise<unknown[]>((resolve, reject) => {
      const results: unknown[] = [];
      let index = 0;
      let active = 0;
      let exhausted = false;
      let failed = false;
      const finish = (): void => {
        this.#detach();
        const stopped = this.#budget?.broken ?? this.#scope.reason;
        if (stopped !== null && !failed) reject(stopped);
        else resolve(results);
      };
      /** Rejects at once when the budget broke (what still runs was aborted). */
      const budgetBroke = (): boolean => {
        const broken = this.#budget?.broken;
        if (broken === undefined || failed) return failed;
        failed = true;
        this.#detach();
        reject(broken);
        return true;
      };
      const launch = (): void => {
        while (!exhausted && !failed && active < this.#limit) {
          const started = this.#startNext();
          if (started === undefined) {
            exhausted = true;
            break;
          }
          const i = index++;
          active++;
          started.then(
            (value) => {
              results[i] = value;
              budgetBroke();
              settle();
            },
            (error: unknown) => {
              if (budgetBroke()) {
                // the map rejected with the budget's error: this outcome is not wanted
              } else if (this.#returnExceptions) results[i] = asUserError(error);
              else if (!failed) {
                failed = true;
                this.#detach();
                this.#cancel(new ActionAbortedError('aborted: another item of the map failed (returnExceptions: false)'));
                reject(error);
              }
              settle();
            },
          );
        }
        if (budgetBroke()) return;
        if (exhausted && active === 0 && !failed) finish();
      };
      const settle = (): void => {
        active--;
        launch();
      };
      launch();
    });
  }

  /** Results in input order, keeping at most `limit` items started but not yet yielded. */
  async *ordered(): AsyncGenerator<unknown> {
    const window = new Fifo<Promise<Settled>>();
    let complete = false;
    const fill = (): void => {
      while (window.length < this.#limit) {
        const started = this.#startNext();
        if (started === undefined) break;
        window.push(settled(started));
      }
    };
    try {
      fill();
      while (window.length > 0) {
        this.#throwIfBroken();
        const head = window.shift() as Promise<Settled>;
        const next = this.#budget === undefined ? await head : await Promise.race([head, this.#broke.then(() => undefined)]);
        this.#throwIfBroken();
        fill();
        yield this.#result(next as Settled);
      }
      this.#throwIfBroken();
      if (this.#scope.reason !== null) throw this.#scope.reason;
      complete = true;
    } finally {
      this.#detach();
      if (!complete) this.#cancel(new ActionAbortedError('aborted: the map was not iterated to its end'));
    }
  }

  /** Results in completion order, keeping at most `limit` items started but not yet yielded. */
  async *completed(): AsyncGenerator<unknown> {
    const ready = new Fifo<Settled>();
    let active = 0;
    let exhausted = false;
    let wake: (() => void) | undefined;
    let complete = false;
    const launch = (): void => {
      while (!exhausted && active + ready.length < this.#limit) {
        const started = this.#startNext();
        if (started === undefined) {
          exhausted = true;
          break;
        }
        active++;
        void settled(started).then((s) => {
          active--;
          ready.push(s);
          const w = wake;
          wake = undefined;
          w?.();
        });
      }
    };
    try {
      launch();
      while (ready.length > 0 || active > 0) {
        this.#throwIfBroken();
        if (ready.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        this.#throwIfBroken();
        const next = ready.shift() as Settled;
        launch();
        yield this.#result(next);
      }
      this.#throwIfBroken();
      if (this.#scope.reason !== null) throw this.#scope.reason;
      complete = true;
    } finally {
      this.#detach();
      if (!complete) this.#cancel(new ActionAbortedError('aborted: the map was not iterated to its end'));
    }
  }
}

function settled(p: Promise<unknown>): Promise<Settled> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/**
 * How many argument lists zipping `iterables` gives, when every one has a known size (an array, a typed array,
 * a `Set`, a `Map`, or any iterable with an integer `length` or `size`); else `undefined`.
 */
export function sizeOf(iterables: readonly Iterable<unknown>[]): number | undefined {
  let min = Infinity;
  for (const it of iterables) {
    const n = sizeOfOne(it);
    if (n === undefined) return undefined;
    min = Math.min(min, n);
  }
  return min === Infinity ? undefined : min;
}

function sizeOfOne(it: Iterable<unknown>): number | undefined {
  if (Array.isArray(it)) return it.length;
  if (it instanceof Set || it instanceof Map) return it.size;
  if (typeof it === 'string') return undefined; // code points, not length: not worth counting here
  const { length, size } = it as { length?: unknown; size?: unknown };
  if (typeof length === 'number' && Number.isInteger(length) && length >= 0) return length;
  if (typeof size === 'number' && Number.isInteger(size) && size >= 0) return size;
  return undefined;
}

/** Zips iterables into argument lists; the shortest one ends the zip. */
export function* zip(iterables: Iterable<unknown>[]): Iterator<unknown[]> {
  if (iterables.length === 1) {
    for (const item of iterables[0] as Iterable<unknown>) yield [item];
    return;
  }
  const iterators = iterables.map((it) => it[Symbol.iterator]());
  try {
    for (;;) {
      const args: unknown[] = [];
      for (const it of iterators) {
        const r = it.next();
        if (r.done === true) return;
        args.push(r.value);
      }
      yield args;
    }
  } finally {
    for (const it of iterators) it.return?.();
  }
}

/**
 * The main-thread side of a map iterated synchronously in a sync body (see `SyncActionController.mapSync`): the body's
 * thread feeds the items as it pulls them, and takes the results in input order as they settle. At most
 * `concurrency` items run at once; the thread bounds how many are fed but not yet taken.
 *
 * Failed items are errors in place with `returnExceptions`; without it, the first failure aborts the items
 * still running and is thrown by the next {@link take} (after the results that settled before it in input
 * order). With a failure budget, the moment it breaks the items still running are aborted, those fed but not
 * started never start, and the next {@link take} throws the budget's error.
 */
export class SyncMapRun {
  readonly #call: (args: unknown[]) => Promise<unknown>;
  readonly #limit: number;
  readonly #returnExceptions: boolean;
  readonly #scope = new CancelScope();
  /** Items fed, not started. */
  readonly #waiting = new Fifo<unknown[]>();
  /** Items started, in input order, whose results were not taken. */
  readonly #started = new Fifo<{ settled: Settled | undefined }>();
  #active = 0;
  #failure: { readonly error: unknown } | undefined;
  #wake: (() => void) | undefined;
  readonly #budget: FailureBudget | undefined;
  /** Items fed so far. */
  #fed = 0;
  /** Items started so far (the next one's index). */
  #launched = 0;
  /** The body said its input ended. */
  #ended = false;

  constructor(frame: Frame, task: TaskDefinition, bound: readonly unknown[], options: SyncMapOptions) {
    this.#limit = options.concurrency === 0 ? Infinity : options.concurrency;
    this.#returnExceptions = options.returnExceptions;
    if (options.budget !== null) this.#budget = new FailureBudget(task.name, options.budget, options.total);
    this.#call = childCall(frame, task, bound, options.group, this.#scope, options.total ?? undefined);
  }

  /** Queues argument lists; they start (in order) as slots free up. `last`: the input ended with them. */
  feed(argLists: readonly unknown[][], last = false): void {
    for (const args of argLists) this.#waiting.push(args);
    this.#fed += argLists.length;
    if (last && !this.#ended) {
      this.#ended = true;
      this.#budgetReport(this.#budget?.exhausted(this.#fed));
    }
    this.#launch();
  }

  /**
   * The next results in input order, at least one, as soon as the first of them settled; none once the input
   * ended and every result was taken (the body's last word, so that a budget checked at the end is heard).
   */
  async take(): Promise<unknown[]> {
    for (;;) {
      const broken = this.#budget?.broken;
      if (broken !== undefined) throw broken;
      const ready: unknown[] = [];
      for (let head = this.#started.peek(); head?.settled !== undefined; head = this.#started.peek()) {
        const s = head.settled;
        if (!s.ok && !this.#returnExceptions) break;
        this.#started.shift();
        ready.push(s.ok ? s.value : asUserError(s.error));
      }
      if (ready.length > 0) return ready;
      if (this.#failure !== undefined) throw this.#failure.error;
      if (this.#started.length === 0) {
        if (this.#ended && this.#waiting.length === 0) return ready;
        throw new RangeError('map: results were asked for beyond the items fed');
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** The body stopped iterating: items still running are aborted, those not started never start. */
  close(): void {
    this.#scope.cancel(new ActionAbortedError('aborted: the map was not iterated to its end'));
  }

  #launch(): void {
    while (this.#active < this.#limit && this.#scope.reason === null && this.#waiting.length > 0) {
      const slot: { settled: Settled | undefined } = { settled: undefined };
      this.#started.push(slot);
      this.#active++;
      const index = this.#launched++;
      this.#budget?.start();
      void settled(this.#call(this.#waiting.shift() as unknown[])).then((s) => {
        slot.settled = s;
        this.#active--;
        this.#budgetReport(this.#budget?.settle(index, s.ok, s.ok ? undefined : s.error));
        if (!s.ok && !this.#returnExceptions && this.#failure === undefined) {
          this.#failure = { error: s.error };
          this.#scope.cancel(new ActionAbortedError('aborted: another item of the map failed (returnExceptions: false)'));
        }
        this.#launch();
        this.#wakeTaker();
      });
    }
  }

  #wakeTaker(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The budget broke (when `broken` is set): stop the map, wake the taker to throw. */
  #budgetReport(broken: Error | undefined): void {
    if (broken === undefined) return;
    this.#scope.cancel(budgetAbort());
    this.#wakeTaker();
  }
}

/**
 * Calls `task` for one item of a map: a child action of `frame`'s action in `group`, a member of `scope`, whose
 * `itemIndex` is the number of calls made before it.
 */
function childCall(
  frame: Frame,
  task: TaskDefinition,
  bound: readonly unknown[],
  group: string,
  scope: CancelScope,
  total: number | undefined,
): (args: unknown[]) => Promise<unknown> {
  const groupFrame: Frame = { ...frame, group };
  const controller = frame.run.controller;
  // The map's progress is of its items when their number is known.
  if (total !== undefined) controller.beginMap?.(groupFrame, total);
  // Both map runs start their items in input order, one call each: the call count is the item's index.
  let next = 0;
  return bound.length === 0
    ? (args) => controller.submit(groupFrame, task, args, { scope, itemIndex: next++ })
    : (args) => controller.submit(groupFrame, task, [...bound, ...args], { scope, itemIndex: next++ });
}

/** The options of a `flyte.map` call, checked. */
export interface ResolvedMap {
  readonly concurrency: number;
  readonly returnExceptions: boolean;
  readonly group: string;
  readonly signal: AbortSignal | undefined;
  /** The failure budget, or `null` for none. */
  readonly budget: BudgetOptions | null;
}
