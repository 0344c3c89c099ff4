/**
 * `flyte.map`: run a task over items with bounded concurrency, results in input order.
 * @module
 */
import { ActionAbortedError, BaseRuntimeError, RuntimeUserError, errorCode } from './errors.js';
import { CancelScope } from './internal/controller.js';
import { Fifo } from './internal/fifo.js';
import { describe } from './internal/duration.js';
import { currentFrame, type Frame } from './internal/frame.js';
import type { TaskDefinition } from './internal/task-definition.js';
import { taskDefinition, type Task } from './task.js';

/** Options of {@link map}. */
export interface MapOptions {
  /** How many items run at once; `0` means no limit. @default 0 */
  readonly concurrency?: number;
  /**
   * `true`: a failed item yields its error (a `RuntimeUserError`) in its place and the others go on.
   * `false`: the first failure rejects the map and aborts the items still running.
   * @default true
   */
  readonly returnExceptions?: boolean;
  /** Group of the map's actions is `${task.name}_${groupName}`. @default group `${task.name}_map` */
  readonly groupName?: string;
  /** Aborts the items still running and stops starting new ones. */
  readonly signal?: AbortSignal;
}

const PARTIAL = Symbol.for('flyte-ts.partial');

/** A task with its leading arguments bound, from {@link partial}. Callable with the remaining arguments. */
export type PartialTask<Rest extends unknown[], R> = ((...rest: Rest) => R) & {
  readonly [PARTIAL]: { readonly task: TaskDefinition; readonly bound: readonly unknown[] };
};

/**
 * Binds the leading arguments of a task, for {@link map}: each item goes after them.
 *
 * @example
 * ```ts
 * const scaled = await flyte.map(flyte.partial(scale, 10), [1, 2, 3]); // scale(10, 1), scale(10, 2), ...
 * ```
 */
export function partial<B extends unknown[], Rest extends unknown[], R>(
  task: Task<[...B, ...Rest], R>,
  ...bound: B
): PartialTask<Rest, R> {
  const def = taskDefinition(task);
  if (def === undefined) throw new TypeError(`partial: expected a task (made with env.task); received ${describe(task)}`);
  const fn = ((...rest: Rest) => (task as unknown as (...a: unknown[]) => R)(...bound, ...rest)) as PartialTask<Rest, R>;
  Object.defineProperty(fn, PARTIAL, { value: { task: def, bound } });
  return fn;
}

/**
 * The result of {@link map}: lazy (nothing starts until it is awaited or iterated), awaitable as the array of
 * results in input order, async-iterable in input order, and `.asCompleted()` in completion order. Consume it
 * once.
 */
