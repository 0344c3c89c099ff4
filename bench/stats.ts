/**
 * Small helpers the benches share to read their options and to summarize and print their samples.
 *
 * ```ts
 * median([3, 1, 2]); // 2
 * grouped(1234567); // '1 234 567'
 * integer('rounds', '3', 1); // 3, from `--rounds 3`
 * ```
 * @module
 */

/** The median of `values` (the mean of the two middle ones for an even count); `NaN` for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** 1234567 → `1 234 567`: rounded, thousands separated by a space as in the READMEs; `–` for `undefined`. */
export function grouped(value: number | undefined): string {
  return value === undefined
    ? '–'
    : Math.round(value)
        .toString()
        .replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

/**
 * The integer value `text` of the option `--name`.
 *
 * @throws RangeError "--name: expected an integer >= min; received …" when it is not one, or is below `min`.
 */
export function integer(name: string, text: string | undefined, min: number): number {
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value < min) {
    throw new RangeError(`--${name}: expected an integer >= ${min}; received ${JSON.stringify(text)}`);
  }
  return value;
}
