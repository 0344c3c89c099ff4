/**
 * [devalue](https://github.com/sveltejs/devalue)'s text format, written and read without recursion, so that a value
 * may be nested to any depth (devalue's own `stringify` and `parse` recurse once per level and overflow the stack
 * at about 1 500 levels).
 *
 * The format: a JSON array whose entry 0 is the root and whose other entries are the values it refers to, by
 * index, in the order a depth-first walk meets them; negative numbers stand for `undefined` (-1), an array hole
 * (-2), `NaN` (-3), `Infinity` (-4), `-Infinity` (-5), `-0` (-6) and a sparse array (-7). A root that is one of
 * those is the bare number. {@link writeText} writes exactly the text devalue's `stringify` writes, for every value
 * the validation walk in `serde.ts` accepts, with one deliberate difference: a lone surrogate (half of a UTF-16
 * pair, alone) is escaped as `\uXXXX`, which devalue keeps raw. Raw, it makes text that is not valid UTF-16, which
 * SQLite (UTF-8) and files store as U+FFFD, losing it; escaped, the text is plain ASCII there, and any JSON parser,
 * devalue's `parse` too, reads it back as the lone surrogate. Text without lone surrogates is unchanged, byte for
 * byte. {@link readText} reads what devalue's `stringify` writes.
 *
 * @example
 * ```ts
 * writeText([new Map([['k', 1n]]), 'x\ud800y']); // '[[1,4],["Map",2,3],"k",["BigInt","1"],"x\\ud800y"]'
 * readText('[[1],"a"]', {}); // ['a']
 * ```
 * @module
 */

const UNDEFINED = -1;
const HOLE = -2;
const NAN = -3;
const POSITIVE_INFINITY = -4;
const NEGATIVE_INFINITY = -5;
const NEGATIVE_ZERO = -6;
const SPARSE = -7;

/** The largest array length, and the largest array index (one less). */
const MAX_ARRAY_LENGTH = 2 ** 32 - 1;

/**
 * Turns an object that is not plain data (a `File`, an `Error`) into a custom type: its name and a payload, which
 * is encoded in its place; `undefined` when the object has no custom type.
 */
export type Reduce = (value: object) => readonly [type: string, payload: unknown] | undefined;

/** Options of {@link writeText}. */
export interface WriteOptions {
  /** Custom types, asked about objects that are not plain objects, arrays, `Map`s, `Set`s or built-in leaves. */
  readonly reduce?: Reduce;
  /**
   * Write the keys of plain objects in canonical order (array indices first, then the other keys sorted), as
   * devalue would write a copy of the value whose objects were built with sorted keys. @default false
   */
  readonly sortKeys?: boolean;
}

/** devalue's names for the typed arrays and `DataView`, by prototype. A Node `Buffer` is the `Uint8Array` it is. */
const VIEW_TAGS = new Map<unknown, string>();
for (const tag of [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Float16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'DataView',
]) {
  const ctor = (globalThis as Record<string, unknown>)[tag];
  if (typeof ctor === 'function') VIEW_TAGS.set((ctor as { prototype: unknown }).prototype, tag);
}
VIEW_TAGS.set(Buffer.prototype, 'Uint8Array');

