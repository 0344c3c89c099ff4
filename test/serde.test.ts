import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InlineIOMaxBytesBreached, RuntimeDataValidationError } from '../src/errors.js';
import { sha256Hex, shortHash } from '../src/internal/hash.js';
import { Dir, File } from '../src/internal/io-values.js';
import { decodeValue, encodeValue, parseOffloadMarker, ValueCodec } from '../src/internal/serde.js';
import { DirBlobStore, MemoryBlobStore } from '../src/store/blob-store.js';

function roundTrip(value: unknown): unknown {
  return decodeValue(encodeValue(value, 'args').text);
}

function hashOf(value: unknown): string {
  return encodeValue(value, 'args').hash;
}

/** Asserts that encoding `value` is refused at `path`, with `fragment` in the message; returns the error. */
function assertRefused(value: unknown, path: string, fragment: string, root = 'args'): RuntimeDataValidationError {
  let caught: unknown;
  try {
    encodeValue(value, root);
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof RuntimeDataValidationError,
    `expected a RuntimeDataValidationError, got ${String(caught)}`,
  );
  assert.equal(caught.path, path);
  assert.ok(
    caught.message.includes(fragment),
    `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(fragment)}`,
  );
  return caught;
}

describe('hash', () => {
  it('sha256Hex is the hex SHA-256 of the UTF-8 bytes', () => {
    assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(sha256Hex('é'), sha256Hex(Buffer.from('é', 'utf8').toString()));
  });

  it('shortHash is a lower-case base32 prefix of the SHA-256', () => {
    // RFC 4648 base32 of sha256('abc'), lower-cased.
    const full = 'xj4bnp4pahh6uqkbidpf3lrceoyagyndsylxvhfucd7wd4qacwwq';
    assert.equal(shortHash('abc'), full.slice(0, 16));
    assert.equal(shortHash('abc', 8), full.slice(0, 8));
    assert.equal(shortHash('abc', 52), full);
    assert.match(shortHash('anything', 30), /^[a-z2-7]{30}$/);
    assert.throws(() => shortHash('abc', 0), RangeError);
    assert.throws(() => shortHash('abc', 53), RangeError);
  });
});

