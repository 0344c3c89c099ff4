/**
 * Checks the `offset`/`limit` of a list query, and the filters of an action query, the same way in every store.
 * @module
 */
import { MAX_RUN_LOGS_PAGE, type RunLogsQuery } from './run-store.js';

/** A checked page: `limit` is `Infinity` when the query has none and no default applies. */
export interface Page {
  readonly offset: number;
  readonly limit: number;
}

/**
 * Reads and checks `offset` and `limit` of a list query.
 *
 * @throws RangeError when either is not a non-negative integer.
 * @example
 * ```ts
 * pageOf({ limit: 10 }, 50); // { offset: 0, limit: 10 }
 * pageOf({}, Infinity);      // { offset: 0, limit: Infinity }
 * ```
 */
export function pageOf(query: { readonly offset?: number; readonly limit?: number }, defaultLimit: number): Page {
  const offset = query.offset ?? 0;
  const limit = query.limit ?? defaultLimit;
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`offset must be a non-negative integer, received ${String(query.offset)}`);
  }
  if (limit !== Infinity && (!Number.isSafeInteger(limit) || limit < 0)) {
    throw new RangeError(`limit must be a non-negative integer, received ${String(query.limit)}`);
  }
  return { offset, limit };
}

/**
 * Reads and checks the `tail` of a log query: `undefined` (all lines) or a non-negative integer.
 *
 * @throws RangeError otherwise.
 */
export function checkTail(tail: number | undefined): number | undefined {
  if (tail !== undefined && (!Number.isSafeInteger(tail) || tail < 0)) {
    throw new RangeError(`tail must be a non-negative integer, received ${String(tail)}`);
  }
  return tail;
}

/** The search filters of an action query, as {@link checkActionFilters} reads them. */
export interface ActionFilters {
  readonly failed?: boolean;
  readonly text?: string;
  readonly itemIndex?: number;
  readonly cause?: { readonly code: string; readonly pattern: string };
  readonly after?: string;
}

/**
 * Checks the search filters of `RunStore.listActions` (`failed`, `text`, `itemIndex`, `cause`, `after`), so that every
 * store refuses the same bad queries with the same words.
 *
 * @throws TypeError or RangeError saying what was expected and what was received.
 * @example
 * ```ts
 * checkActionFilters({ itemIndex: 3, text: 'timeout' }); // passes
 * checkActionFilters({ itemIndex: -1 });                 // RangeError
 * ```
 */
export function checkActionFilters(query: ActionFilters): void {
  if (query.failed !== undefined && typeof query.failed !== 'boolean') {
    throw new TypeError(`failed must be a boolean, received ${JSON.stringify(query.failed)}`);
  }
  if (query.text !== undefined && (typeof query.text !== 'string' || query.text === '')) {
    throw new TypeError(`text must be a non-empty string, received ${JSON.stringify(query.text)}`);
  }
  if (query.itemIndex !== undefined && (!Number.isSafeInteger(query.itemIndex) || query.itemIndex < 0)) {
    throw new RangeError(`itemIndex must be a non-negative integer, received ${String(query.itemIndex)}`);
  }
  const cause = query.cause;
  if (cause !== undefined && (typeof cause?.code !== 'string' || typeof cause.pattern !== 'string')) {
    throw new TypeError(`cause must be { code: string, pattern: string }, received ${JSON.stringify(cause)}`);
  }
  if (query.after !== undefined && (typeof query.after !== 'string' || query.after === '')) {
    throw new TypeError(`after must be an action name (a non-empty string), received ${JSON.stringify(query.after)}`);
  }
}

/**
 * Checks the fan-out of a `RunStore.listCauses` query.
 *
 * @throws TypeError when `parentName` or `group` is not a string.
 */
export function checkCausesQuery(query: { readonly parentName: string; readonly group: string }): void {
  if (typeof query?.parentName !== 'string' || typeof query.group !== 'string') {
    throw new TypeError(
      `listCauses needs { parentName: string, group: string }, received ${JSON.stringify(query ?? null)}`,
    );
  }
}

/**
 * Reads and checks a {@link RunLogsQuery}: `afterSeq` a non-negative integer (default 0), `beforeSeq` one too
 * (or absent), `limit` an integer from 1 to {@link MAX_RUN_LOGS_PAGE} (default 1000).
 *
 * @throws RangeError saying what was expected and what was received.
 * @example
 * ```ts
 * runLogsPage({ afterSeq: 41 }); // { afterSeq: 41, beforeSeq: undefined, limit: 1000 }
 * ```
 */
export function runLogsPage(query: RunLogsQuery): {
  readonly afterSeq: number;
  readonly beforeSeq: number | undefined;
  readonly limit: number;
} {
  const afterSeq = query.afterSeq ?? 0;
  const beforeSeq = query.beforeSeq;
  const limit = query.limit ?? 1000;
  if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) {
    throw new RangeError(`afterSeq must be a non-negative integer, received ${String(query.afterSeq)}`);
  }
  if (beforeSeq !== undefined && (!Number.isSafeInteger(beforeSeq) || beforeSeq < 0)) {
    throw new RangeError(`beforeSeq must be a non-negative integer, received ${String(beforeSeq)}`);
  }
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_RUN_LOGS_PAGE) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_RUN_LOGS_PAGE}, received ${String(query.limit)}`);
  }
  return { afterSeq, beforeSeq, limit };
}
