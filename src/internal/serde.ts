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
 * only**, so the same bytes under another path hash the same. A reference made by `File.fromLocal` /
 * `Dir.fromLocal`, or decoded from a store, carries its hash, and encoding it reads nothing; one made by
 * `File.from(path)` is hashed synchronously during the validation walk (encoding must stay synchronous; memoized
 * per file version, see `content-hash.ts`). A missing or unreadable file is a {@link RuntimeDataValidationError}
 * naming the argument and the file. The classes live in `io-values.ts`: this module does not import the SDK.
 *
 * {@link ValueCodec} adds offloading through an asynchronous {@link BlobStore}: text longer than the inline limit
 * is written once, content-addressed by its SHA-256, and the store keeps a short marker (see
 * {@link parseOffloadMarker}); with a shared blob store, file contents are uploaded too. Writes start during the
 * (synchronous) encode and are awaited through {@link StoredValue.written}; markers are read back with the
 * asynchronous {@link ValueCodec.load}.
 *
 * @example
 * ```ts
 * const codec = new ValueCodec({ blobs: new DirBlobStore('/tmp/flyte-data') });
 * const { text, hash, bytes, written } = codec.encode([{ id: 1, tags: new Set(['a']) }], 'args', 10_000);
 * await written;
 * const args = await codec.load(text); // [{ id: 1, tags: Set { 'a' } }]
 * ```
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  InlineIOMaxBytesBreached,
  RuntimeDataValidationError,
  fromSerialized,
  serializeError,
  type SerializedError,
} from '../errors.js';
import { BlobCorruptError, BlobNotFoundError, sha256OfBytes, type BlobStore } from '../store/blob-store.js';
import { dirManifestSync, fileHashSync, manifestHash, manifestText, type DirManifest } from './content-hash.js';
import { Dir, File, refState, withRefState } from './io-values.js';
import { isArrayIndexKey, readText, writeFlatText, writeText, type Reduce, type Revive } from './devalue-format.js';
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
  /** The devalue text, or an offload marker when the text goes to the blob store. */
  readonly text: string;
  /** UTF-8 size of the full devalue text, offloaded or not. */
  readonly bytes: number;
  /** The full devalue text (the same as `text` when it is inline). */
  readonly full: string;
  /**
   * Settles once every blob the value refers to (its offloaded text, uploaded file contents) is durable;
   * `undefined` when nothing is being written. Rejects with the write's error (for a file that changed after it
   * was hashed, a {@link RuntimeDataValidationError}).
   */
  readonly written: Promise<void> | undefined;
}

/** Options of {@link ValueCodec}. */
export interface ValueCodecOptions {
  /**
   * Where large values go, and (when it is not `local`) the content of files and directories. `undefined` for
   * stores that keep values inline only (the memory store): then a value over the inline limit is refused.
   */
  readonly blobs: BlobStore | undefined;
}

/** Where an offloaded value lives, as read from its marker by {@link parseOffloadMarker}. */
export interface OffloadRef {
  /** SHA-256 (hex) of the devalue text: the value's key in the blob store. */
  readonly sha256: string;
  /** UTF-8 size of the offloaded text. */
  readonly bytes: number;
}

const EXPECTED = 'expected plain data (JSON values, undefined, Date, BigInt, Map, Set, typed arrays, ArrayBuffer)';

/** What the validation walk learned about a file or directory reference. */
interface RefContent {
  /** Its content hash. */
  readonly hash: string;
  /** A directory's manifest, when the walk read it (or the reference carried it). */
  readonly entries: DirManifest | undefined;
  /** Whether its bytes are already in a shared store (a reference decoded from one). */
  readonly stored: boolean;
}

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
  /** The `flyte.io.File` / `Dir` references met, with their content; `null` while there are none. */
  refs: Map<File | Dir, RefContent> | null = null;
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

/**
 * The content of a file or directory reference met by the walk: the hash it carries (`File.fromLocal`, or decoded
 * from a store), else its content hashed synchronously (memoized per file version); or a validation error naming
 * both paths.
 */
