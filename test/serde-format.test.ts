/**
 * The codec writes and reads exactly devalue's format, at any depth: a seeded property test on random values of
 * every supported type compares our text, our decoding and our canonical hash with devalue's own `stringify` and
 * `parse` (the encoder of earlier versions), so every stored value stays readable, every new one is readable by
 * devalue, and no cache key or action name changes. Then values nested far deeper than devalue can go, and lone
 * surrogates, which devalue's text loses in a UTF-8 store.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'devalue';
import { fromSerialized, RuntimeDataValidationError, RuntimeUserError, serializeError } from '../src/errors.js';
import { dirHashSync, fileHashSync } from '../src/internal/content-hash.js';
import { readText, writeText } from '../src/internal/devalue-format.js';
import { decodeValue, encodeValue } from '../src/internal/serde.js';
import { Dir, File } from '../src/io.js';
import { prng } from './support/prng.js';

const STRING_PARTS = [
  'a',
  'key',
  '',
  ' ',
  '"',
  '\\',
  '<',
  '>',
  '/',
  '\n',
  '\t',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u2028',
  '\u2029',
  'é',
  '日本',
  '😀',
  '\ufeff',
  '0',
  '1',
  '10',
  '-1',
  '__proto_',
  'constructor',
  '\\u0041',
];
const LONE = ['\ud800', '\udbff', '\udc00', '\udfff'];

interface Gen {
  readonly rand: () => number;
  /** Objects made so far, for repeated references. */
  readonly pool: object[];
  readonly files: readonly (File | Dir)[];
  /** Whether strings may contain lone surrogates. */
  readonly lone: boolean;
}

function pick<T>(g: Gen, items: readonly T[]): T {
  return items[Math.floor(g.rand() * items.length)] as T;
}

function randomString(g: Gen): string {
  let out = '';
  const n = Math.floor(g.rand() * 4);
  for (let i = 0; i < n; i += 1) out += g.lone && g.rand() < 0.3 ? pick(g, LONE) : pick(g, STRING_PARTS);
  return out;
}

function randomPrimitive(g: Gen): unknown {
  switch (Math.floor(g.rand() * 10)) {
    case 0:
      return undefined;
    case 1:
      return null;
    case 2:
      return g.rand() < 0.5;
    case 3:
      return pick(g, [0, -0, 1, -1, 0.5, 1e21, -1e-7, 5e-324, Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity]);
    case 4:
      return Math.floor(g.rand() * 100);
    case 5:
      return pick(g, [0n, -1n, 12345678901234567890n]);
    default:
      return randomString(g);
  }
}

function randomLeaf(g: Gen): object {
  const bytes = Uint8Array.from({ length: Math.floor(g.rand() * 9) }, () => Math.floor(g.rand() * 256));
  switch (Math.floor(g.rand() * 9)) {
    case 0:
      return new Date(Math.floor(g.rand() * 2e12));
    case 1:
      return new Date(Number.NaN);
    case 2:
      return bytes.buffer;
    case 3:
      return bytes;
    case 4:
      return Buffer.from(bytes); // a window on Node's pool: written as its own bytes
    case 5: {
      const big = new Float64Array([1.5, -0, NaN, 3]);
      return big.subarray(1, 3); // a window on a larger buffer
    }
    case 6:
      return new DataView(bytes.buffer, 0, Math.min(2, bytes.length));
    case 7:
      return pick(g, [
        new Int16Array([1, -2]),
        new BigInt64Array([5n]),
        new Uint8ClampedArray([255]),
        new Int32Array(0),
      ]);
    default:
      return pick(g, g.files);
  }
}