/** Characters that devalue escapes in strings and `JSON.stringify` does not. */
const EXTRA_ESCAPE = /[<\u2028\u2029]/;
const EXTRA_ESCAPES = /[<\u2028\u2029]/g;
const EXTRA_ESCAPE_TEXT: Readonly<Record<string, string>> = {
  '<': '\\u003C',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/**
 * A string as devalue quotes it: what `JSON.stringify` writes (which escapes lone surrogates, control characters,
 * `"` and `\`), with `<`, U+2028 and U+2029 escaped too.
 */
function quote(text: string): string {
  const json = JSON.stringify(text);
  return EXTRA_ESCAPE.test(json) ? json.replace(EXTRA_ESCAPES, (c) => EXTRA_ESCAPE_TEXT[c] as string) : json;
}

/** Whether `key` is an array index, which JavaScript lists first, in numeric order, among an object's keys. */
export function isArrayIndexKey(key: string): boolean {
  const n = Number(key);
  return n >>> 0 === n && n !== MAX_ARRAY_LENGTH && String(n) === key;
}

/** An object's keys in canonical order: the array indices JavaScript lists first, then the others sorted. */
function canonicalKeys(keys: string[]): string[] {
  let indices = 0;
  while (indices < keys.length && isArrayIndexKey(keys[indices] as string)) indices += 1;
  if (keys.length - indices < 2) return keys;
  return keys.slice(0, indices).concat(keys.slice(indices).sort());
}

// Kinds of the containers being written or read.
const PLAIN = 0;
const NULL_PROTO = 1;
const ARRAY = 2;
const MAP = 3;
const SET = 4;
const SPARSE_ARRAY = 5; // read only: the writer decides at the first hole
const CUSTOM = 6; // read only: the writer needs no frame for a custom type

// Ways of writing an array, decided at its first hole (as devalue does).
const NO_HOLE_YET = 0;
const WITH_HOLES = 1;
const AS_SPARSE = 2;

/** A container whose entries are being written. */
interface WriteFrame {
  readonly index: number;
  readonly kind: number;
  readonly value: object;
  text: string;
  /** The next entry (array slot, key, or populated index in sparse mode). */
  i: number;
  /** Plain and null-prototype objects: their keys; sparse arrays: their populated indices. */
  keys: string[] | null;
  /** Maps and Sets. */
  readonly entries: Iterator<unknown> | null;
  /** A Map entry whose key is written and whose value is next. */
  pending: { value: unknown } | null;
  /** Arrays: how holes are written. */
  mode: number;
}

/**
 * The devalue text of `value`: what devalue's `stringify(value, reducers)` returns, for any depth, with lone
 * surrogates escaped (see the module comment).
 *
 * The value must have passed the validation walk: a function, a symbol or an object that is neither data nor a
 * custom type throws a TypeError here.
 */
export function writeText(value: unknown, options: WriteOptions = {}): string {
  return new Writer(options.reduce, options.sortKeys === true).write(value);
}

/** The longest array {@link writeFlatText} writes; a longer one takes the general writer. */
const MAX_FLAT_ITEMS = 16;

/**
 * {@link writeText} of a primitive, or of a plain array of at most 16 primitives without holes: a task's usual
 * arguments and outputs (`[3, 'a']`, `6`), written without the general writer's state. The text is the same,
 * byte for byte, repeated values included (devalue writes a value met again as the index it already has).
 * Returns `undefined` for anything else (an object, a longer array, an array with a hole): write it with
 * {@link writeText}.
 *
 * @example
 * ```ts
 * writeFlatText([3, 'a', 3]); // '[[1,2,1],3,"a"]'
 * writeFlatText(undefined);   // '-1'
 * writeFlatText([{}]);        // undefined
 * ```
 */
export function writeFlatText(value: unknown): string | undefined {
  if (!Array.isArray(value)) {
    const special = specialIndex(value);
    if (special !== 0) return String(special);
    const text = primitiveText(value);
    return text === undefined ? undefined : `[${text}]`;
  }
  const length = value.length;
  if (length > MAX_FLAT_ITEMS || Object.getPrototypeOf(value) !== Array.prototype) return undefined;
  let root = '[';
  let rest = '';
  // Values written so far, at index i + 1 (the root is 0): few enough to search in order.
  const seen: unknown[] = [];
  for (let i = 0; i < length; i += 1) {
    if (!Object.hasOwn(value, i)) return undefined;
    const item: unknown = value[i];
    let index = specialIndex(item);
    if (index === 0) {
      // Strict equality is the writer's Map lookup here: NaN and -0 are special, so never looked up.
      const known = seen.indexOf(item);
      if (known >= 0) index = known + 1;
      else {
        const text = primitiveText(item);
        if (text === undefined) return undefined;
        seen.push(item);
        index = seen.length;
        rest += `,${text}`;
      }
    }
    root += i === 0 ? `${index}` : `,${index}`;
  }
  return `[${root}]${rest}]`;
}

/** The negative index devalue writes for `undefined`, `NaN`, `±Infinity` and `-0`; `0` for any other value. */
function specialIndex(thing: unknown): number {
  if (thing === undefined) return UNDEFINED;
  if (typeof thing === 'number') {
    if (thing !== thing) return NAN;
    if (thing === Infinity) return POSITIVE_INFINITY;
    if (thing === -Infinity) return NEGATIVE_INFINITY;
    if (thing === 0 && 1 / thing < 0) return NEGATIVE_ZERO;
  }
  return 0;
}

/** The text of a primitive that is not special (see {@link specialIndex}); `undefined` for anything else. */
function primitiveText(thing: unknown): string | undefined {
  switch (typeof thing) {
    case 'string':
      return quote(thing);
    case 'number':
      return String(thing);
    case 'boolean':
      return thing ? 'true' : 'false';
    case 'bigint':
      return `["BigInt","${thing}"]`;
    default:
      return thing === null ? 'null' : undefined;
  }
}

/** The state of one {@link writeText}: a class, so that nothing is allocated per call but the state itself. */
class Writer {
  readonly #texts: string[] = [];
  readonly #indexes = new Map<unknown, number>();
  readonly #frames: WriteFrame[] = [];
  #next = 0;

  constructor(
    readonly reduce: Reduce | undefined,
    readonly sortKeys: boolean,
  ) {}

  write(value: unknown): string {
    const root = this.#flatten(value);
    const frames = this.#frames;
    while (frames.length > 0) this.#step(frames[frames.length - 1] as WriteFrame);
    return root < 0 ? String(root) : `[${this.#texts.join(',')}]`;
  }

  #frame(index: number, kind: number, object: object, text: string): void {
    let keys: string[] | null = null;
    let entries: Iterator<unknown> | null = null;
    if (kind === PLAIN || kind === NULL_PROTO) {
      keys = Object.keys(object);
      if (this.sortKeys) keys = canonicalKeys(keys);
    } else if (kind === MAP) {
      entries = (object as Map<unknown, unknown>).entries();
    } else if (kind === SET) {
      entries = (object as Set<unknown>).values();
    }
    this.#frames.push({ index, kind, value: object, text, i: 0, keys, entries, pending: null, mode: NO_HOLE_YET });
  }

  /** The index (or special number) of `thing`; a container's entries are written later, by its frame. */
  #flatten(thing: unknown): number {
    if (thing === undefined) return UNDEFINED; // (narrows the type below)
    const special = specialIndex(thing);
    if (special !== 0) return special;
    const known = this.#indexes.get(thing);
    if (known !== undefined) return known;
    const index = this.#next;
    this.#next += 1;
    this.#indexes.set(thing, index);
    const texts = this.#texts;
    switch (typeof thing) {
      case 'string':
        texts[index] = quote(thing);
        return index;
      case 'number':
        texts[index] = String(thing);
        return index;
      case 'boolean':
        texts[index] = thing ? 'true' : 'false';
        return index;
      case 'bigint':
        texts[index] = `["BigInt","${thing}"]`;
        return index;
      case 'function':
      case 'symbol':
        throw new TypeError(`cannot encode a ${typeof thing}`);
      default:
        break;
    }
    if (thing === null) {
      texts[index] = 'null';
      return index;
    }
    const proto: unknown = Object.getPrototypeOf(thing);
    if (proto === Object.prototype) this.#frame(index, PLAIN, thing, '{');
    else if (proto === Array.prototype) this.#frame(index, ARRAY, thing, '[');
    else if (proto === null) this.#frame(index, NULL_PROTO, thing, '["null"');
    else if (proto === Map.prototype) this.#frame(index, MAP, thing, '["Map"');
    else if (proto === Set.prototype) this.#frame(index, SET, thing, '["Set"');
    else if (proto === Date.prototype) {
      const time = (thing as Date).getTime();
      texts[index] = `["Date","${Number.isNaN(time) ? '' : (thing as Date).toISOString()}"]`;
    } else if (proto === ArrayBuffer.prototype) {
      texts[index] = `["ArrayBuffer","${Buffer.from(thing as ArrayBuffer).toString('base64')}"]`;
    } else if (VIEW_TAGS.has(proto)) {
      texts[index] = this.#viewText(VIEW_TAGS.get(proto) as string, thing as ArrayBufferView);
    } else {
      const custom = this.reduce?.(thing);
      if (custom === undefined) {
        const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'anonymous';
        throw new TypeError(`cannot encode an instance of class ${name}`);
      }
      texts[index] = `[${quote(custom[0])},${this.#flatten(custom[1])}]`;
    }
    return index;
  }

  /** A typed array or `DataView`: its buffer (by index), and the window on it when it does not cover all of it. */
  #viewText(tag: string, view: ArrayBufferView): string {
    // A Buffer may be a window on a shared pool of unrelated bytes: copy only its own.
    const own = Buffer.isBuffer(view) ? new Uint8Array(view) : view;
    const buffer = own.buffer;
    let text = `["${tag}",${this.#flatten(buffer)}`;
    if (own.byteLength !== buffer.byteLength) {
      const length = tag === 'DataView' ? own.byteLength : (own as Uint8Array).length;
      text += `,${own.byteOffset},${length}`;
    }
    return `${text}]`;
  }

  /**
   * Writes entries of the top frame until one of them opens a frame of its own (which must be written first, so
   * that indices follow devalue's depth-first order), or finishes the frame.
   */
  #step(f: WriteFrame): void {
    const frames = this.#frames;
    const depth = frames.length;
    switch (f.kind) {
      case PLAIN:
      case NULL_PROTO: {
        const keys = f.keys as string[];
        const record = f.value as Record<string, unknown>;
        const plain = f.kind === PLAIN;
        while (f.i < keys.length) {
          const key = keys[f.i] as string;
          if (key === '__proto__') throw new TypeError('cannot encode an own property named __proto__');
          const first = f.i === 0;
          f.i += 1;
          const item = this.#flatten(record[key]);
          f.text += plain ? `${first ? '' : ','}${quote(key)}:${item}` : `,${quote(key)},${item}`;
          if (frames.length !== depth) return;
        }
        f.text += plain ? '}' : ']';
        break;
      }
      case ARRAY:
        if (!this.#arrayStep(f, depth)) return;
        break;
      case MAP: {
        const entries = f.entries as Iterator<[unknown, unknown]>;
        for (;;) {
          if (f.pending !== null) {
            const item = f.pending.value;
            f.pending = null;
            f.text += `,${this.#flatten(item)}`;
            if (frames.length !== depth) return;
          }
          const entry = entries.next();
          if (entry.done === true) break;
          f.pending = { value: entry.value[1] };
          f.text += `,${this.#flatten(entry.value[0])}`;
          if (frames.length !== depth) return;
        }
        f.text += ']';
        break;
      }
      default: {
        const entries = f.entries as Iterator<unknown>;
        for (;;) {
          const entry = entries.next();
          if (entry.done === true) break;
          f.text += `,${this.#flatten(entry.value)}`;
          if (frames.length !== depth) return;
        }
        f.text += ']';
      }
    }
    this.#texts[f.index] = f.text;
    frames.pop();
  }

  /** Writes an array's slots as devalue does: dense, dense with holes, or sparse; true when it is finished. */
  #arrayStep(f: WriteFrame, depth: number): boolean {
    const frames = this.#frames;
    const array = f.value as unknown[];
    const length = array.length;
    if (f.mode !== AS_SPARSE) {
      while (f.i < length) {
        const i = f.i;
        f.i += 1;
        if (i > 0) f.text += ',';
        if (Object.hasOwn(array, i)) {
          f.text += this.#flatten(array[i]);
          if (frames.length !== depth) return false;
        } else if (f.mode === WITH_HOLES) {
          f.text += HOLE;
        } else {
          // The first hole: a hole costs 3 characters (`-2,`); sparse form costs `-7,length,` and `index,` per item.
          const populated = populatedIndices(array);
          const digits = String(length).length;
          if ((length - populated.length) * 3 > 4 + digits + populated.length * (digits + 1)) {
            f.mode = AS_SPARSE;
            f.keys = populated;
            f.i = 0;
            f.text = `[${SPARSE},${length}`;
            break;
          }
          f.mode = WITH_HOLES;
          f.text += HOLE;
        }
      }
      if (f.mode !== AS_SPARSE) {
        f.text += ']';
        return true;
      }
    }
    const keys = f.keys as string[];
    while (f.i < keys.length) {
      const key = keys[f.i] as string;
      f.i += 1;
      // Items written before the first hole are written again here: they get the index they already have.
      f.text += `,${key},${this.#flatten(array[key as unknown as number])}`;
      if (frames.length !== depth) return false;
    }
    f.text += ']';
    return true;
  }
}