function contentHashAt(ref: File | Dir, w: Walk): RefContent {
  const known = refState(ref);
  if (known !== undefined) return { hash: known.hash, entries: known.entries, stored: known.blobs !== undefined };
  const isFile = ref instanceof File;
  try {
    if (isFile) return { hash: fileHashSync(ref.path), entries: undefined, stored: false };
    const entries = dirManifestSync(ref.path);
    return { hash: manifestHash(entries), entries, stored: false };
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
function textReduce(refs: ReadonlyMap<File | Dir, RefContent>): Reduce {
  return (v) => {
    if (v instanceof File) return [FILE_TYPE, [v.path, refs.get(v)?.hash]];
    if (v instanceof Dir) return [DIR_TYPE, [v.path, refs.get(v)?.hash]];
    if (v instanceof Error) return [ERROR_TYPE, serializeError(v)];
    return undefined;
  };
}

/**
 * Custom types of the canonical hash: a file reference counts by its content hash only, not its path; an error by
 * its code, kind and message (not its stack), so that the hash is stable.
 */
function hashReduce(refs: ReadonlyMap<File | Dir, RefContent>): Reduce {
  return (v) => {
    if (v instanceof File) return [FILE_TYPE, refs.get(v)?.hash];
    if (v instanceof Dir) return [DIR_TYPE, refs.get(v)?.hash];
    if (v instanceof Error) {
      const { code, kind, message } = serializeError(v);
      return [ERROR_TYPE, [code, kind, message]];
    }
    return undefined;
  };
}

/**
 * Revivers: file references come back as `File` / `Dir` of the recorded path, errors as flyte errors. With a
 * shared blob store (`blobs.local` false), a reference also carries its recorded hash and the store holding its
 * bytes, so that it reads them where its path does not hold them.
 */
function revivers(blobs: BlobStore | undefined): Record<string, Revive> {
  const shared = blobs !== undefined && !blobs.local ? blobs : undefined;
  const revive = <T extends File | Dir>(ref: T, payload: unknown): T => {
    const hash = (payload as unknown[])[1];
    return shared !== undefined && typeof hash === 'string' ? withRefState(ref, { hash, blobs: shared }) : ref;
  };
  return {
    [FILE_TYPE]: (v) => revive(new File(refPath(v, FILE_TYPE)), v),
    [DIR_TYPE]: (v) => revive(new Dir(refPath(v, DIR_TYPE)), v),
    [ERROR_TYPE]: (v) => fromSerialized(v as SerializedError),
  };
}

const REVIVERS = revivers(undefined);

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

/** {@link encodeValue}'s result, before its hash is computed when it is the SHA-256 of the text itself. */
interface Encoded {
  readonly text: string;
  /** The canonical hash; `undefined` when it is the SHA-256 of `text` itself (computed once someone asks). */
  readonly hash: string | undefined;
  /** The references met. */
  readonly refs: ReadonlyMap<File | Dir, RefContent> | null;
}

/** Whether `value` is a primitive that the text can hold (not a symbol). */
function isDataPrimitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function' && typeof value !== 'symbol');
}

/** {@link encodeValue}, the hash left `undefined` when it is the SHA-256 of the text (see {@link Encoded}). */
function encodeInternal(value: unknown, path: string): Encoded {
  if (isDataPrimitive(value) || isFlatPrimitiveArray(value)) {
    // The usual task arguments and outputs, e.g. `[3, 'a']` and `6`: nothing to refuse, sort or reference.
    return { text: writeFlatText(value) ?? writeText(value), hash: undefined, refs: null };
  }
  let unsorted = false;
  let refs: Map<File | Dir, RefContent> | null = null;
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
    const known = refs ?? new Map<File | Dir, RefContent>();
    const text = writeText(value, { reduce: textReduce(known) });
    const hash = sha256Hex(writeText(value, { reduce: hashReduce(known), sortKeys: unsorted }));
    return { text, hash, refs };
  }
  const text = writeText(value);
  if (!unsorted) return { text, hash: undefined, refs: null };
  return { text, hash: sha256Hex(writeText(value, { sortKeys: true })), refs: null };
}