describe('encodeValue / decodeValue round trips', () => {
  const cases: Record<string, unknown> = {
    'a number': 42,
    'a float': -1.5e-300,
    'a string with escapes': 'a "quoted" <tag> \\ \n \u2028 é 😀',
    'a lone surrogate': '\ud800',
    true: true,
    false: false,
    null: null,
    undefined: undefined,
    NaN: NaN,
    Infinity: Infinity,
    '-Infinity': -Infinity,
    '-0': -0,
    'a BigInt': 12345678901234567890123456789n,
    'a negative BigInt': -5n,
    'a Date': new Date('2024-05-06T07:08:09.010Z'),
    'a Map': new Map<unknown, unknown>([
      ['a', 1],
      [2, { b: [3] }],
      [{ k: 1 }, new Set([1])],
    ]),
    'a Set': new Set<unknown>([1, 'x', null, undefined, [2]]),
    'an empty object and array': [{}, []],
    'a null-prototype object': Object.assign(Object.create(null) as object, { a: 1 }),
    'a sparse array': [1, , 3], // eslint-disable-line no-sparse-arrays
    'an array with undefined': [undefined, null],
    Int8Array: new Int8Array([-1, 2]),
    Uint8Array: new Uint8Array([0, 255]),
    Uint8ClampedArray: new Uint8ClampedArray([1, 2]),
    Int16Array: new Int16Array([-300]),
    Uint16Array: new Uint16Array([65535]),
    Int32Array: new Int32Array([-70000]),
    Uint32Array: new Uint32Array([4e9]),
    Float32Array: new Float32Array([1.5, NaN]),
    Float64Array: new Float64Array([Math.PI, -0]),
    BigInt64Array: new BigInt64Array([-1n]),
    BigUint64Array: new BigUint64Array([2n ** 64n - 1n]),
    'an ArrayBuffer': new Uint8Array([1, 2, 3]).buffer,
    'a DataView': new DataView(new Uint8Array([9, 8]).buffer),
    'a typed array on part of a buffer': new Uint16Array(new ArrayBuffer(16), 4, 2),
    'task arguments': [
      { items: [1, 2, { deep: [new Date(0), new Map([['k', 1n]])] }], 'first name': 'Ada' },
      'x',
      [NaN, -0, Infinity],
    ],
  };
  for (const [name, value] of Object.entries(cases)) {
    it(`keeps ${name}`, () => {
      assert.deepStrictEqual(roundTrip(value), value);
    });
  }

  it('keeps an invalid Date', () => {
    // (deepStrictEqual cannot compare invalid dates: their times are NaN.)
    const decoded = roundTrip([new Date(Number.NaN)]) as [Date];
    assert.ok(decoded[0] instanceof Date);
    assert.ok(Number.isNaN(decoded[0].getTime()));
  });

  it('keeps deep nesting, far past the 1 500 levels devalue could encode', () => {
    let value: unknown = 'leaf';
    for (let i = 0; i < 1000; i += 1) value = i % 2 === 0 ? [value] : { next: value };
    assert.deepStrictEqual(roundTrip(value), value);
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i += 1) deep = [deep];
    let back = roundTrip(deep);
    for (let i = 0; i < 100_000; i += 1) back = (back as unknown[])[0];
    assert.equal(back, 1);
  });

  it('turns a Buffer into the Uint8Array it is', () => {
    const decoded = roundTrip(Buffer.from('hi'));
    assert.ok(decoded instanceof Uint8Array);
    assert.deepStrictEqual([...decoded], [104, 105]);
  });

  it('accepts repeated references and decodes them as repeated references', () => {
    const shared = { n: 1 };
    const decoded = roundTrip({ a: shared, b: [shared, shared] }) as { a: object; b: object[] };
    assert.equal(decoded.a, decoded.b[0]);
    assert.equal(decoded.b[0], decoded.b[1]);
  });

  it('walks a repeated reference once (a chain of diamonds stays linear)', { timeout: 5000 }, () => {
    let value: unknown = { leaf: 1 };
    for (let i = 0; i < 40; i += 1) value = { left: value, right: value };
    let decoded = roundTrip(value) as { left: unknown; right: unknown };
    for (let i = 0; i < 40; i += 1) {
      assert.equal(decoded.left, decoded.right);
      decoded = decoded.left as { left: unknown; right: unknown };
    }
    assert.deepStrictEqual(decoded, { leaf: 1 });
  });

  it('writes devalue text that starts with [ or -, never with the offload marker character', () => {
    for (const value of Object.values(cases)) {
      const { text } = encodeValue(value, 'args');
      assert.match(text, /^[[-]/);
      assert.equal(parseOffloadMarker(text), undefined);
    }
  });
});