export interface MapResult<T> extends PromiseLike<T[]>, AsyncIterable<T>, Iterable<T> {
  /** The results in completion order. */
  asCompleted(): AsyncIterable<T>;
  /** As `Promise.prototype.catch` on the awaited results (starts the map). */
  catch<E = never>(onRejected?: ((reason: unknown) => E | PromiseLike<E>) | null): Promise<T[] | E>;
  /** As `Promise.prototype.finally` on the awaited results (starts the map). */
  finally(onFinally?: (() => void) | null): Promise<T[]>;
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** An item's result for the caller: the value, or (with `returnExceptions`) the error as a flyte error. */
function asUserError(error: unknown): BaseRuntimeError {
  if (error instanceof BaseRuntimeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RuntimeUserError(errorCode(error), message, { cause: error });
}

/** Runs one map: pulls items lazily, calls the task in the map's group, keeps at most `limit` running. */
class MapRun {
  readonly #call: (args: unknown[]) => Promise<unknown>;
  readonly #items: Iterator<unknown[]>;
  readonly #limit: number;
  readonly #returnExceptions: boolean;
  readonly #scope = new CancelScope();
  readonly #signal: AbortSignal | undefined;
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
    if (frame === undefined) {
      this.#call = (args) => Promise.resolve().then(() => task.fn(...([...bound, ...args] as never[])));
    } else {
      this.#call = childCall(frame, task, bound, options.group, this.#scope, sizeOf(iterables));
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
    if (next.done === true) return undefined;
    return this.#call(next.value);
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
        const stopped = this.#scope.reason;
        if (stopped !== null && !failed) reject(stopped);
        else resolve(results);
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
              settle();
            },
            (error: unknown) => {
              if (this.#returnExceptions) results[i] = asUserError(error);
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
        const next = await (window.shift() as Promise<Settled>);
        fill();
        yield this.#result(next);
      }
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
        if (ready.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const next = ready.shift() as Settled;
        launch();
        yield this.#result(next);
      }
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
function* zip(iterables: Iterable<unknown>[]): Iterator<unknown[]> {
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
 * The main-thread side of a map iterated synchronously in a sync body (see `Controller.mapSync`): the body's
 * thread feeds the items as it pulls them, and takes the results in input order as they settle. At most
 * `concurrency` items run at once; the thread bounds how many are fed but not yet taken.
 *
 * Failed items are errors in place with `returnExceptions`; without it, the first failure aborts the items
 * still running and is thrown by the next {@link take} (after the results that settled before it in input
 * order).
 * @internal
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

  constructor(
    frame: Frame,
    task: TaskDefinition,
    bound: readonly unknown[],
    options: {
      readonly concurrency: number;
      readonly returnExceptions: boolean;
      readonly group: string;
      readonly total: number | null;
    },
  ) {
    this.#limit = options.concurrency === 0 ? Infinity : options.concurrency;
    this.#returnExceptions = options.returnExceptions;
    this.#call = childCall(frame, task, bound, options.group, this.#scope, options.total ?? undefined);
  }

  /** Queues argument lists; they start (in order) as slots free up. */
  feed(argLists: readonly unknown[][]): void {
    for (const args of argLists) this.#waiting.push(args);
    this.#launch();
  }

  /** The next results in input order, at least one, as soon as the first of them settled. */
  async take(): Promise<unknown[]> {
    for (;;) {
      const ready: unknown[] = [];
      for (let head = this.#started.peek(); head?.settled !== undefined; head = this.#started.peek()) {
        const s = head.settled;
        if (!s.ok && !this.#returnExceptions) break;
        this.#started.shift();
        ready.push(s.ok ? s.value : asUserError(s.error));
      }
      if (ready.length > 0) return ready;
      if (this.#failure !== undefined) throw this.#failure.error;
      if (this.#started.length === 0) throw new RangeError('map: results were asked for beyond the items fed');
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
      void settled(this.#call(this.#waiting.shift() as unknown[])).then((s) => {
        slot.settled = s;
        this.#active--;
        if (!s.ok && !this.#returnExceptions && this.#failure === undefined) {
          this.#failure = { error: s.error };
          this.#scope.cancel(new ActionAbortedError('aborted: another item of the map failed (returnExceptions: false)'));
        }
        this.#launch();
        const wake = this.#wake;
        this.#wake = undefined;
        wake?.();
      });
    }
  }
}

/** Calls `task` for one item of a map: a child action of `frame`'s action in `group`, a member of `scope`. */
function childCall(
  frame: Frame,
  task: TaskDefinition,
  bound: readonly unknown[],
  group: string,
  scope: CancelScope,
  total: number | undefined,
): (args: unknown[]) => Promise<unknown> {
  const groupFrame: Frame = { ...frame, group };
  const options = { scope };
  const controller = frame.run.controller;
  // The map's progress is of its items when their number is known.
  if (total !== undefined) controller.beginMap?.(groupFrame, total);
  return bound.length === 0
    ? (args) => controller.submit(groupFrame, task, args, options)
    : (args) => controller.submit(groupFrame, task, [...bound, ...args], options);
}

interface ResolvedMap {
  readonly concurrency: number;
  readonly returnExceptions: boolean;
  readonly group: string;
  readonly signal: AbortSignal | undefined;
}

function isIterable(value: unknown): value is Iterable<unknown> {
  return value != null && typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function';
}

function resolveOptions(task: TaskDefinition, options: MapOptions): ResolvedMap {
  const { concurrency = 0, returnExceptions = true, groupName, signal } = options;
  if (!Number.isInteger(concurrency) || concurrency < 0) {
    throw new RangeError(`map: concurrency: expected a non-negative integer (0 = unbounded); received ${describe(concurrency)}`);
  }
  if (typeof returnExceptions !== 'boolean') {
    throw new TypeError(`map: returnExceptions: expected a boolean; received ${describe(returnExceptions)}`);
  }
  if (groupName !== undefined && (typeof groupName !== 'string' || groupName === '')) {
    throw new TypeError(`map: groupName: expected a non-empty string; received ${describe(groupName)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`map: signal: expected an AbortSignal; received ${describe(signal)}`);
  }
  const group = groupName === undefined ? `${task.name}_map` : `${task.name}_${groupName}`;
  return { concurrency, returnExceptions, group, signal };
}

type MapTask<Args extends unknown[], R> = Task<Args, R> | PartialTask<Args, R>;

/**
 * Runs `task` once per item (several iterables are zipped, the shortest wins), at most `concurrency` at a
 * time, each call a child action in the group `${task.name}_map`. Results come in input order.
 *
 * @example
 * ```ts
 * const doubled = await flyte.map(double, [1, 2, 3], { concurrency: 2 });       // (number | RuntimeUserError)[]
 * const strict = await flyte.map(double, items, { returnExceptions: false });   // number[]; first failure rejects
 * for await (const r of flyte.map(double, items).asCompleted()) console.log(r); // completion order
 * const sums = await flyte.map(add, [1, 2], [10, 20]);                          // add(1, 10), add(2, 20)
 * ```
 */
export function map<A, R>(
  task: MapTask<[A], R>,
  items: Iterable<A>,
  options: MapOptions & { readonly returnExceptions: false },
): MapResult<Awaited<R>>;
export function map<A, R>(task: MapTask<[A], R>, items: Iterable<A>, options?: MapOptions): MapResult<Awaited<R> | RuntimeUserError>;
export function map<A, B, R>(
  task: MapTask<[A, B], R>,
  a: Iterable<A>,
  b: Iterable<B>,
  options: MapOptions & { readonly returnExceptions: false },
): MapResult<Awaited<R>>;
export function map<A, B, R>(
  task: MapTask<[A, B], R>,
  a: Iterable<A>,
  b: Iterable<B>,
  options?: MapOptions,
): MapResult<Awaited<R> | RuntimeUserError>;
export function map<A, B, C, R>(
  task: MapTask<[A, B, C], R>,
  a: Iterable<A>,
  b: Iterable<B>,
  c: Iterable<C>,
  options?: MapOptions,
): MapResult<Awaited<R> | RuntimeUserError>;
export function map(task: unknown, ...rest: unknown[]): MapResult<unknown> {
  const partialOf = (task as { [PARTIAL]?: { task: TaskDefinition; bound: readonly unknown[] } } | null)?.[PARTIAL];
  const def = partialOf?.task ?? taskDefinition(task);
  if (def === undefined) {
    throw new TypeError(`map: expected a task (made with env.task) or flyte.partial(task, ...); received ${describe(task)}`);
  }
  const bound = partialOf?.bound ?? [];
  const last = rest[rest.length - 1];
  const options = (rest.length > 0 && typeof last === 'object' && last !== null && !isIterable(last) ? rest.pop() : {}) as MapOptions;
  if (rest.length === 0) throw new TypeError(`map: expected at least one iterable of items after the task; received none`);
  rest.forEach((it, i) => {
    if (!isIterable(it)) throw new TypeError(`map: argument ${i + 2}: expected an iterable of items; received ${describe(it)}`);
  });
  const resolved = resolveOptions(def, options);
  const iterables = rest as Iterable<unknown>[];
  let consumed: string | undefined;
  let all: Promise<unknown[]> | undefined;
  // The map is bound to the frame it was created in, but starts only when consumed.
  let runner: MapRun | undefined;
  const frame = currentFrame();
  const consume = (how: string): void => {
    // Awaiting twice is fine (`then` memoizes the one collection); any other second consumption would find the
    // items already taken and silently yield nothing, so it is refused.
    if (consumed !== undefined) {
      throw new TypeError(`map: this map was already consumed (${consumed}); call flyte.map again to run it again`);
    }
    consumed = how;
  };
  const start = (how: string): MapRun => {
    consume(how);
    runner ??= new MapRun(frame, def, bound, iterables, resolved);
    return runner;
  };
  return {
    then(onFulfilled, onRejected) {
      all ??= start('awaited').collect();
      return all.then(onFulfilled, onRejected);
    },
    catch(onRejected) {
      all ??= start('awaited').collect();
      return all.catch(onRejected);
    },
    finally(onFinally) {
      all ??= start('awaited').collect();
      return all.finally(onFinally);
    },
    [Symbol.asyncIterator]() {
      return start('iterated in input order').ordered();
    },
    asCompleted() {
      return { [Symbol.asyncIterator]: () => start('iterated in completion order').completed() };
    },
    [Symbol.iterator](): Iterator<unknown> {
      const controller = frame?.sync === true ? frame.run.controller : undefined;
      if (frame !== undefined && controller?.mapSync !== undefined) {
        consume('iterated synchronously');
        const { concurrency, returnExceptions, group } = resolved;
        const total = sizeOf(iterables) ?? null;
        return controller.mapSync(frame, def, bound, zip(iterables), { concurrency, returnExceptions, group, total });
      }
      throw new TypeError(
        'map: a map is iterable synchronously (Array.from, for...of) only inside a sync task; here use `await flyte.map(...)` or `for await`',
      );
    },
  } satisfies MapResult<unknown>;
}