/**
 * Encodes a value that crosses an action boundary and computes its canonical hash.
 *
 * Supported: JSON values, `undefined`, `NaN`, `±Infinity`, `-0`, `BigInt`, `Date`, `Map`, `Set`, typed arrays
 * (a Node `Buffer` comes back as a `Uint8Array`), `DataView`, `ArrayBuffer`, null-prototype objects, sparse
 * arrays, nested to any depth, with repeated (not cyclic) references, which decode as repeated references.
 * Non-index properties of arrays are not kept. `flyte.io.File` and `flyte.io.Dir` are encoded as references (path
 * and content hash): the hash they carry (`File.fromLocal`, or decoded from a store), else their content hashed
 * synchronously here.
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
  return { text, hash: hash ?? sha256Hex(text) };
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

/** At most this many keys are remembered as durable; past it the set starts again (a put then checks the store). */
const MAX_DURABLE_KEYS = 100_000;

/**
 * Encodes and decodes values for a store, offloading large ones to its {@link BlobStore}.
 *
 * Encoding stays synchronous (the controller derives a child's name from its inputs' hash before the call
 * returns): a value over the inline limit gets a marker at once, and its blob write **starts** there;
 * {@link StoredValue.written} settles when it is durable. With a shared blob store (`local` false: Postgres), the
 * content of every `File` / `Dir` met is uploaded the same way (read asynchronously, checked against the hash
 * taken, stored once per content). Callers must await `written` before they write a record that refers to the
 * value. Decoding inline text stays synchronous ({@link ValueCodec.decode}); a marker is read back with
 * {@link ValueCodec.load}.
 *
 * @example
 * ```ts
 * const codec = new ValueCodec({ blobs: new DirBlobStore('.flyte') });
 * const input = codec.encode(args, 'args', config.maxInlineIoBytes); // input.text may be a marker
 * await input.written; // durable before a record refers to it
 * const back = await codec.load(input.text);
 * ```
 */
export class ValueCodec {
  /** Where large values (and, when it is shared, file contents) are written; `undefined`: they are refused. */
  readonly blobs: BlobStore | undefined;
  readonly #revivers: Record<string, Revive>;
  /** Blob writes in flight, by key. */
  readonly #writes = new Map<string, Promise<void>>();
  /** Full texts of offloaded values whose write is in flight, by key: a fresh marker decodes synchronously. */
  readonly #texts = new Map<string, string>();
  /** Encoded texts whose blobs are still being written, with the promise of their writes. */
  readonly #pendingTexts = new Map<string, Promise<void>>();
  /** Keys this codec wrote or saw written. */
  #durable = new Set<string>();

  constructor(options: ValueCodecOptions) {
    this.blobs = options.blobs;
    this.#revivers = revivers(options.blobs);
  }

