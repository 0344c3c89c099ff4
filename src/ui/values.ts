/**
 * Turns stored (encoded) inputs and outputs into text a person can read in the UI.
 *
 * Values are decoded with the run store's codec and printed with `util.inspect`, which shows every type a value
 * may hold (`Map`, `Set`, `Date`, `BigInt`, typed arrays, `flyte.io.File`, errors) in JavaScript-literal syntax.
 * Large values are cut (long arrays and strings, deep nesting); offloaded values are never read: the UI shows
 * their size only.
 * @module
 */
import { inspect } from 'node:util';
import { parseOffloadMarker, type ValueCodec } from '../internal/serde.js';

/** A value as the UI shows it. */
export interface RenderedValue {
  /** Size of the encoded value (for an offloaded value, of the file that holds it). */
  readonly bytes: number;
  /** Whether the value lives in a file under the state directory instead of the store; then nothing is shown. */
  readonly offloaded: boolean;
  /**
   * The value as text; for inputs, one text per argument. Empty when the value is offloaded or could not be
   * decoded.
   */
  readonly parts: readonly string[];
  /** Set when the value could not be decoded: why. */
  readonly error?: string;
}

/** Longest text of one value; the rest is cut with a note. */
const MAX_TEXT = 100_000;

const INSPECT_OPTIONS = {
  depth: 12,
  maxArrayLength: 200,
  maxStringLength: 10_000,
  breakLength: 100,
  compact: 3,
  sorted: false,
  colors: false,
  getters: false,
  showHidden: false,
  customInspect: false,
} as const;

/** Formats one decoded value. */
export function formatValue(value: unknown): string {
  const text = inspect(value, INSPECT_OPTIONS);
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT)}\n… (${text.length - MAX_TEXT} more characters)`;
}

/**
 * Renders encoded `inputs` (an argument list) or `outputs` (one value) for the UI.
 *
 * @example
 * ```ts
 * renderValue(codec, io.inputs, 'inputs').parts;   // ["[ 1, 2, 3 ]", "{ concurrency: 5 }"]
 * renderValue(codec, io.outputs, 'outputs');         // { bytes: 9, offloaded: false, parts: ['[ 2, 4, 6 ]'] }
 * ```
 */
export function renderValue(codec: ValueCodec, encoded: string, kind: 'inputs' | 'outputs'): RenderedValue {
  const marker = parseOffloadMarker(encoded);
  if (marker !== undefined) return { bytes: marker.bytes, offloaded: true, parts: [] };
  const bytes = Buffer.byteLength(encoded, 'utf8');
  let value: unknown;
  try {
    value = codec.decode(encoded);
  } catch (err) {
    return { bytes, offloaded: false, parts: [], error: err instanceof Error ? err.message : String(err) };
  }
  if (kind === 'inputs' && Array.isArray(value)) return { bytes, offloaded: false, parts: value.map(formatValue) };
  return { bytes, offloaded: false, parts: [formatValue(value)] };
}