function randomValue(g: Gen, depth: number): unknown {
  const r = g.rand();
  if (depth <= 0 || r < 0.3) return randomPrimitive(g);
  if (r < 0.4) return randomLeaf(g);
  if (r < 0.45 && g.pool.length > 0) return pick(g, g.pool); // a repeated reference
  let value: object;
  const n = Math.floor(g.rand() * 5);
  switch (Math.floor(g.rand() * 7)) {
    case 0: {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i += 1)
        o[g.rand() < 0.2 ? String(Math.floor(g.rand() * 20)) : randomString(g)] = randomValue(g, depth - 1);
      value = o;
      break;
    }
    case 1: {
      const o = Object.create(null) as Record<string, unknown>;
      for (let i = 0; i < n; i += 1) o[randomString(g) || 'k'] = randomValue(g, depth - 1);
      value = o;
      break;
    }
    case 2: {
      const a: unknown[] = [];
      for (let i = 0; i < n; i += 1) a.push(randomValue(g, depth - 1));
      value = a;
      break;
    }
    case 3: {
      // A sparse array: a few holes (written as -2) or many (the sparse form), some items before the first hole.
      const length = g.rand() < 0.5 ? n + 2 : 50 + Math.floor(g.rand() * 50);
      const a = new Array<unknown>(length);
      for (let i = 0; i < Math.min(n, length); i += 1) a[Math.floor(g.rand() * length)] = randomValue(g, depth - 1);
      if (g.rand() < 0.5) a[0] = randomValue(g, depth - 1);
      value = a;
      break;
    }
    case 4: {
      const m = new Map<unknown, unknown>();
      for (let i = 0; i < n; i += 1) {
        m.set(g.rand() < 0.3 ? randomValue(g, depth - 1) : randomPrimitive(g), randomValue(g, depth - 1));
      }
      value = m;
      break;
    }
    case 5: {
      const s = new Set<unknown>();
      for (let i = 0; i < n; i += 1) s.add(randomValue(g, depth - 1));
      value = s;
      break;
    }
    default:
      value = g.rand() < 0.5 ? new RuntimeUserError('Oops', randomString(g)) : new TypeError(randomString(g));
  }
  g.pool.push(value);
  return value;
}

// The encoding of earlier versions: devalue with these reducers (the text), and of a key-sorted copy (the hash).
function devalueText(value: unknown, refs: Map<object, string>): string {
  return stringify(value, {
    'flyte.io.File': (v: unknown) => v instanceof File && [v.path, refs.get(v)],
    'flyte.io.Dir': (v: unknown) => v instanceof Dir && [v.path, refs.get(v)],
    'flyte.Error': (v: unknown) => v instanceof Error && serializeError(v),
  });
}

function devalueHash(value: unknown, refs: Map<object, string>): string {
  const text = stringify(sortedCopy(value, new Map()), {
    'flyte.io.File': (v: unknown) => v instanceof File && refs.get(v),
    'flyte.io.Dir': (v: unknown) => v instanceof Dir && refs.get(v),
    'flyte.Error': (v: unknown) => {
      if (!(v instanceof Error)) return false;
      const { code, kind, message } = serializeError(v);
      return [code, kind, message];
    },
  });
  return createHash('sha256').update(text).digest('hex');
}

function sortedCopy(value: unknown, memo: Map<object, unknown>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (memo.has(value)) return memo.get(value);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const out = (proto === null ? Object.create(null) : {}) as Record<string, unknown>;
    memo.set(value, out);
    for (const key of Object.keys(value).sort()) out[key] = sortedCopy((value as Record<string, unknown>)[key], memo);
    return out;
  }
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    memo.set(value, out);
    for (const key of Object.keys(value)) out[Number(key)] = sortedCopy(value[Number(key)], memo);
    return out;
  }
  if (value instanceof Map) {
    const out = new Map();
    memo.set(value, out);
    for (const [k, v] of value) out.set(sortedCopy(k, memo), sortedCopy(v, memo));
    return out;
  }
  if (value instanceof Set) {
    const out = new Set();
    memo.set(value, out);
    for (const v of value) out.add(sortedCopy(v, memo));
    return out;
  }
  return value;
}

const REVIVERS = {
  'flyte.io.File': (v: unknown) => new File((v as string[])[0] as string),
  'flyte.io.Dir': (v: unknown) => new Dir((v as string[])[0] as string),
  'flyte.Error': (v: unknown) => fromSerialized(v as Parameters<typeof fromSerialized>[0]),
};

/** Whether a string has no lone surrogates (with the `u` flag, `\p{Cs}` matches only unpaired halves). */
const wellFormed = (text: string): boolean => !/\p{Cs}/u.test(text);