  /**
   * Encodes a value as {@link encodeValue} does. When the text is longer than `maxInlineBytes` UTF-8 bytes, its
   * write to the blob store starts and `text` is a marker that {@link ValueCodec.load} resolves; `hash` is the
   * value's canonical hash either way, `bytes` the size of the full text, and `written` settles once the blobs it
   * refers to are durable.
   *
   * @param path - the root label used in error paths, e.g. `'args'` or `'output'`.
   * @param maxInlineBytes - the largest text kept inline (`maxInlineIoBytes`); `Infinity` never offloads.
   * @throws RuntimeDataValidationError as {@link encodeValue} does.
   * @throws InlineIOMaxBytesBreached when the text is over the limit and there is no blob store.
   */
  encode(value: unknown, path: string, maxInlineBytes: number): StoredValue {
    const { text, hash, refs } = encodeInternal(value, path);
    const bytes = Buffer.byteLength(text, 'utf8'); // ~30 ns for a short text: cheaper than avoiding it
    const uploads = refs === null || this.blobs === undefined || this.blobs.local ? undefined : this.#upload(refs, path);
    if (bytes <= maxInlineBytes) return this.#stored(text, hash, bytes, text, uploads);
    if (this.blobs === undefined) {
      throw new InlineIOMaxBytesBreached(
        `${path}: expected an encoded value of at most ${maxInlineBytes} bytes (maxInlineIoBytes); received ${bytes} bytes, ` +
          'and this store has no blob store to offload it to (use the sqlite or postgres store, or raise maxInlineIoBytes)',
      );
    }
    const sha256 = sha256Hex(text);
    const write = this.#put(sha256, text, () => text);
    if (write !== undefined) {
      this.#texts.set(sha256, text);
      void write.finally(() => this.#texts.delete(sha256)).catch(() => undefined); // reported through `written`
    }
    return this.#stored(offloadMarker(sha256, bytes), hash ?? sha256, bytes, text, all(write, uploads));
  }

  /**
   * Whether `text` (as {@link ValueCodec.encode} made it) must be read with {@link ValueCodec.load}: it is an
   * offload marker, or blobs it refers to are still being written.
   */
  needsLoad(text: string): boolean {
    return text.charCodeAt(0) === AT || (this.#pendingTexts.size > 0 && this.#pendingTexts.has(text));
  }

  /**
   * Decodes inline text made by {@link ValueCodec.encode} (or {@link encodeValue}), synchronously. A marker
   * decodes here only while its value's write is in flight in this codec; otherwise use {@link ValueCodec.load}.
   *
   * @throws RuntimeDataValidationError when the text does not parse, or is a marker this codec cannot resolve
   *   synchronously.
   */
  decode(text: string): unknown {
    if (text.charCodeAt(0) !== AT) return this.#decodeText(text);
    const ref = this.#marker(text);
    const full = this.#texts.get(ref.sha256);
    if (full === undefined) {
      throw new RuntimeDataValidationError(
        `expected inline devalue text; received an offloaded value (${text}): read it with ValueCodec.load()`,
      );
    }
    return this.#decodeText(full);
  }

  /**
   * Decodes text made by {@link ValueCodec.encode}, reading an offloaded value back from the blob store. Waits for
   * the value's own writes when they are in flight in this codec (so a value is never read before it is durable).
   *
   * @throws RuntimeDataValidationError (as a rejection) when an offloaded value is missing from the blob store or
   *   does not match its marker, when there is no blob store, when the text does not parse, or when a write it
   *   waited for failed.
   */
  async load(text: string): Promise<unknown> {
    const pending = this.#pendingTexts.get(text);
    if (text.charCodeAt(0) !== AT) {
      if (pending !== undefined) await pending;
      return this.#decodeText(text);
    }
    const ref = this.#marker(text);
    const full = this.#texts.get(ref.sha256);
    if (pending !== undefined) await pending;
    if (full !== undefined) return this.#decodeText(full);
    const blobs = this.blobs;
    if (blobs === undefined) {
      throw new RuntimeDataValidationError(
        `expected inline devalue text; received an offloaded value (${text}), and this store has no blob store`,
      );
    }
    let bytes: Buffer;
    try {
      bytes = await blobs.get(ref.sha256);
    } catch (err) {
      if (err instanceof BlobNotFoundError) {
        throw new RuntimeDataValidationError(
          `offloaded value ${ref.sha256} is missing from ${blobs.description} (marker ${text}): ${err.message}`,
          { cause: err },
        );
      }
      if (err instanceof BlobCorruptError) {
        throw new RuntimeDataValidationError(`offloaded value (marker ${text}): ${err.message}`, { cause: err });
      }
      throw err;
    }
    return this.#decodeText(bytes.toString('utf8'));
  }

  /** Settles once every blob write started so far has settled (never rejects: failures reach `written`). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#writes.values()]);
  }

  #decodeText(text: string): unknown {
    if (this.blobs === undefined || this.blobs.local) return decodeValue(text);
    try {
      return readText(text, this.#revivers);
    } catch (err) {
      if (err instanceof RuntimeDataValidationError) throw err;
      throw new RuntimeDataValidationError(
        `expected devalue text; received text that does not parse (${describeError(err)}): ${preview(text)}`,
        { cause: err },
      );
    }
  }

  #marker(text: string): OffloadRef {
    const ref = parseOffloadMarker(text);
    if (ref === undefined) {
      throw new RuntimeDataValidationError(`expected devalue text or an offload marker; received ${preview(text)}`);
    }
    return ref;
  }

  #stored(
    text: string,
    hash: string | undefined,
    bytes: number,
    full: string,
    written: Promise<void> | undefined,
  ): StoredValue {
    if (written !== undefined) {
      this.#pendingTexts.set(text, written);
      const forget = (): void => {
        if (this.#pendingTexts.get(text) === written) this.#pendingTexts.delete(text);
      };
      written.then(forget, forget);
    }
    return new StoredText(text, hash, bytes, full, written);
  }

  /**
   * Starts storing the blob `key` (its bytes made by `data`) unless it is known durable; returns the write in
   * flight, or `undefined` when there is nothing to wait for.
   */
  #put(key: string, what: string, data: () => string | Uint8Array | Promise<string | Uint8Array>): Promise<void> | undefined {
    if (this.#durable.has(key)) return undefined;
    const inflight = this.#writes.get(key);
    if (inflight !== undefined) return inflight;
    const blobs = this.blobs as BlobStore;
    const write = (async () => {
      const bytes = await data();
      const stored = await blobs.put(bytes);
      if (stored !== key) {
        throw new RuntimeDataValidationError(`${what}: expected content with SHA-256 ${key}; received ${stored}`);
      }
      if (this.#durable.size >= MAX_DURABLE_KEYS) this.#durable = new Set();
      this.#durable.add(key);
    })();
    this.#writes.set(key, write);
    const forget = (): void => {
      this.#writes.delete(key);
    };
    write.then(forget, forget);
    return write;
  }

  /** Starts uploading the content of the files and directories met (a shared blob store). */
  #upload(refs: ReadonlyMap<File | Dir, RefContent>, path: string): Promise<void> | undefined {
    const writes: Promise<void>[] = [];
    for (const [ref, content] of refs) {
      if (content.stored) continue; // decoded from the store: its bytes are there
      if (ref instanceof File) {
        const w = this.#putFile(ref.path, content.hash, path);
        if (w !== undefined) writes.push(w);
        continue;
      }
      const entries = content.entries ?? dirManifestSync(ref.path);
      for (const [relative, hash] of entries) {
        const w = this.#putFile(join(ref.path, relative), hash, path);
        if (w !== undefined) writes.push(w);
      }
      const manifest = this.#put(content.hash, `${DIR_TYPE}(${JSON.stringify(ref.path)})`, () => manifestText(entries));
      if (manifest !== undefined) writes.push(manifest);
    }
    return writes.length === 0 ? undefined : all(...writes);
  }

  #putFile(file: string, hash: string, path: string): Promise<void> | undefined {
    const what = `${path}: ${FILE_TYPE}(${JSON.stringify(file)})`;
    return this.#put(hash, what, async () => {
      const bytes = await readFile(file).catch((err: unknown) => {
        throw new RuntimeDataValidationError(
          `${what}: expected a readable file to upload to ${this.blobs?.description ?? 'the blob store'}; received ${describeError(err)}`,
          { path, cause: err },
        );
      });
      const actual = sha256OfBytes(bytes);
      if (actual !== hash) {
        throw new RuntimeDataValidationError(
          `${what}: expected the content hashed when it crossed the boundary (SHA-256 ${hash}); received content ` +
            `with SHA-256 ${actual}: the file changed meanwhile`,
          { path },
        );
      }
      return bytes;
    });
  }
}

/**
 * A {@link StoredValue} whose hash, when it is the SHA-256 of the full text, is computed when first read: the
 * inputs' hash names an action, an output's is seldom asked for (one SHA-256 per action saved).
 */
class StoredText implements StoredValue {
  #hash: string | undefined;

  constructor(
    readonly text: string,
    hash: string | undefined,
    readonly bytes: number,
    readonly full: string,
    readonly written: Promise<void> | undefined,
  ) {
    this.#hash = hash;
  }

  get hash(): string {
    return (this.#hash ??= sha256Hex(this.full));
  }
}

/** One promise for several writes (`undefined` entries are none); `undefined` when there are none. */
function all(...writes: (Promise<void> | undefined)[]): Promise<void> | undefined {
  const some = writes.filter((w): w is Promise<void> => w !== undefined);
  if (some.length === 0) return undefined;
  const one = some.length === 1 ? (some[0] as Promise<void>) : Promise.all(some).then(() => undefined);
  // Marked handled: a caller that drops `written` (a transport encoding) must not crash the process.
  one.catch(() => undefined);
  return one;
}