describe('canonical hash', () => {
  it('is a SHA-256 hex digest', () => {
    assert.match(hashOf({ a: 1 }), /^[0-9a-f]{64}$/);
  });

  it('does not depend on plain-object key order, at any depth', () => {
    assert.equal(hashOf({ a: 1, b: 2 }), hashOf({ b: 2, a: 1 }));
    assert.equal(
      hashOf([new Map([['m', { y: 1, x: [{ q: 1, p: 2 }] }]]), new Set([{ d: 1, c: 2 }])]),
      hashOf([new Map([['m', { x: [{ p: 2, q: 1 }], y: 1 }]]), new Set([{ c: 2, d: 1 }])]),
    );
    const nullProto = (entries: [string, number][]): object =>
      Object.assign(Object.create(null) as object, Object.fromEntries(entries));
    assert.equal(
      hashOf(
        nullProto([
          ['z', 1],
          ['a', 2],
        ]),
      ),
      hashOf(
        nullProto([
          ['a', 2],
          ['z', 1],
        ]),
      ),
    );
  });

  it('does not depend on key order when keys mix array indices and names', () => {
    assert.equal(hashOf({ b: 1, 10: 'x', a: 2, 9: 'y' }), hashOf({ a: 2, 9: 'y', b: 1, 10: 'x' }));
    assert.equal(hashOf({ 1: 1, 2: 2, 10: 10 }), hashOf({ 10: 10, 2: 2, 1: 1 }));
  });

  it('does not depend on key order when references are repeated', () => {
    const s1 = { y: 1, x: 2 };
    const s2 = { x: 2, y: 1 };
    assert.equal(hashOf({ p: s1, q: [s1] }), hashOf({ q: [s2], p: s2 }));
  });

  it('is the hash of the text when keys are already sorted', () => {
    const { text, hash } = encodeValue({ a: 1, b: [2] }, 'args');
    assert.equal(hash, sha256Hex(text));
  });

  it('tells apart values that differ', () => {
    const values: unknown[] = [
      [1, 2],
      [2, 1],
      1,
      '1',
      1n,
      true,
      'true',
      undefined,
      null,
      NaN,
      0,
      -0,
      [],
      {},
      [undefined],
      [null],
      [, 1], // eslint-disable-line no-sparse-arrays
      [undefined, 1],
      new Map([
        ['a', 1],
        ['b', 2],
      ]),
      new Map([
        ['b', 2],
        ['a', 1],
      ]),
      new Set([1, 2]),
      new Set([2, 1]),
      { a: 1 },
      Object.assign(Object.create(null) as object, { a: 1 }),
      new Date(0),
      new Date(1),
      new Uint8Array([1]),
      new Int8Array([1]),
      { a: [1] },
      { a: ['1'] },
    ];
    const hashes = values.map(hashOf);
    assert.equal(new Set(hashes).size, values.length);
  });

  it('counts repeated references: the decoded graphs differ', () => {
    const shared = { n: 1 };
    assert.notEqual(hashOf([shared, shared]), hashOf([{ n: 1 }, { n: 1 }]));
  });
});

describe('refusals', () => {
  it('refuses a function with its path', () => {
    const err = assertRefused(
      [{ items: [1, 2, 3, () => 1] }],
      'args[0].items[3]',
      'received a function at args[0].items[3]',
    );
    assert.ok(err.message.startsWith('expected plain data'));
    assertRefused(function named() {}, 'args', 'a function (named)');
  });

  it('quotes keys that are not identifiers', () => {
    assertRefused([0, { user: { 'first name': Symbol('s') } }], 'args[1].user["first name"]', 'a symbol (Symbol(s))');
  });

  it('refuses a class instance, even one without methods, naming the class', () => {
    class Foo {
      constructor(readonly n = 1) {}
    }
    class WithMethods {
      m(): number {
        return 1;
      }
    }
    assertRefused(
      [{ x: new Foo() }],
      'args[0].x',
      'expected plain data (JSON values, undefined, Date, BigInt, Map, Set, typed arrays, ArrayBuffer); received an instance of class Foo at args[0].x; pass its data as a plain object instead',
    );
    assertRefused({ w: new WithMethods() }, 'args.w', 'an instance of class WithMethods');
    assertRefused(new (class {})(), 'args', 'an instance of an anonymous class');
    class MyArray extends Array<number> {}
    assertRefused([MyArray.from([1])], 'args[0]', 'an instance of class MyArray');
    class MyBytes extends Uint8Array {}
    assertRefused([new MyBytes(2)], 'args[0]', 'an instance of class MyBytes');
  });

  it('refuses built-ins that are not data', () => {
    assertRefused([new WeakMap()], 'args[0]', 'an instance of class WeakMap');
    assertRefused({ p: Promise.resolve(1) }, 'args.p', 'an instance of class Promise');
    assertRefused([/re/], 'args[0]', 'an instance of class RegExp');
    assertRefused([new URL('http://x')], 'args[0]', 'an instance of class URL');
     
    assertRefused([new Number(1)], 'args[0]', 'an instance of class Number');
    assertRefused([Symbol.iterator], 'args[0]', 'a symbol');
  });

  it('names places inside Maps and Sets', () => {
    assertRefused([new Map([['k', () => 1]])], 'args[0].get("k")', 'a function');
    assertRefused([new Map([[3, () => 1]])], 'args[0].get(3)', 'a function');
    assertRefused(
      [
        new Map<unknown, unknown>([
          [1, 1],
          [{ a: 1 }, () => 1],
        ]),
      ],
      '[...args[0].values()][1]',
      'a function',
    );
    assertRefused([new Map([[() => 1, 1]])], '[...args[0].keys()][0]', 'a function');
    assertRefused({ s: new Set([1, 2, () => 1]) }, '[...args.s][2]', 'a function');
  });

  it('refuses a cycle, naming both ends', () => {
    const node: { self?: unknown } = {};
    node.self = node;
    assertRefused([node], 'args[0].self', 'cycle: args[0].self refers back to args[0]');
    const list: unknown[] = [1];
    list.push({ back: list });
    assertRefused({ list }, 'args.list[1].back', 'cycle: args.list[1].back refers back to args.list');
    const m = new Map<string, unknown>();
    m.set('me', m);
    assertRefused(m, 'args.get("me")', 'refers back to args;');
  });

  it('uses the root label it is given', () => {
    assertRefused({ r: () => 1 }, 'output.r', 'at output.r', 'output');
  });

  it('refuses symbol keys and __proto__ keys', () => {
    assertRefused([{ [Symbol('k')]: 1 }], 'args[0]', 'symbolic keys');
    assertRefused([JSON.parse('{"__proto__": 1}')], 'args[0].__proto__', 'an own property named __proto__');
  });


  it('passes on an error thrown by a getter unchanged', () => {
    const boom = new Error('boom');
    const value = {
      get x(): number {
        throw boom;
      },
    };
    assert.throws(
      () => encodeValue(value, 'args'),
      (err) => err === boom,
    );
  });
});

