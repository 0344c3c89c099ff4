/**
 * A counting semaphore: the primitive behind `flyte.Semaphore`, map concurrency and run-wide action limits.
 * @module
 */
import { Fifo } from './fifo.js';

/**
 * At most `permits` holders at a time; waiters are served first come, first served.
 *
 * @example
 * ```ts
 * const sem = new flyte.Semaphore(5);
 * await Promise.all(items.map((x) => sem.run(() => processItem(x))));
 * ```
 */
export class Semaphore {
  #available: number;
  readonly #waiters = new Fifo<() => void>();

  constructor(permits: number) {
    if (!Number.isInteger(permits) || permits < 1) {
      throw new RangeError(`Semaphore: expected a positive integer number of permits; received ${String(permits)}`);
    }
    this.#available = permits;
  }

  /** Permits free right now. */
  get available(): number {
    return this.#available;
  }

  /** Takes a permit without waiting; `false` when none is free. */
  tryAcquire(): boolean {
    if (this.#available > 0 && this.#waiters.length === 0) {
      this.#available--;
      return true;
    }
    return false;
  }

  /** Resolves once a permit is held. Pair with {@link release}. */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Returns a permit, waking the longest waiter. */
  release(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) {
      next();
    } else {
      this.#available++;
    }
  }

  /** Runs `fn` holding a permit, releasing it however `fn` ends. */
  async run<T>(fn: () => T | PromiseLike<T>): Promise<Awaited<T>> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
