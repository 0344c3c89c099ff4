/**
 * Parsing of {@link Duration} values: milliseconds as a number, or a string with a unit.
 * @module
 */
import type { Duration } from '../types.js';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/;

/**
 * Converts a duration to milliseconds.
 *
 * @param what - what the duration is for, used in the error message (e.g. `'timeout'`).
 * @throws TypeError when the value is neither a non-negative finite number nor a string like `'30s'`.
 */
export function toMs(value: Duration, what: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else if (typeof value === 'string') {
    const m = PATTERN.exec(value);
    if (m !== null) return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  throw new TypeError(
    `${what}: expected a duration (milliseconds as a non-negative number, or a string such as '250ms', '30s', '5m', '1h'); received ${describe(value)}`,
  );
}

/** A short description of a received value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'object') {
    const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
    return ctor && ctor !== 'Object' ? `an instance of ${ctor}` : 'an object';
  }
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- only primitives are left here
  return `${typeof value} ${String(value)}`;
}
