/**
 * `flyte.gather` and `flyte.asCompleted`: the `asyncio.gather` / `asyncio.as_completed` analogs.
 * @module
 */
import { describe } from './internal/duration.js';
import { Fifo } from './internal/fifo.js';

/** Options of {@link gather}. */
export interface GatherOptions {
  /** `true`: a rejection becomes its error value in the result; `false`: the first rejection rejects. @default false */
  readonly returnExceptions?: boolean;
}

type Awaitables = readonly unknown[] | [];

/**
 * Awaits every promise, results in input order: `Promise.all`, or with `returnExceptions` each rejection's error
 * in its place (like `asyncio.gather(..., return_exceptions=True)`).
 *
 * @example
 * ```ts
 * const results = await flyte.gather(items.map((x) => processItem(x)), { returnExceptions: true });
 * const failures = results.filter((r) => r instanceof Error);
 * ```
 */
export function gather<T extends Awaitables>(
  promises: T,
  options?: { readonly returnExceptions?: false },
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }>;
export function gather<T extends Awaitables>(
  promises: T,
  options: { readonly returnExceptions: true },
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> | Error }>;
export function gather(promises: readonly unknown[], options: GatherOptions = {}): Promise<unknown[]> {
  if (!Array.isArray(promises)) {
    return Promise.reject(new TypeError(`gather: expected an array of promises; received ${describe(promises)}`));
  }
  if (options.returnExceptions !== true) return Promise.all(promises);
  return Promise.all(
    promises.map((p) =>
      Promise.resolve(p).then(
        (value: unknown) => value,
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      ),
    ),
  );
}

/**
 * Yields each promise's value as it settles, in completion order; a rejection is thrown at its turn.
 *
 * @example
 * ```ts
 * for await (const result of flyte.asCompleted(items.map((x) => processItem(x)))) {
 *   console.log('done', result);
 * }
 * ```
 */
export function asCompleted<T>(promises: Iterable<T | PromiseLike<T>>): AsyncGenerator<Awaited<T>> {
  // Checked here, not in the generator, so a bad argument throws at the call rather than at the first `next()`.
  if (promises == null || typeof (promises as Iterable<T>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`asCompleted: expected an iterable of promises; received ${describe(promises)}`);
  }
  return inCompletionOrder(promises);
}

async function* inCompletionOrder<T>(promises: Iterable<T | PromiseLike<T>>): AsyncGenerator<Awaited<T>> {
  type Outcome = { ok: true; value: Awaited<T> } | { ok: false; error: unknown };
  const queue = new Fifo<Outcome>();
  let wake: (() => void) | undefined;
  let pending = 0;
  for (const p of promises) {
    pending++;
    Promise.resolve(p).then(
      (value) => push({ ok: true, value }),
      (error: unknown) => push({ ok: false, error }),
    );
  }
  function push(outcome: Outcome): void {
    queue.push(outcome);
    const w = wake;
    wake = undefined;
    w?.();
  }
  for (let yielded = 0; yielded < pending; yielded++) {
    if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    const next = queue.shift() as Outcome;
    if (!next.ok) throw next.error;
    yield next.value;
  }
}
