/**
 * A first-in, first-out queue with O(1) amortized `push` and `shift`, for queues that can hold many thousand
 * items (map windows, completion queues, semaphore waiters), where `Array.prototype.shift` would be O(n).
 * @module
 */
export class Fifo<T> {
  #items: Array<T | undefined> = [];
  #head = 0;

  /** Items in the queue. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The first item, without removing it; `undefined` when empty. */
  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /** Removes and returns the first item; `undefined` when empty. */
  shift(): T | undefined {
    if (this.#head === this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined; // let it be collected
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}
