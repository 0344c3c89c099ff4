/**
 * `flyte.map`: run a task over items with bounded concurrency, results in input order.
 * @module
 */
import type { RuntimeUserError } from './errors.js';
import { syncController } from './internal/controller.js';
import { describe } from './internal/duration.js';
import { currentFrame } from './internal/frame.js';
import type { BudgetOptions } from './internal/failure-budget.js';
import { MapRun, sizeOf, zip, type ResolvedMap } from './internal/map-run.js';
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
  /**
   * A failure budget: the share of the items (0 to 1) that must succeed. At most
   * `floor(total × (1 − minSuccessRatio))` items may fail; while they do not exceed that, the map goes on and
   * failed items are errors in place (as with `returnExceptions: true`). The moment one more fails, the items
   * still running are aborted, those not started never start, and the map rejects (an iterator throws at its next
   * step) with `flyte.errors.MapFailureBudgetExceeded`, which carries the counts and the first errors.
   *
   * `total` is the input's size when it is known (an array, a `Set`, anything with an integer `length` or
   * `size`). For an input of unknown size (a generator) the ratio is applied once the input is exhausted, over
   * the number of items it gave; until then only `maxFailures` can break the budget.
   *
   * May be combined with {@link maxFailures}: the budget breaks when either limit does. Cannot be combined with
   * `returnExceptions: false` (a TypeError). `1` allows no failure, `0` any number.
   * @default undefined (no budget)
   */
  readonly minSuccessRatio?: number;
  /**
   * A failure budget as a count: at most this many items may fail (a non-negative integer; `0` stops at the
   * first failure, with `flyte.errors.MapFailureBudgetExceeded`). Otherwise as {@link minSuccessRatio}.
   * @default undefined (no budget)
   */
  readonly maxFailures?: number;
  /** Group of the map's actions is `${task.name}_${groupName}`. @default group `${task.name}_map` */
  readonly groupName?: string;
  /** Aborts the items still running and stops starting new ones. */
  readonly signal?: AbortSignal;
}

const PARTIAL = Symbol.for('flyte-ts.partial');

/** A task with its leading arguments bound, from {@link partial}. Callable with the remaining arguments. */
export type PartialTask<Rest extends unknown[], R> = ((...rest: Rest) => R) & {
  /** @internal The task and its bound arguments, read by `flyte.map`. */
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

function isIterable(value: unknown): value is Iterable<unknown> {
  return value != null && typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function';
}

function resolveBudget(options: MapOptions): BudgetOptions | null {
  const { minSuccessRatio, maxFailures, returnExceptions } = options;
  if (minSuccessRatio !== undefined && (typeof minSuccessRatio !== 'number' || !(minSuccessRatio >= 0 && minSuccessRatio <= 1))) {
    throw new RangeError(`map: minSuccessRatio: expected a number from 0 to 1; received ${describe(minSuccessRatio)}`);
  }
  if (maxFailures !== undefined && (!Number.isInteger(maxFailures) || maxFailures < 0)) {
    throw new RangeError(`map: maxFailures: expected a non-negative integer; received ${describe(maxFailures)}`);
  }
  if (minSuccessRatio === undefined && maxFailures === undefined) return null;
  if (returnExceptions === false) {
    const given = minSuccessRatio === undefined ? 'maxFailures' : 'minSuccessRatio';
    throw new TypeError(
      `map: ${given}: expected returnExceptions to be true or left out (a failure budget returns failed items as errors ` +
        `while it holds); received returnExceptions: false, which fails at the first error: use maxFailures: 0 for that`,
    );
  }
  return { minSuccessRatio: minSuccessRatio ?? null, maxFailures: maxFailures ?? null };
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
  return { concurrency, returnExceptions, group, signal, budget: resolveBudget(options) };
}

/** Options that fail the map at its first error: the element type has no error in it. */
type StrictMapOptions = MapOptions & {
  readonly returnExceptions: false;
  readonly minSuccessRatio?: undefined;
  readonly maxFailures?: undefined;
};

type MapTask<Args extends unknown[], R> = Task<Args, R> | PartialTask<Args, R>;

/**
 * Runs `task` once per item (several iterables are zipped, the shortest wins), at most `concurrency` at a
 * time, each call a child action in the group `${task.name}_map`. Results come in input order.
 *
 * @example
 * ```ts
 * const doubled = await flyte.map(double, [1, 2, 3], { concurrency: 2 });       // (number | RuntimeUserError)[]
 * const strict = await flyte.map(double, items, { returnExceptions: false });   // number[]; first failure rejects
 * const most = await flyte.map(double, items, { minSuccessRatio: 0.9 });        // errors in place; rejects with
 *                                                  // MapFailureBudgetExceeded once more than 10% failed
 * for await (const r of flyte.map(double, items).asCompleted()) console.log(r); // completion order
 * const sums = await flyte.map(add, [1, 2], [10, 20]);                          // add(1, 10), add(2, 20)
 * ```
 */
export function map<A, R>(
  task: MapTask<[A], R>,
  items: Iterable<A>,
  options: StrictMapOptions,
): MapResult<Awaited<R>>;
export function map<A, R>(task: MapTask<[A], R>, items: Iterable<A>, options?: MapOptions): MapResult<Awaited<R> | RuntimeUserError>;
export function map<A, B, R>(
  task: MapTask<[A, B], R>,
  a: Iterable<A>,
  b: Iterable<B>,
  options: StrictMapOptions,
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
      const controller = frame === undefined ? undefined : syncController(frame);
      if (frame !== undefined && controller !== undefined) {
        consume('iterated synchronously');
        const { concurrency, returnExceptions, group, budget } = resolved;
        const total = sizeOf(iterables) ?? null;
        return controller.mapSync(frame, def, bound, zip(iterables), { concurrency, returnExceptions, group, total, budget });
      }
      throw new TypeError(
        'map: a map is iterable synchronously (Array.from, for...of) only inside a sync task; here use `await flyte.map(...)` or `for await`',
      );
    },
  } satisfies MapResult<unknown>;
}
