/**
 * The codec for values that cross an action boundary: task inputs and outputs, in local and distributed runs.
 *
 * A value is first checked by a walk of our own (so that a refusal is a {@link RuntimeDataValidationError}
 * naming the place in JavaScript syntax, e.g. `args[0].items[3]`), then turned into text in the format of
 * [devalue](https://github.com/sveltejs/devalue), which handles `undefined`, `NaN`, `±Infinity`, `-0`, `BigInt`,
 * `Date`, `Map`, `Set`, typed arrays, `ArrayBuffer` and repeated references. The walk, the writer and the reader
 * (`devalue-format.ts`) use no recursion, so values may be nested to any depth; the writer escapes lone surrogates,
 * so strings survive UTF-8 stores exactly. Each encoding also yields a canonical SHA-256 hash of the value, used
 * for cache keys: plain-object key order does not change it; array, `Map` and `Set` order, types (`1` vs `'1'`,
 * `undefined` vs `null`) and shared references do.
 *
 * `flyte.io.File` and `flyte.io.Dir` are encoded as references (devalue custom types `flyte.io.File` /
 * `flyte.io.Dir` holding `[absolute path, content hash]`); in the canonical hash they count by **content hash
 * only**, so the same bytes under another path hash the same. Encoding is synchronous, so their content is hashed
 * synchronously during the validation walk (memoized per file version, see `content-hash.ts`); a missing or
 * unreadable file is a {@link RuntimeDataValidationError} naming the argument and the file.
 *
 * {@link ValueCodec} adds offloading: text longer than the inline limit is written once, content-addressed, to
 * `<dataDir>/values/<sha256>.devalue`, and the store keeps a short marker (see {@link parseOffloadMarker}).
 *
 * @example
 * ```ts
 * const codec = new ValueCodec({ dataDir: '/tmp/flyte-data' });
 * const { text, hash, bytes } = codec.encode([{ id: 1, tags: new Set(['a']) }], 'args', 10_000);
 * const args = codec.decode(text); // [{ id: 1, tags: Set { 'a' } }]
 * ```
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  InlineIOMaxBytesBreached,
  RuntimeDataValidationError,
  fromSerialized,
  serializeError,
  type SerializedError,
} from '../errors.js';
import { Dir, File } from '../io.js';
import { dirHashSync, fileHashSync } from './content-hash.js';
import { isArrayIndexKey, readText, writeText, type Reduce, type Revive } from './devalue-format.js';
import { sha256Hex } from './hash.js';

/** The result of {@link encodeValue}. */
export interface EncodedValue {
  /** devalue text of the value; {@link decodeValue} turns it back into an equal value. */
  readonly text: string;
  /** Canonical SHA-256 (64 hex characters) of the value: independent of plain-object key order. */
  readonly hash: string;
}

/** The result of {@link ValueCodec.encode}. */
export interface StoredValue extends EncodedValue {
  /** The devalue text, or an offload marker when the text was written to the data directory. */
  readonly text: string;
  /** UTF-8 size of the full devalue text, offloaded or not. */
  readonly bytes: number;
}

/** Options of {@link ValueCodec}. */
export interface ValueCodecOptions {
  /**
   * Directory under which large values are written (`<dataDir>/values/`). `undefined` for stores that keep
   * nothing on disk (the memory store): then a value over the inline limit is refused.
   */
  readonly dataDir: string | undefined;
}

/** Where an offloaded value lives, as read from its marker by {@link parseOffloadMarker}. */
export interface OffloadRef {
  /** SHA-256 (hex) of the devalue text; the file is `<dataDir>/values/<sha256>.devalue`. */
  readonly sha256: string;
  /** UTF-8 size of the offloaded text. */
  readonly bytes: number;
}

const EXPECTED = 'expected plain data (JSON values, undefined, Date, BigInt, Map, Set, typed arrays, ArrayBuffer)';

/** Custom type names of the file references and errors in the text. */
const FILE_TYPE = 'flyte.io.File';
const DIR_TYPE = 'flyte.io.Dir';
const ERROR_TYPE = 'flyte.Error';