describe('decodeValue', () => {
  it('refuses text that is not devalue output', () => {
    assert.throws(() => decodeValue('{not json'), RuntimeDataValidationError);
    assert.throws(() => decodeValue('{"a":1}'), RuntimeDataValidationError);
  });

  it('refuses an offload marker, which needs a ValueCodec', () => {
    assert.throws(() => decodeValue(`@offloaded:v1:${'0'.repeat(64)}:10`), /offload marker/);
  });
});

describe('ValueCodec', () => {
  let dataDir = '';
  let blobs: DirBlobStore;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'flyte-serde-'));
    blobs = new DirBlobStore(dataDir);
  });
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  const big = { rows: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `row ${i}`, at: new Date(i) })) };

  it('keeps small values inline, decoded synchronously, with nothing to wait for', () => {
    const codec = new ValueCodec({ blobs });
    const stored = codec.encode([1, 'two'], 'args', 1000);
    assert.equal(stored.text, encodeValue([1, 'two'], 'args').text);
    assert.equal(stored.bytes, Buffer.byteLength(stored.text));
    assert.equal(stored.written, undefined);
    assert.equal(codec.needsLoad(stored.text), false);
    assert.deepStrictEqual(codec.decode(stored.text), [1, 'two']);
  });

  it('counts UTF-8 bytes, not characters, against the limit', () => {
    const codec = new ValueCodec({ blobs: undefined });
    const value = 'é'.repeat(10); // text ["éééééééééé"]: 14 characters, 24 bytes
    assert.equal(codec.encode(value, 'args', 24).bytes, 24);
    assert.throws(() => codec.encode(value, 'args', 23), InlineIOMaxBytesBreached);
  });

  it('offloads a large value to <root>/values, durable once `written` settles, and loads it back', async () => {
    const codec = new ValueCodec({ blobs });
    const direct = encodeValue(big, 'output');
    const stored = codec.encode(big, 'output', 1000);
    const ref = parseOffloadMarker(stored.text);
    assert.ok(ref !== undefined, `expected a marker, got ${stored.text.slice(0, 40)}`);
    assert.ok(stored.text.startsWith('@'));
    assert.ok(stored.text.length < 100);
    assert.equal(stored.hash, direct.hash);
    assert.equal(stored.bytes, Buffer.byteLength(direct.text));
    assert.equal(stored.full, direct.text);
    assert.equal(ref.bytes, stored.bytes);
    assert.equal(ref.sha256, sha256Hex(direct.text));
    assert.ok(stored.written instanceof Promise, 'the write is in flight');
    assert.equal(codec.needsLoad(stored.text), true);
    // While the write is in flight, the marker decodes from memory.
    assert.deepStrictEqual(codec.decode(stored.text), big);
    await stored.written;
    const file = join(dataDir, 'values', `${ref.sha256}.devalue`);
    assert.equal(readFileSync(file, 'utf8'), direct.text);
    assert.deepStrictEqual(await codec.load(stored.text), big);
    // A second codec on the same directory reads it too, asynchronously only.
    const other = new ValueCodec({ blobs: new DirBlobStore(dataDir) });
    assert.throws(() => other.decode(stored.text), /ValueCodec\.load/);
    assert.deepStrictEqual(await other.load(stored.text), big);
  });

  it('writes a value once and leaves no temporary files', async () => {
    const codec = new ValueCodec({ blobs });
    const first = codec.encode(big, 'output', 1000);
    const second = codec.encode(big, 'output', 1000);
    assert.equal(first.text, second.text);
    await first.written;
    await second.written;
    assert.equal(codec.encode(big, 'output', 1000).written, undefined, 'known durable: nothing more to write');
    const files = readdirSync(join(dataDir, 'values'));
    assert.ok(
      files.every((f) => f.endsWith('.devalue')),
      files.join(', '),
    );
  });

  it('names the blob after the text, and keeps the canonical hash, when keys were out of order', async () => {
    const codec = new ValueCodec({ blobs });
    const unsorted = { z: 'z'.repeat(2000), a: 1 };
    const sorted = { a: 1, z: 'z'.repeat(2000) };
    const stored = codec.encode(unsorted, 'args', 100);
    assert.equal(stored.hash, encodeValue(sorted, 'args').hash);
    const ref = parseOffloadMarker(stored.text);
    assert.equal(ref?.sha256, sha256Hex(encodeValue(unsorted, 'args').text));
    await stored.written;
    assert.deepStrictEqual(await codec.load(stored.text), unsorted);
  });

  it('refuses a missing blob, naming its key and the store', async () => {
    const codec = new ValueCodec({ blobs });
    const stored = codec.encode({ lost: 'x'.repeat(500) }, 'output', 100);
    await stored.written;
    const sha = parseOffloadMarker(stored.text)?.sha256 ?? '';
    const file = join(dataDir, 'values', `${sha}.devalue`);
    assert.ok(existsSync(file));
    unlinkSync(file);
    await assert.rejects(
      codec.load(stored.text),
      (err) =>
        err instanceof RuntimeDataValidationError &&
        err.message.includes(sha) &&
        err.message.includes(join(dataDir, 'values')) &&
        err.message.includes('missing'),
    );
  });

  it('refuses a blob whose content does not match its marker', async () => {
    const codec = new ValueCodec({ blobs });
    const stored = codec.encode({ bad: 'y'.repeat(500) }, 'output', 100);
    await stored.written;
    const file = join(dataDir, 'values', `${parseOffloadMarker(stored.text)?.sha256 ?? ''}.devalue`);
    writeFileSync(file, '[1]');
    await assert.rejects(codec.load(stored.text), (err) => err instanceof RuntimeDataValidationError && /corrupt/.test(err.message));
  });

  it('refuses an offloaded value without a blob store', async () => {
    const stored = new ValueCodec({ blobs }).encode(big, 'output', 1000);
    await stored.written;
    await assert.rejects(new ValueCodec({ blobs: undefined }).load(stored.text), RuntimeDataValidationError);
  });

  it('throws InlineIOMaxBytesBreached, with the size and the limit, when there is no blob store', () => {
    const codec = new ValueCodec({ blobs: undefined });
    const bytes = Buffer.byteLength(encodeValue(big, 'output').text);
    assert.throws(
      () => codec.encode(big, 'output', 1000),
      (err) =>
        err instanceof InlineIOMaxBytesBreached &&
        err.message.includes(`${bytes} bytes`) &&
        err.message.includes('at most 1000 bytes') &&
        err.message.startsWith('output:'),
    );
  });

  it('refuses bad data before looking at sizes', () => {
    const codec = new ValueCodec({ blobs: undefined });
    assert.throws(() => codec.encode([() => 1], 'args', 1), RuntimeDataValidationError);
  });

  it('refuses text that is neither devalue output nor a marker', async () => {
    const codec = new ValueCodec({ blobs });
    assert.throws(() => codec.decode('@something else'), RuntimeDataValidationError);
    await assert.rejects(codec.load('@something else'), RuntimeDataValidationError);
  });

  it('uploads File and Dir contents to a shared blob store; what it decodes reads them with the paths gone', async () => {
    const shared = new MemoryBlobStore();
    const codec = new ValueCodec({ blobs: shared });
    const tree = mkdtempSync(join(tmpdir(), 'flyte-serde-files-'));
    writeFileSync(join(tree, 'a.txt'), 'alpha');
    mkdirSync(join(tree, 'sub'));
    writeFileSync(join(tree, 'sub', 'b.txt'), 'beta');
    const file = await File.fromLocal(join(tree, 'a.txt'));
    const dir = await Dir.fromLocal(tree);
    const stored = codec.encode({ file, dir }, 'output', 1_000_000);
    assert.ok(stored.written !== undefined, 'uploads are in flight');
    await stored.written;
    assert.equal(await shared.has(await file.hash()), true);
    assert.equal(await shared.has(await dir.hash()), true, 'the manifest is stored under the directory hash');
    rmSync(tree, { recursive: true, force: true });
    const back = (await new ValueCodec({ blobs: shared }).load(stored.text)) as { file: File; dir: Dir };
    assert.equal(back.file.path, file.path);
    assert.equal(await back.file.text(), 'alpha');
    assert.equal(await back.file.hash(), await file.hash());
    const walked: string[] = [];
    for await (const f of back.dir.walk()) walked.push(`${f.path.slice(tree.length)}=${await f.text()}`);
    assert.deepEqual(walked, ['/a.txt=alpha', '/sub/b.txt=beta']);
    assert.deepEqual(
      (await back.dir.list()).map((e) => `${e instanceof Dir ? 'dir' : 'file'} ${e.name}`),
      ['file a.txt', 'dir sub'],
    );
    assert.equal(await back.dir.hash(), await dir.hash());
    // Passed on again: already in the store, nothing to upload.
    assert.equal(codec.encode(back, 'args', 1_000_000).written, undefined);
  });

  it('fails the upload of a file that changed after it was hashed', async () => {
    const codec = new ValueCodec({ blobs: new MemoryBlobStore() });
    const path = join(dataDir, 'changing.txt');
    writeFileSync(path, 'before');
    const file = await File.fromLocal(path);
    writeFileSync(path, 'after');
    const stored = codec.encode([file], 'args', 1_000_000);
    await assert.rejects(
      stored.written as Promise<void>,
      (err) => err instanceof RuntimeDataValidationError && /changed meanwhile/.test(err.message),
    );
  });
});

describe('errors as values', () => {
  it('travel as flyte errors: code, kind, message and stack kept; the hash ignores the stack', async () => {
    const { RuntimeUserError, TaskTimeoutError } = await import('../src/errors.js');
    class ValueError extends Error {}
    const original = [1, new ValueError('bad item'), new TaskTimeoutError('slow', { actionName: 'a1' })];
    const { text, hash } = encodeValue(original, 'output');
    const back = decodeValue(text) as unknown[];
    assert.equal(back[0], 1);
    assert.ok(back[1] instanceof RuntimeUserError);
    assert.equal((back[1]).code, 'ValueError');
    assert.equal((back[1] as Error).message, 'bad item');
    assert.equal((back[1] as Error).stack, (original[1] as Error).stack);
    assert.ok(back[2] instanceof TaskTimeoutError);
    assert.equal((back[2]).actionName, 'a1');
    const again = [1, new ValueError('bad item'), new TaskTimeoutError('slow', { actionName: 'a1' })];
    assert.equal(encodeValue(again, 'output').hash, hash, 'same errors, other stacks: same hash');
    assert.notEqual(encodeValue([1, new ValueError('other'), again[2]], 'output').hash, hash);
  });
});