/**
 * Asserts that two decoded values are the same graph: devalue writes the same text for both (which tells apart
 * types, prototypes, holes, key order and shared references, and, unlike deepStrictEqual, takes two invalid dates
 * for equal).
 */
function assertSameValue(actual: unknown, expected: unknown, seed: number): void {
  const none = new Map<object, string>();
  assert.equal(devalueText(actual, none), devalueText(expected, none), `seed ${seed}: decoded values differ`);
}

describe('devalue format', () => {
  let dir: string;
  let files: (File | Dir)[];
  const refs = new Map<object, string>();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flyte-format-'));
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', 'x.txt'), 'x');
    writeFileSync(join(dir, 'a.txt'), 'a');
    writeFileSync(join(dir, 'b.txt'), 'a'); // same bytes, other path
    files = [File.from(join(dir, 'a.txt')), File.from(join(dir, 'b.txt')), Dir.from(join(dir, 'd'))];
    for (const f of files) refs.set(f, f instanceof File ? fileHashSync(f.path) : dirHashSync(f.path));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the text, and the canonical hash, that devalue wrote, and reads what it reads (3 000 seeded values)', () => {
    // Each of these must occur in some text, so that the values cover every type and form.
    const forms = [
      '[-7,',
      ',-2',
      '["null"',
      '["Map"',
      '["Set"',
      '["Date",""]',
      '["Date","',
      '["BigInt"',
      '["ArrayBuffer"',
    ];
    forms.push(
      '["Float64Array",',
      '["DataView",',
      '["Uint8Array",',
      '["flyte.io.File"',
      '["flyte.io.Dir"',
      '["flyte.Error"',
    );
    forms.push(',-1', ',-3', ',-4', ',-5', ',-6', '\\u003C', '\\u2028', '\\n');
    const seen = new Set<string>();
    let sortedForHash = 0;
    for (let seed = 1; seed <= 3000; seed += 1) {
      const g: Gen = { rand: prng(seed), pool: [], files, lone: false };
      const value = randomValue(g, 5);
      const args = [value, randomValue(g, 3)];
      const expected = devalueText(args, refs);
      const { text, hash } = encodeValue(args, 'args');
      assert.equal(text, expected, `seed ${seed}: text`);
      assert.equal(hash, devalueHash(args, refs), `seed ${seed}: hash`);
      assertSameValue(decodeValue(text), parse(expected, REVIVERS), seed);
      for (const form of forms) if (text.includes(form)) seen.add(form);
      if (hash !== createHash('sha256').update(text).digest('hex')) sortedForHash += 1;
    }
    assert.deepEqual(
      forms.filter((form) => !seen.has(form)),
      [],
    );
    assert.ok(sortedForHash > 100, `only ${sortedForHash} values hashed otherwise than their text`);
  });

  it('writes the root primitives devalue writes as bare numbers or one-entry arrays', () => {
    for (const value of [undefined, NaN, Infinity, -Infinity, -0, 0, 1, 'x', '', null, true, 5n, [], {}]) {
      assert.equal(writeText(value), stringify(value));
      assert.deepStrictEqual(readText(writeText(value), {}), value);
    }
  });

  it('writes flat arguments and primitive outputs (the short path) as devalue did (3 000 seeded values)', () => {
    // A task's usual arguments and outputs: primitives, repeated ones, special numbers, holes, up to 20 items.
    const repeats = new Set<string>();
    for (let seed = 1; seed <= 3000; seed += 1) {
      const g: Gen = { rand: prng(seed), pool: [], files: [], lone: false };
      const length = Math.floor(g.rand() * 21);
      let value: unknown;
      if (seed % 5 === 0) value = randomPrimitive(g);
      else {
        const items = new Array<unknown>(length);
        for (let i = 0; i < length; i += 1) {
          if (g.rand() < 0.03) continue; // a hole
          items[i] = g.rand() < 0.3 && i > 0 ? items[Math.floor(g.rand() * i)] : randomPrimitive(g);
        }
        value = items;
      }
      const none = new Map<object, string>();
      const expected = devalueText(value, none);
      const { text, hash } = encodeValue(value, 'args');
      assert.equal(text, expected, `seed ${seed}: text`);
      assert.equal(hash, devalueHash(value, none), `seed ${seed}: hash`);
      assertSameValue(decodeValue(text), parse(expected), seed);
      if (/^\[\[(\d+,)*(\d+),(\d+,)*\2[,\]]/.test(text)) repeats.add(text);
    }
    assert.ok(repeats.size > 50, `only ${repeats.size} texts with a repeated value`);
  });

  it('keeps values nested 100 000 levels deep, and hashes them, which devalue cannot', { timeout: 60_000 }, () => {
    const depth = 100_000;
    let value: unknown = 'leaf';
    for (let i = 0; i < depth; i += 1) {
      const k = i % 4;
      value = k === 0 ? [value] : k === 1 ? { next: value, a: 1 } : k === 2 ? new Map([[i, value]]) : new Set([value]);
    }
    assert.throws(() => stringify(value), RangeError); // devalue overflows the stack
    const { text, hash } = encodeValue(value, 'output');
    assert.match(hash, /^[0-9a-f]{64}$/);
    let back = decodeValue(text);
    for (let i = depth - 1; i >= 0; i -= 1) {
      const k = i % 4;
      if (k === 0) back = (back as unknown[])[0];
      else if (k === 1) back = (back as { next: unknown }).next;
      else if (k === 2) back = (back as Map<number, unknown>).get(i);
      else back = [...(back as Set<unknown>)][0];
    }
    assert.equal(back, 'leaf');
  });

  it('hashes a deep value with unsorted keys as its key-sorted twin, and refuses a deep cycle with both paths', () => {
    const make = (order: 'ab' | 'ba'): unknown => {
      let value: unknown = 0;
      for (let i = 0; i < 20_000; i += 1) value = order === 'ab' ? { a: i, b: value } : { b: value, a: i };
      return value;
    };
    assert.equal(encodeValue(make('ba'), 'args').hash, encodeValue(make('ab'), 'args').hash);
    const root: Record<string, unknown> = {};
    let node = root;
    for (let i = 0; i < 20_000; i += 1) {
      const child: Record<string, unknown> = {};
      node.n = child;
      node = child;
    }
    node.back = root;
    assert.throws(
      () => encodeValue(root, 'args'),
      (err: unknown) =>
        err instanceof RuntimeDataValidationError &&
        err.message.includes('refers back to args;') &&
        err.path === `args${'.n'.repeat(20_000)}.back`,
    );
  });

  it('escapes lone surrogates as \\uXXXX: valid UTF-8, read back exactly, by us and by devalue', () => {
    let changed = 0;
    for (let seed = 1; seed <= 3000; seed += 1) {
      const g: Gen = { rand: prng(seed), pool: [], files, lone: true };
      const value = [randomValue(g, 4)];
      const { text, hash } = encodeValue(value, 'args');
      assert.ok(wellFormed(text), `seed ${seed}: text is not well-formed UTF-16`);
      const viaUtf8 = Buffer.from(text, 'utf8').toString('utf8');
      assert.equal(viaUtf8, text, `seed ${seed}: UTF-8 changes the text`);
      const old = devalueText(value, refs);
      if (wellFormed(old)) {
        assert.equal(text, old, `seed ${seed}: a text without lone surrogates changed`);
        assert.equal(hash, devalueHash(value, refs), `seed ${seed}: a hash without lone surrogates changed`);
      } else {
        changed += 1;
      }
      // What devalue gave back before any store saw the text, and what its parse makes of ours.
      assertSameValue(decodeValue(viaUtf8), parse(old, REVIVERS), seed);
      assertSameValue(parse(viaUtf8, REVIVERS), parse(old, REVIVERS), seed);
    }
    assert.ok(changed > 100, `only ${changed} of 3000 values had lone surrogates`);
    // Two values that UTF-8 used to make one (both became U+FFFD) now hash apart.
    assert.notEqual(encodeValue(['x\ud800'], 'args').hash, encodeValue(['x\udfff'], 'args').hash);
  });
});