// ---------------------------------------------------------------------------------------------------------------
// Offload markers. devalue's output is either a JSON array (`[...]`) or, for a root `undefined`, `NaN`, `±Infinity`
// or `-0`, a negative integer (`-1`, `-3`...), so it always starts with `[` or `-`. A marker starts with `@`, which
// devalue never emits first, so the two can never be confused.
// ---------------------------------------------------------------------------------------------------------------

const MARKER_PREFIX = '@offloaded:v1:';
const MARKER_PATTERN = /^@offloaded:v1:([0-9a-f]{64}):(\d+)$/;
const AT = 0x40; // '@'

function offloadMarker(sha256: string, bytes: number): string {
  return `${MARKER_PREFIX}${sha256}:${bytes}`;
}

/**
 * Reads an offload marker (as stored in place of a large value's text by {@link ValueCodec.encode}).
 * Returns `undefined` for ordinary devalue text, so callers (the UI, `flyte get io`) can show
 * "offloaded, 12 MB" without reading the file.
 *
 * @example
 * ```ts
 * parseOffloadMarker('[1]'); // undefined
 * parseOffloadMarker(stored.text)?.bytes; // 12_582_912
 * ```
 */
export function parseOffloadMarker(text: string): OffloadRef | undefined {
  if (text.charCodeAt(0) !== AT) return undefined;
  const m = MARKER_PATTERN.exec(text);
  return m === null ? undefined : { sha256: m[1] as string, bytes: Number(m[2]) };
}

// ---------------------------------------------------------------------------------------------------------------
// The validation walk.
// ---------------------------------------------------------------------------------------------------------------

/** Prototypes of the built-in objects that devalue encodes whole and that cannot contain other values. */
const LEAF_PROTOTYPES: ReadonlySet<unknown> = new Set<unknown>(
  [
    Date,
    ArrayBuffer,
    DataView,
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    // A Node Buffer is encoded (and decoded) as the Uint8Array it is.
    Buffer,
    (globalThis as { Float16Array?: unknown }).Float16Array,
  ]
    .filter((ctor): ctor is { prototype: unknown } => typeof ctor === 'function')
    .map((ctor) => ctor.prototype),
);

// Kinds of path segments; the segment's key is kept alongside (see `Walk`).
const PROP = 0; // obj.key / obj["key"]
const INDEX = 1; // arr[i]
const SET_ITEM = 2; // [...set][i]
const MAP_KEY = 3; // [...map.keys()][i]
const MAP_VALUE = 4; // map.get(key), for a primitive key
const MAP_VALUE_AT = 5; // [...map.values()][i], for an object key

/** Marks a container whose walk has finished (a repeated reference to it is fine). */
const DONE = -1;

/** State of one validation walk. The path is kept as segments and only formatted for an error message. */
class Walk {
  readonly kinds: number[] = [];
  readonly keys: unknown[] = [];
  /** Containers seen: the path depth while they are being walked, then `DONE`. */
  readonly states = new Map<object, number>();
  /** Whether some plain object's keys are not in canonical order (then the hash needs a sorted clone). */
  unsorted = false;
  /** The `flyte.io.File` / `Dir` references met, with their content hashes; `null` while there are none. */
  refs: Map<File | Dir, string> | null = null;
  /** Whether an `Error` was met (errors travel as flyte errors). */
  errors = false;

  constructor(readonly root: string) {}

  push(kind: number, key: unknown): void {
    this.kinds.push(kind);
    this.keys.push(key);
  }

  pop(): void {
    this.kinds.pop();
    this.keys.pop();
  }

  /** The path of the first `depth` segments, in JavaScript syntax. */
  path(depth = this.kinds.length): string {
    let out = this.root;
    for (let i = 0; i < depth; i += 1) out = appendSegment(out, this.kinds[i] as number, this.keys[i]);
    return out;
  }

  refuse(received: string, hint = ''): never {
    const path = this.path();
    throw new RuntimeDataValidationError(`${EXPECTED}; received ${received} at ${path}${hint}`, { path });
  }

