/**
 * The failure budget of a `flyte.map` (`minSuccessRatio`, `maxFailures`): counts the items' outcomes and says
 * the moment the budget can no longer hold. Both map runners (`map-run.ts`) keep one; what to cancel and how to
 * tell the caller is theirs.
 * @module
 */
import {
  BaseRuntimeError,
  MAP_FAILURES_LISTED,
  MapFailureBudgetExceeded,
  errorCode,
  type MapItemFailure,
} from '../errors.js';

/** The budget options of a map, checked; at least one is set. */
export interface BudgetOptions {
  readonly minSuccessRatio: number | null;
  readonly maxFailures: number | null;
}

/**
 * Failures that `minSuccessRatio` allows among `total` items: `floor(total × (1 − ratio))`, the product taken
 * to 12 significant digits so that float noise does not cost a failure (`10 × (1 − 0.9)` is 1, not 0.99…).
 */
export function failuresAllowedByRatio(total: number, ratio: number): number {
  return Math.floor(Number((total * (1 - ratio)).toPrecision(12)));
}

/**
 * One map's budget. The runner reports each item it starts ({@link start}), each outcome ({@link settle}) and
 * the end of its input ({@link exhausted}); the report that breaks the budget returns the error to reject with,
 * once. Outcomes after the break (of the items it cancelled) are not counted.
 *
 * When the input has no known size, `minSuccessRatio` cannot break until the input is exhausted (more items
 * could still make up for the failures); from then on the total is the number of items pulled. `maxFailures`
 * applies from the first item.
 */
export class FailureBudget {
  readonly #taskName: string;
  readonly #options: BudgetOptions;
  #total: number | null;
  #succeeded = 0;
  #failed = 0;
  #running = 0;
  readonly #first: MapItemFailure[] = [];
  #broken: MapFailureBudgetExceeded | undefined;
  /** The first failure, the `cause` of the error. */
  #firstCause: unknown;

  constructor(taskName: string, options: BudgetOptions, total: number | null) {
    this.#taskName = taskName;
    this.#options = options;
    this.#total = total;
  }

  /** The error the budget broke with, once it broke. */
  get broken(): MapFailureBudgetExceeded | undefined {
    return this.#broken;
  }

  /** An item started. */
  start(): void {
    this.#running++;
  }

  /** The input ended after `count` items: the total is known from now on. */
  exhausted(count: number): MapFailureBudgetExceeded | undefined {
    this.#total ??= count;
    return this.#check();
  }

  /** Item `index` ended, with its value or its error. */
  settle(index: number, ok: boolean, error?: unknown): MapFailureBudgetExceeded | undefined {
    if (this.#broken !== undefined) return undefined;
    this.#running--;
    if (ok) {
      this.#succeeded++;
      return undefined;
    }
    if (this.#failed++ === 0) this.#firstCause = error;
    if (this.#first.length < MAP_FAILURES_LISTED) this.#first.push(failureOf(index, error));
    return this.#check();
  }

  #allowed(): number {
    const { minSuccessRatio, maxFailures } = this.#options;
    let allowed = maxFailures ?? Infinity;
    if (minSuccessRatio !== null && this.#total !== null) {
      allowed = Math.min(allowed, failuresAllowedByRatio(this.#total, minSuccessRatio));
    }
    return allowed;
  }

  #check(): MapFailureBudgetExceeded | undefined {
    if (this.#broken !== undefined) return undefined;
    const allowedFailures = this.#allowed();
    if (this.#failed <= allowedFailures) return undefined;
    const total = this.#total;
    const succeeded = this.#succeeded;
    const failed = this.#failed;
    const cancelled = this.#running;
    const notStarted = total === null ? null : Math.max(0, total - succeeded - failed - cancelled);
    const counts = { total, succeeded, failed, cancelled, notStarted, allowedFailures, ...this.#options };
    this.#broken = new MapFailureBudgetExceeded(this.#message(counts), {
      ...counts,
      firstErrors: this.#first,
      cause: this.#firstCause,
    });
    return this.#broken;
  }

  #message(c: {
    total: number | null;
    succeeded: number;
    failed: number;
    cancelled: number;
    notStarted: number | null;
    allowedFailures: number;
  }): string {
    const { minSuccessRatio, maxFailures } = this.#options;
    const limits = [
      minSuccessRatio === null ? undefined : `minSuccessRatio ${minSuccessRatio}`,
      maxFailures === null ? undefined : `maxFailures ${maxFailures}`,
    ].filter((l) => l !== undefined);
    const of = c.total === null ? '' : ` of ${c.total}`;
    const notStarted = c.notStarted === null ? 'an unknown number' : String(c.notStarted);
    const first = this.#first.map((f) => `#${f.index} ${f.code}: ${f.message}`).join('; ');
    return (
      `map of ${this.#taskName} exceeded its failure budget: ${c.failed}${of} items failed, expected at most ` +
      `${c.allowedFailures} (${limits.join(', ')}); ${c.succeeded} succeeded, ${c.cancelled} cancelled, ` +
      `${notStarted} not started. First errors: ${first}`
    );
  }
}

function failureOf(index: number, error: unknown): MapItemFailure {
  const message = error instanceof Error ? error.message : String(error);
  const actionName = error instanceof BaseRuntimeError ? error.actionName : undefined;
  return { index, code: errorCode(error), message, actionName };
}
