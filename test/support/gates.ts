/**
 * Gates and trackers for deterministic concurrency tests: task bodies wait on gates the test opens, and report
 * when they start and finish, so a test can say "three are running and the fourth has not started" without
 * sleeping.
 *
 * Tasks receive only serializable arguments, so bodies find their gate by a string key in a module-level
 * {@link Gates}; a test resets it (and its {@link Tracker}) before it starts a run.
 * @module
 */

/** A promise that the test resolves from outside. */
export class Gate<T = void> {
  readonly promise: Promise<T>;
  #resolve!: (value: T) => void;
  #opened = false;

  constructor() {
    this.promise = new Promise<T>((resolve) => {
      this.#resolve = resolve;
    });
  }

  get opened(): boolean {
    return this.#opened;
  }

  open(value: T): void {
    this.#opened = true;
    this.#resolve(value);
  }
}

/** Gates by key, created on first use by whichever side (body or test) asks first. */
export class Gates {
  readonly #gates = new Map<string, Gate>();

  get(key: string): Gate {
    let gate = this.#gates.get(key);
    if (gate === undefined) {
      gate = new Gate();
      this.#gates.set(key, gate);
    }
    return gate;
  }

  /** Resolves once the test opens `key`. */
  wait(key: string): Promise<void> {
    return this.get(key).promise;
  }

  open(key: string): void {
    this.get(key).open();
  }

  /** Opens every gate created so far. */
  openAll(): void {
    for (const gate of this.#gates.values()) gate.open();
  }
}

/** Records which bodies started and finished, the number in flight and its maximum. */
export class Tracker {
  readonly started: string[] = [];
  readonly finished: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  readonly #waiters: Array<{ ready: () => boolean; resolve: () => void }> = [];

  enter(id: string): void {
    this.started.push(id);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.#notify();
  }

  leave(id: string): void {
    this.finished.push(id);
    this.inFlight--;
    this.#notify();
  }

  /** Resolves once at least `n` bodies have started. */
  untilStarted(n: number): Promise<void> {
    return this.#until(() => this.started.length >= n);
  }

  /** Resolves once at least `n` bodies have finished. */
  untilFinished(n: number): Promise<void> {
    return this.#until(() => this.finished.length >= n);
  }

  #until(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ ready, resolve }));
  }

  #notify(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i]!;
      if (waiter.ready()) {
        this.#waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }
}

/**
 * Lets everything already scheduled run (promise reactions, immediates, store commits): used before asserting
 * that something did *not* happen, e.g. that a fourth item did not start while three hold the slots.
 */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