  /** Records entry into a container; returns false when it was already walked (a repeated reference). */
  enter(obj: object): boolean {
    const state = this.states.get(obj);
    if (state === undefined) {
      this.states.set(obj, this.kinds.length);
      return true;
    }
    if (state === DONE) return false;
    const path = this.path();
    throw new RuntimeDataValidationError(
      `cycle: ${path} refers back to ${this.path(state)}; values that cross an action boundary cannot contain cycles`,
      { path },
    );
  }

  leave(obj: object): void {
    this.states.set(obj, DONE);
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function appendSegment(prefix: string, kind: number, key: unknown): string {
  switch (kind) {
    case PROP:
      return IDENTIFIER.test(key as string) ? `${prefix}.${key as string}` : `${prefix}[${JSON.stringify(key)}]`;
    case INDEX:
      return `${prefix}[${key as number}]`;
    case SET_ITEM:
      return `[...${prefix}][${key as number}]`;
    case MAP_KEY:
      return `[...${prefix}.keys()][${key as number}]`;
    case MAP_VALUE:
      return `${prefix}.get(${primitiveLiteral(key)})`;
    case MAP_VALUE_AT:
    default:
      return `[...${prefix}.values()][${key as number}]`;
  }
}

/** A primitive as it would be written in JavaScript source. */
function primitiveLiteral(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Object.is(value, -0)) return '-0';
  return String(value);
}

function isPrimitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}

function describeNonData(value: unknown): string {
  if (typeof value === 'function') {
    return value.name ? `a function (${value.name})` : 'a function';
  }
  if (typeof value === 'symbol') return `a symbol (${value.toString()})`;
  const proto: unknown = Object.getPrototypeOf(value);
  const ctor: unknown = (proto as { constructor?: unknown }).constructor;
  const name = typeof ctor === 'function' && ctor.name ? ctor.name : undefined;
  return name === undefined ? 'an instance of an anonymous class' : `an instance of class ${name}`;
}

/** A container whose entries the validation walk is visiting. */
interface WalkFrame {
  readonly kind: number;
  readonly value: object;
  /** Plain objects: their keys. */
  readonly keys: string[] | null;
  /** Maps and Sets. */
  readonly entries: Iterator<unknown> | null;
  i: number;
  /** A Map entry whose key was visited and whose value is next. */
  pending: { key: unknown; value: unknown } | null;
}

/**
 * Checks that `root` is data, without recursion (so at any depth): a loop over a stack of containers, visiting
 * their entries depth-first, the path kept in `w` for error messages.
 */
function walk(root: unknown, w: Walk): void {
  const frames: WalkFrame[] = [];
  visit(root, w, frames);
  while (frames.length > 0) {
    const f = frames[frames.length - 1] as WalkFrame;
    if (walkStep(f, w, frames)) continue;
    frames.pop();
    w.leave(f.value);
    if (frames.length > 0) w.pop(); // the container's own segment, pushed by its parent
  }
}

/**
 * Visits one value at the path `w` names: refuses what is not data, and pushes a frame for a container met for
 * the first time (its segment then stays on the path until the frame is done).
 */
function visit(value: unknown, w: Walk, frames: WalkFrame[]): void {
  if (typeof value !== 'object') {
    if (typeof value === 'function' || typeof value === 'symbol') w.refuse(describeNonData(value));
    return;
  }
  if (value === null) return;
  const proto: unknown = Object.getPrototypeOf(value);
  let kind: number;
  if (proto === Object.prototype || proto === null) {
    if (hasEnumerableSymbol(value)) {
      const symbols = Object.getOwnPropertySymbols(value).map(String).join(', ');
      w.refuse(`an object with symbolic keys (${symbols})`, '; use string keys, or a Map');
    }
    kind = PROP;
  } else if (proto === Array.prototype) kind = INDEX;
  else if (proto === Map.prototype) kind = MAP_KEY;
  else if (proto === Set.prototype) kind = SET_ITEM;
  else {
    leaf(value, proto, w);
    return;
  }
  if (!w.enter(value)) return;
  frames.push({
    kind,
    value,
    keys: kind === PROP ? Object.keys(value) : null,
    entries:
      kind === MAP_KEY
        ? (value as Map<unknown, unknown>).entries()
        : kind === SET_ITEM
          ? (value as Set<unknown>).values()
          : null,
    i: 0,
    pending: null,
  });
}

