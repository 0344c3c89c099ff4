/**
 * Small helpers the benches share to summarize and print their samples.
 *
 * ```ts
 * median([3, 1, 2]); // 2
 * grouped(1234567); // '1 234 567'
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