/** An array's populated indices: its leading array-index keys. */
function populatedIndices(array: unknown[]): string[] {
  const keys = Object.keys(array);
  let end = keys.length;
  while (end > 0 && !isArrayIndexKey(keys[end - 1] as string)) end -= 1;
  keys.length = end;
  return keys;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading.
// ---------------------------------------------------------------------------------------------------------------

/** Turns a custom type's decoded payload back into the value. */
export type Revive = (payload: unknown) => unknown;

/** Marks an entry not decoded yet. */
const UNSET: unique symbol = Symbol('unset');
/** Returned by `resolve` when the entry needs a frame (pushed): ask again once the frame is done. */
const PENDING: unique symbol = Symbol('pending');

/** An entry whose references are being decoded. */
interface ReadFrame {
  readonly index: number;
  readonly kind: number;
  /** The JSON entry. */
  readonly entry: unknown[] | Record<string, unknown>;
  /** The value being filled (or, for a custom type, its reviver). */
  readonly target: unknown;
  /** Position in `entry` (or in `keys`). */
  i: number;
  readonly keys: string[] | null;
  /** A Map entry's decoded key, while its value is decoded. */
  key: unknown;
}

const VIEW_CONSTRUCTORS: ReadonlySet<string> = new Set(VIEW_TAGS.values());

function invalid(why: string): Error {
  return new Error(`invalid devalue text: ${why}`);
}

/**
 * Decodes devalue text (as devalue's `parse(text, revivers)` does), for any depth.
 *
 * @throws SyntaxError when the text is not JSON; Error when it is not devalue's format.
 */
export function readText(text: string, revivers: Readonly<Record<string, Revive>>): unknown {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed === 'number') {
    const special = specialValue(parsed);
    if (special === UNSET) throw invalid(`a root number must be one of -1, -3 to -6; received ${parsed}`);
    return special;
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw invalid('expected a non-empty JSON array');
  return new Reader(parsed as unknown[], revivers).read();
}

/** The state of one {@link readText}. */
class Reader {
  readonly #decoded: unknown[];
  readonly #frames: ReadFrame[] = [];
  /** Payload indices of custom types being decoded: one that refers back to itself is a cycle. */
  #reviving: Set<number> | null = null;

  constructor(
    /** The JSON entries; a custom type's inline payload is appended as an entry of its own. */
    readonly values: unknown[],
    readonly revivers: Readonly<Record<string, Revive>>,
  ) {
    this.#decoded = new Array<unknown>(values.length).fill(UNSET);
  }

  read(): unknown {
    const root = this.#resolve(0);
    if (root !== PENDING) return root;
    const frames = this.#frames;
    while (frames.length > 0) {
      const f = frames[frames.length - 1] as ReadFrame;
      if (!this.#fill(f)) continue;
      frames.pop();
      if (f.kind === CUSTOM) {
        const payload = (f.entry as number[])[0] as number;
        this.#reviving?.delete(payload);
        this.#decoded[f.index] = (f.target as Revive)(this.#decoded[payload]);
      }
    }
    return this.#decoded[0];
  }

  /** The value an index stands for, or PENDING once its frame is pushed. */
  #resolve(ref: unknown): unknown {
    if (typeof ref !== 'number') throw invalid(`expected an index; received ${JSON.stringify(ref)}`);
    if (ref < 0) {
      const special = specialValue(ref);
      if (special === UNSET) throw invalid(`unexpected ${ref}`);
      return special;
    }
    if (ref >= this.values.length || !Number.isInteger(ref)) throw invalid(`index ${ref} is out of range`);
    const done = this.#decoded[ref];
    return done === UNSET ? this.#open(ref) : done;
  }

  #push(
    index: number,
    kind: number,
    entry: unknown[] | Record<string, unknown>,
    target: unknown,
    i: number,
    keys: string[] | null = null,
  ): typeof PENDING {
    if (kind !== CUSTOM) this.#decoded[index] = target; // before its entries, as devalue does
    this.#frames.push({ index, kind, entry, target, i, keys, key: undefined });
    return PENDING;
  }

  /** Decodes entry `index`, or pushes its frame and returns PENDING. */
  #open(index: number): unknown {
    const decoded = this.#decoded;
    const entry = this.values[index];
    if (entry === null || typeof entry !== 'object') return (decoded[index] = entry);
    if (!Array.isArray(entry)) {
      return this.#push(index, PLAIN, entry as Record<string, unknown>, {}, 0, Object.keys(entry));
    }
    const head: unknown = entry[0];
    if (typeof head !== 'string') {
      if (head === SPARSE) {
        const length: unknown = entry[1];
        if (!(Number.isInteger(length) && (length as number) >= 0 && (length as number) <= MAX_ARRAY_LENGTH)) {
          throw invalid(`a sparse array's length must be an integer from 0 to 2^32 - 1; received ${String(length)}`);
        }
        return this.#push(index, SPARSE_ARRAY, entry, sparseArray(length as number), 2);
      }
      return this.#push(index, ARRAY, entry, new Array<unknown>(entry.length), 0);
    }
    const revive = Object.hasOwn(this.revivers, head) ? this.revivers[head] : undefined;
    if (revive !== undefined) return this.#openCustom(index, entry, revive);
    switch (head) {
      case 'Date':
        return (decoded[index] = new Date(entry[1] as string));
      case 'BigInt':
        return (decoded[index] = BigInt(entry[1] as string));
      case 'ArrayBuffer': {
        if (typeof entry[1] !== 'string') throw invalid('an ArrayBuffer must be a base64 string');
        return (decoded[index] = Uint8Array.from(Buffer.from(entry[1], 'base64')).buffer);
      }
      case 'Set':
        return this.#push(index, SET, entry, new Set(), 1);
      case 'Map':
        return this.#push(index, MAP, entry, new Map(), 1);
      case 'null':
        return this.#push(index, NULL_PROTO, entry, Object.create(null), 1);
      default: {
        if (!VIEW_CONSTRUCTORS.has(head)) throw invalid(`unknown type ${head}`);
        const bufferEntry = this.values[entry[1] as number];
        if (!Array.isArray(bufferEntry) || bufferEntry[0] !== 'ArrayBuffer') {
          throw invalid(`a ${head} must refer to an ArrayBuffer`);
        }
        const buffer = this.#resolve(entry[1]) as ArrayBuffer;
        const Ctor = (globalThis as unknown as Record<string, new (...args: unknown[]) => unknown>)[head];
        if (Ctor === undefined) throw invalid(`${head} is not available in this JavaScript runtime`);
        return (decoded[index] =
          entry[2] === undefined ? new Ctor(buffer) : new Ctor(buffer, entry[2], entry[3] as number));
      }
    }
  }

  /** A custom type: its payload is decoded first (in a frame of its own when it is a container), then revived. */
  #openCustom(index: number, entry: unknown[], revive: Revive): unknown {
    let payload: unknown = entry[1];
    if (typeof payload !== 'number') {
      // Written inline by a built-in type rather than by index: decode it as an entry of its own.
      this.values.push(payload);
      this.#decoded.push(UNSET);
      payload = this.values.length - 1;
    }
    const known = this.#decoded[payload as number];
    if (known !== UNSET) return (this.#decoded[index] = revive(known));
    this.#reviving ??= new Set();
    if (this.#reviving.has(payload as number)) throw invalid('a custom type refers back to itself');
    this.#reviving.add(payload as number);
    return this.#push(index, CUSTOM, [payload], revive, 0);
  }

  /** Decodes entries of the top frame until one needs a frame of its own; true when the frame is complete. */
  #fill(f: ReadFrame): boolean {
    const entry = f.entry as unknown[];
    switch (f.kind) {
      case ARRAY: {
        const array = f.target as unknown[];
        for (; f.i < entry.length; f.i += 1) {
          const ref = entry[f.i];
          if (ref === HOLE) continue;
          const v = this.#resolve(ref);
          if (v === PENDING) return false;
          array[f.i] = v;
        }
        return true;
      }
      case SPARSE_ARRAY: {
        const array = f.target as unknown[];
        for (; f.i < entry.length; f.i += 2) {
          const at = entry[f.i];
          if (!(Number.isInteger(at) && (at as number) >= 0 && (at as number) < array.length)) {
            throw invalid(`a sparse array index must be below its length ${array.length}; received ${String(at)}`);
          }
          const v = this.#resolve(entry[f.i + 1]);
          if (v === PENDING) return false;
          array[at as number] = v;
        }
        return true;
      }
      case PLAIN: {
        const keys = f.keys as string[];
        const record = f.entry as Record<string, unknown>;
        const target = f.target as Record<string, unknown>;
        for (; f.i < keys.length; f.i += 1) {
          const key = keys[f.i] as string;
          if (key === '__proto__') throw invalid('an object has a __proto__ key');
          const v = this.#resolve(record[key]);
          if (v === PENDING) return false;
          target[key] = v;
        }
        return true;
      }
      case NULL_PROTO: {
        const target = f.target as Record<string, unknown>;
        for (; f.i < entry.length; f.i += 2) {
          const key = entry[f.i];
          if (typeof key !== 'string') throw invalid('a null-prototype object has a key that is not a string');
          if (key === '__proto__') throw invalid('an object has a __proto__ key');
          const v = this.#resolve(entry[f.i + 1]);
          if (v === PENDING) return false;
          target[key] = v;
        }
        return true;
      }
      case SET: {
        const set = f.target as Set<unknown>;
        for (; f.i < entry.length; f.i += 1) {
          const v = this.#resolve(entry[f.i]);
          if (v === PENDING) return false;
          set.add(v);
        }
        return true;
      }
      case MAP: {
        const map = f.target as Map<unknown, unknown>;
        while (f.i < entry.length) {
          const v = this.#resolve(entry[f.i]);
          if (v === PENDING) return false;
          if (f.i % 2 === 1) f.key = v;
          else map.set(f.key, v);
          f.i += 1;
        }
        if (f.i % 2 === 0) throw invalid('a Map has a key without a value');
        return true;
      }
      default:
        return this.#resolve(entry[0]) !== PENDING;
    }
  }
}

/** The value of a special negative number, or UNSET. */
function specialValue(n: number): unknown {
  switch (n) {
    case UNDEFINED:
      return undefined;
    case NAN:
      return NaN;
    case POSITIVE_INFINITY:
      return Infinity;
    case NEGATIVE_INFINITY:
      return -Infinity;
    case NEGATIVE_ZERO:
      return -0;
    default:
      return UNSET;
  }
}

/**
 * An empty array of `length` that allocates nothing per slot, whatever the length: setting the length of a new
 * array would reserve memory for it; touching the last possible index first makes it a dictionary-mode array.
 */
function sparseArray(length: number): unknown[] {
  const array: unknown[] = [];
  array[MAX_ARRAY_LENGTH - 1] = undefined;
  // eslint-disable-next-line @typescript-eslint/no-array-delete -- the point is to leave a dictionary-mode array
  delete array[MAX_ARRAY_LENGTH - 1];
  array.length = length;
  return array;
}