/** Whether an object has an enumerable symbol-keyed property (which the text could not keep). */
function hasEnumerableSymbol(value: object): boolean {
  const symbols = Object.getOwnPropertySymbols(value);
  for (let i = 0; i < symbols.length; i += 1) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbols[i] as symbol)) return true;
  }
  return false;
}

/** Checks an object that is not a container: a file reference, an error, or a built-in leaf. */
function leaf(value: object, proto: unknown, w: Walk): void {
  if (value instanceof File || value instanceof Dir) {
    w.refs ??= new Map();
    if (!w.refs.has(value)) w.refs.set(value, contentHashAt(value, w));
  } else if (value instanceof Error) {
    w.errors = true;
  } else if (!LEAF_PROTOTYPES.has(proto)) {
    const hint =
      value instanceof Blob
        ? '; for a file on disk pass flyte.io.File.from(path)'
        : '; pass its data as a plain object instead';
    w.refuse(describeNonData(value), hint);
  } else if (ArrayBuffer.isView(value) && !(value.buffer instanceof ArrayBuffer)) {
    w.refuse(
      `a view of a ${describeNonData(value.buffer).replace(/^an instance of class /, '')}`,
      '; copy it into an ArrayBuffer first',
    );
  }
}

/**
 * Visits entries of the top frame until one of them pushes a frame of its own (true), or the frame has no
 * entries left (false).
 */
function walkStep(f: WalkFrame, w: Walk, frames: WalkFrame[]): boolean {
  const depth = frames.length;
  switch (f.kind) {
    case PROP: {
      const keys = f.keys as string[];
      const record = f.value as Record<string, unknown>;
      while (f.i < keys.length) {
        const i = f.i;
        f.i += 1;
        const key = keys[i] as string;
        w.push(PROP, key);
        // Own `__proto__` keys (from JSON.parse) cannot be recreated by assignment on decode.
        if (key === '__proto__') w.refuse('an own property named __proto__');
        // Canonical order is what a key-sorted copy would list: array indices first (JavaScript forces that),
        // then the other keys sorted. Only two non-index keys out of order need the sorted copy.
        if (i > 0 && !w.unsorted && key < (keys[i - 1] as string) && !isArrayIndexKey(keys[i - 1] as string)) {
          w.unsorted = true;
        }
        visit(record[key], w, frames);
        if (frames.length !== depth) return true;
        w.pop();
      }
      return false;
    }
    case INDEX: {
      const array = f.value as unknown[];
      while (f.i < array.length) {
        const i = f.i;
        f.i += 1;
        const item = array[i];
        if (item === null || (typeof item !== 'object' && typeof item !== 'function' && typeof item !== 'symbol')) {
          continue; // the usual case, kept cheap
        }
        w.push(INDEX, i);
        visit(item, w, frames);
        if (frames.length !== depth) return true;
        w.pop();
      }
      return false;
    }
    case MAP_KEY: {
      const entries = f.entries as Iterator<[unknown, unknown]>;
      for (;;) {
        if (f.pending !== null) {
          const { key, value } = f.pending;
          f.pending = null;
          if (isPrimitive(key)) w.push(MAP_VALUE, key);
          else w.push(MAP_VALUE_AT, f.i);
          f.i += 1;
          visit(value, w, frames);
          if (frames.length !== depth) return true;
          w.pop();
        }
        const entry = entries.next();
        if (entry.done === true) return false;
        f.pending = { key: entry.value[0], value: entry.value[1] };
        w.push(MAP_KEY, f.i);
        visit(entry.value[0], w, frames);
        if (frames.length !== depth) return true;
        w.pop();
      }
    }
    default: {
      const entries = f.entries as Iterator<unknown>;
      for (;;) {
        const entry = entries.next();
        if (entry.done === true) return false;
        w.push(SET_ITEM, f.i);
        f.i += 1;
        visit(entry.value, w, frames);
        if (frames.length !== depth) return true;
        w.pop();
      }
    }
  }
}

/** The content hash of a file or directory reference met by the walk, or a validation error naming both paths. */
function contentHashAt(ref: File | Dir, w: Walk): string {
  const isFile = ref instanceof File;
  try {
    return isFile ? fileHashSync(ref.path) : dirHashSync(ref.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = `${isFile ? FILE_TYPE : DIR_TYPE}(${JSON.stringify(ref.path)})`;
    const why =
      code === 'ENOENT'
        ? `${isFile ? 'a file' : 'a directory'} that does not exist`
        : code === 'EISDIR'
          ? 'a directory (use flyte.io.Dir for directories)'
          : code === 'ENOTDIR'
            ? 'a file (use flyte.io.File for files)'
            : `a path that cannot be read (${describeError(err)})`;
    const path = w.path();
    throw new RuntimeDataValidationError(
      `expected ${isFile ? 'an existing, readable file' : 'an existing, readable directory'}; received ${what}, ${why}, at ${path}`,
      { path, cause: err },
    );
  }
}

/** Custom types of the text: file references as `[path, content hash]`, errors as flyte errors. */
function textReduce(refs: ReadonlyMap<File | Dir, string>): Reduce {
  return (v) => {
    if (v instanceof File) return [FILE_TYPE, [v.path, refs.get(v)]];
    if (v instanceof Dir) return [DIR_TYPE, [v.path, refs.get(v)]];
    if (v instanceof Error) return [ERROR_TYPE, serializeError(v)];
    return undefined;
  };
}

/**
 * Custom types of the canonical hash: a file reference counts by its content hash only, not its path; an error by
 * its code, kind and message (not its stack), so that the hash is stable.
 */
function hashReduce(refs: ReadonlyMap<File | Dir, string>): Reduce {
  return (v) => {
    if (v instanceof File) return [FILE_TYPE, refs.get(v)];
    if (v instanceof Dir) return [DIR_TYPE, refs.get(v)];
    if (v instanceof Error) {
      const { code, kind, message } = serializeError(v);
      return [ERROR_TYPE, [code, kind, message]];
    }
    return undefined;
  };
}

/** Revivers: file references come back as `File` / `Dir` of the recorded path, errors as flyte errors. */
const REVIVERS: Record<string, Revive> = {
  [FILE_TYPE]: (v) => new File(refPath(v, FILE_TYPE)),
  [DIR_TYPE]: (v) => new Dir(refPath(v, DIR_TYPE)),
  [ERROR_TYPE]: (v) => fromSerialized(v as SerializedError),
};

function refPath(payload: unknown, type: string): string {
  if (!Array.isArray(payload) || typeof payload[0] !== 'string' || payload[0] === '') {
    throw new RuntimeDataValidationError(
      `expected ${type} as [path, hash]; received ${preview(JSON.stringify(payload) ?? '')}`,
    );
  }
  return payload[0];
}

/**
 * Whether `value` is a plain array whose items are all primitives that devalue encodes as they are (`null`,
 * `undefined`, booleans, numbers, strings, BigInts): the validation walk could find nothing to refuse in it.
 */
export function isFlatPrimitiveArray(value: unknown): value is unknown[] {
  if (!Array.isArray(value) || Object.getPrototypeOf(value) !== Array.prototype) return false;
  for (let i = 0; i < value.length; i += 1) {
    const item: unknown = value[i];
    if (item !== null && (typeof item === 'object' || typeof item === 'function' || typeof item === 'symbol')) {
      return false;
    }
  }
  return true;
}

/** {@link encodeValue}, plus whether `hash` is the SHA-256 of `text` itself (then offloading can reuse it). */
function encodeInternal(value: unknown, path: string): { text: string; hash: string; hashIsTextHash: boolean } {
  if (isFlatPrimitiveArray(value)) {
    // The usual task arguments, e.g. `[3, 'a']`: nothing to refuse, sort or reference, so no walk.
    const text = writeText(value);
    return { text, hash: sha256Hex(text), hashIsTextHash: true };
  }
  let unsorted = false;
  let refs: Map<File | Dir, string> | null = null;
  let errors = false;
  if (typeof value === 'object' || typeof value === 'function' || typeof value === 'symbol') {
    const w = new Walk(path);
    walk(value, w);
    unsorted = w.unsorted;
    refs = w.refs;
    errors = w.errors;
  }
  if (refs !== null || errors) {
    // File references: the text keeps their paths, the hash only their content. Errors: see hashReduce.
    const known = refs ?? new Map<File | Dir, string>();
    const text = writeText(value, { reduce: textReduce(known) });
    const hash = sha256Hex(writeText(value, { reduce: hashReduce(known), sortKeys: unsorted }));
    return { text, hash, hashIsTextHash: false };
  }
  const text = writeText(value);
  if (!unsorted) return { text, hash: sha256Hex(text), hashIsTextHash: true };
  return { text, hash: sha256Hex(writeText(value, { sortKeys: true })), hashIsTextHash: false };
}

/**
 * Encodes a value that crosses an action boundary and computes its canonical hash.
 *
 * Supported: JSON values, `undefined`, `NaN`, `±Infinity`, `-0`, `BigInt`, `Date`, `Map`, `Set`, typed arrays
 * (a Node `Buffer` comes back as a `Uint8Array`), `DataView`, `ArrayBuffer`, null-prototype objects, sparse
 * arrays, nested to any depth, with repeated (not cyclic) references, which decode as repeated references. Non-index properties of arrays are not kept. `flyte.io.File` and `flyte.io.Dir` are encoded as
 * references (path and content hash), their content hashed synchronously here.
 *
 * The hash does not depend on the key order of plain objects; it does depend on the order of arrays, `Map`s and
 * `Set`s, on types, and on which references are repeated (the decoded graphs differ). A `File` or `Dir` counts
 * by its content hash, not its path.
 *
 * @param path - the root label used in error paths, e.g. `'args'` or `'output'`.
 * @throws RuntimeDataValidationError for a function, a symbol, a class instance (anything but a plain object,
 *   an array or a built-in listed above), a cycle, a value nested too deeply, or a `File` / `Dir` whose path is
 *   missing or unreadable; `message` and `path` name the place, e.g. `args[1].user["first name"]`.
 * @example
 * ```ts
 * encodeValue({ a: 1, b: 2 }, 'args').hash === encodeValue({ b: 2, a: 1 }, 'args').hash; // true
 * encodeValue([() => 1], 'args'); // throws: "... received a function at args[0]"
 * ```
 */
export function encodeValue(value: unknown, path: string): EncodedValue {
  const { text, hash } = encodeInternal(value, path);
  return { text, hash };
}

/**
 * Decodes the text made by {@link encodeValue}.
 *
 * @throws RuntimeDataValidationError when the text is not devalue output, or is an offload marker (decode those
 *   with the {@link ValueCodec} of the store that wrote them).
 * @example
 * ```ts
 * decodeValue(encodeValue(new Map([[1, 2n]]), 'output').text); // Map { 1 => 2n }
 * ```
 */
export function decodeValue(text: string): unknown {
  if (text.charCodeAt(0) === AT) {
    throw new RuntimeDataValidationError(
      `expected devalue text; received an offload marker (${text.slice(0, 100)}): decode it with a ValueCodec that has the data directory`,
    );
  }
  try {
    return readText(text, REVIVERS);
  } catch (err) {
    if (err instanceof RuntimeDataValidationError) throw err;
    throw new RuntimeDataValidationError(
      `expected devalue text; received text that does not parse (${describeError(err)}): ${preview(text)}`,
      { cause: err },
    );
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function preview(text: string): string {
  return text.length > 80 ? `${JSON.stringify(text.slice(0, 80))}...` : JSON.stringify(text);
}

/**
 * Encodes and decodes values for a store, offloading large ones to its data directory.
 *
 * Files are content-addressed (`<dataDir>/values/<sha256 of the text>.devalue`), written once through a
 * temporary file and a rename, so concurrent writers of the same value are harmless. File access is
 * synchronous: it happens only for values over the inline limit.
 *
 * @example
 * ```ts
 * const codec = new ValueCodec({ dataDir: store.dataDir });
 * const input = codec.encode(args, 'args', config.maxInlineIoBytes); // input.text may be a marker
 * const back = codec.decode(input.text);
 * ```
 */
export class ValueCodec {
  /** Where large values are written; `undefined` when they are refused instead. */
  readonly dataDir: string | undefined;

  constructor(options: ValueCodecOptions) {
    this.dataDir = options.dataDir;
  }

  /**
   * Encodes a value as {@link encodeValue} does. When the text is longer than `maxInlineBytes` UTF-8 bytes, it is
   * written to the data directory and `text` is a marker that {@link ValueCodec.decode} resolves; `hash` is the
   * value's canonical hash either way, and `bytes` the size of the full text.
   *
   * @param path - the root label used in error paths, e.g. `'args'` or `'output'`.
   * @param maxInlineBytes - the largest text kept inline (`maxInlineIoBytes`); `Infinity` never offloads.
   * @throws RuntimeDataValidationError as {@link encodeValue} does.
   * @throws InlineIOMaxBytesBreached when the text is over the limit and there is no data directory.
   */
  encode(value: unknown, path: string, maxInlineBytes: number): StoredValue {
    const { text, hash, hashIsTextHash } = encodeInternal(value, path);
    const bytes = Buffer.byteLength(text, 'utf8'); // ~30 ns for a short text: cheaper than avoiding it
    if (bytes <= maxInlineBytes) return { text, hash, bytes };
    if (this.dataDir === undefined) {
      throw new InlineIOMaxBytesBreached(
        `${path}: expected an encoded value of at most ${maxInlineBytes} bytes (maxInlineIoBytes); received ${bytes} bytes, ` +
          'and this store has no data directory to offload it to (use the sqlite store or raise maxInlineIoBytes)',
      );
    }
    const sha256 = hashIsTextHash ? hash : sha256Hex(text);
    this.#write(sha256, text);
    return { text: offloadMarker(sha256, bytes), hash, bytes };
  }

  /**
   * Decodes text made by {@link ValueCodec.encode} (or {@link encodeValue}), reading offloaded values back.
   *
   * @throws RuntimeDataValidationError when an offloaded value's file is missing or does not match its marker,
   *   when there is no data directory to read it from, or when the text does not parse.
   */
  decode(text: string): unknown {
    if (text.charCodeAt(0) !== AT) return decodeValue(text);
    const ref = parseOffloadMarker(text);
    if (ref === undefined) {
      throw new RuntimeDataValidationError(`expected devalue text or an offload marker; received ${preview(text)}`);
    }
    if (this.dataDir === undefined) {
      throw new RuntimeDataValidationError(
        `expected inline devalue text; received an offloaded value (${text}), and this store has no data directory`,
      );
    }
    const file = this.#fileOf(ref.sha256);
    let full: string;
    try {
      full = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RuntimeDataValidationError(`offloaded value file ${file} is missing (marker ${text})`, {
          cause: err,
        });
      }
      throw err;
    }
    const actual = sha256Hex(full);
    if (actual !== ref.sha256) {
      throw new RuntimeDataValidationError(
        `offloaded value file ${file} is corrupt: expected content with SHA-256 ${ref.sha256}; received ${actual}`,
      );
    }
    return decodeValue(full);
  }

  #fileOf(sha256: string): string {
    return join(this.dataDir as string, 'values', `${sha256}.devalue`);
  }

  #write(sha256: string, text: string): void {
    const file = this.#fileOf(sha256);
    if (existsSync(file)) return; // content-addressed: the same name means the same text
    mkdirSync(join(this.dataDir as string, 'values'), { recursive: true });
    const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(temp, text, { encoding: 'utf8', flag: 'wx' });
      renameSync(temp, file);
    } catch (err) {
      try {
        unlinkSync(temp);
      } catch {
        // The temporary file may never have been created; the original error is the one to report.
      }
      throw err;
    }
  }
}
