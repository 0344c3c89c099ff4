/**
 * One conformance suite for the BlobStore implementations (directory, memory, Postgres): content addressing,
 * idempotent and concurrent puts, clear errors for a missing or corrupt blob, and (Postgres) chunked blobs.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  BlobCorruptError,
  BlobNotFoundError,
  DirBlobStore,
  MemoryBlobStore,
  PgBlobStore,
  PostgresStore,
  type BlobStore,
} from '../src/store/index.js';
import { dropSchema, freshSchema, peekPostgres, postgresSkip, urlWithSchema } from './support/postgres.js';

const sha = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');
const MISSING = sha('never stored');

/** The cases every BlobStore passes; `open` gives a fresh, empty store and a cleanup. */
function blobStoreConformance(name: string, open: () => Promise<{ blobs: BlobStore; close: () => Promise<void> }>): void {
  describe(`${name} (BlobStore conformance)`, () => {
    const opened: (() => Promise<void>)[] = [];
    const fresh = async (): Promise<BlobStore> => {
      const { blobs, close } = await open();
      opened.push(close);
      return blobs;
    };
    after(async () => {
      for (const close of opened) await close();
    });

    it('stores bytes and text under their SHA-256 and gives them back', async () => {
      const blobs = await fresh();
      const bytes = new Uint8Array([0, 1, 2, 255, 254]);
      const k1 = await blobs.put(bytes);
      assert.equal(k1, sha(bytes));
      assert.deepEqual([...(await blobs.get(k1))], [...bytes]);
      const k2 = await blobs.put('héllo ☃');
      assert.equal(k2, sha(Buffer.from('héllo ☃', 'utf8')));
      assert.equal((await blobs.get(k2)).toString('utf8'), 'héllo ☃');
      const k3 = await blobs.put('');
      assert.equal((await blobs.get(k3)).length, 0, 'an empty blob is a blob');
      assert.equal(await blobs.has(k1), true);
      assert.equal(await blobs.has(MISSING), false);
    });

    it('is idempotent: the same bytes, put again or at once from many callers, are one blob', async () => {
      const blobs = await fresh();
      const text = 'x'.repeat(10_000);
      const keys = await Promise.all(Array.from({ length: 8 }, () => blobs.put(text)));
      assert.equal(new Set(keys).size, 1);
      assert.equal(await blobs.put(text), keys[0]);
      assert.equal((await blobs.get(keys[0] as string)).toString(), text);
    });

    it('rejects a missing key with BlobNotFoundError naming the key, and a malformed key with RangeError', async () => {
      const blobs = await fresh();
      await assert.rejects(
        blobs.get(MISSING),
        (err) => err instanceof BlobNotFoundError && err.key === MISSING && err.message.includes(MISSING),
      );
      await assert.rejects(blobs.get('../etc/passwd'), RangeError);
      await assert.rejects(blobs.has('ABC'), RangeError);
    });

    it('keeps a copy: changing the buffer after put does not change the blob', async () => {
      const blobs = await fresh();
      const buffer = Buffer.from('original');
      const key = await blobs.put(buffer);
      buffer.write('changed!');
      assert.equal((await blobs.get(key)).toString(), 'original');
    });
  });
}

blobStoreConformance('MemoryBlobStore', () =>
  Promise.resolve({ blobs: new MemoryBlobStore(), close: () => Promise.resolve() }),
);

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'flyte-blobs-'));
  dirs.push(d);
  return d;
}

blobStoreConformance('DirBlobStore', () => {
  const blobs = new DirBlobStore(freshDir());
  return Promise.resolve({ blobs, close: () => blobs.close() });
});

describe('DirBlobStore', () => {
  it('keeps the layout of older roots, <root>/values/<sha256>.devalue, with no temporary files left', async () => {
    const root = freshDir();
    const blobs = new DirBlobStore(root);
    const key = await blobs.put('[1,2,3]');
    assert.deepEqual(readdirSync(join(root, 'values')), [`${key}.devalue`]);
    // A value written by an older flyte-ts (same name) reads back.
    const old = '["from an older root"]';
    writeFileSync(join(root, 'values', `${sha(old)}.devalue`), old);
    assert.equal((await new DirBlobStore(root).get(sha(old))).toString(), old);
  });

  it('rejects a blob whose bytes do not match its key with BlobCorruptError', async () => {
    const root = freshDir();
    const blobs = new DirBlobStore(root);
    const key = await blobs.put('good');
    writeFileSync(join(root, 'values', `${key}.devalue`), 'bad');
    await assert.rejects(blobs.get(key), (err) => err instanceof BlobCorruptError && /corrupt/.test(err.message));
  });
});

const skip = await postgresSkip();

describe('PgBlobStore', { skip }, () => {
  const schemas: string[] = [];
  const stores: PostgresStore[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const s of schemas) await dropSchema(s);
  });
  /** A PgBlobStore on a fresh schema migrated by a PostgresStore, as `flyte.init({ store })` makes them. */
  const open = async (chunkBytes?: number): Promise<{ blobs: PgBlobStore; schema: string }> => {
    const schema = freshSchema();
    schemas.push(schema);
    const url = urlWithSchema(schema);
    const store = PostgresStore.connect(url);
    stores.push(store);
    return { blobs: new PgBlobStore(url, { ready: () => store.ready(), chunkBytes }), schema };
  };

  blobStoreConformance('PgBlobStore', async () => {
    const { blobs } = await open();
    return { blobs, close: () => blobs.close() };
  });

  it('cuts a blob into chunks of at most chunkBytes and joins them back', async () => {
    const { blobs, schema } = await open(1000);
    const bytes = Buffer.alloc(4500);
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = (i * 31) % 251;
    const key = await blobs.put(bytes);
    const rows = await peekPostgres<{ seq: number; n: number }>(
      `SELECT seq, length(data) AS n FROM "${schema}".blob_chunks WHERE key = $1 ORDER BY seq`,
      [key],
    );
    assert.deepEqual(
      rows.map((r) => [r.seq, r.n]),
      [
        [0, 1000],
        [1, 1000],
        [2, 1000],
        [3, 1000],
        [4, 500],
      ],
    );
    assert.ok((await blobs.get(key)).equals(bytes));
    await blobs.close();
  });

  it('two instances on one schema share blobs; a torn blob (a chunk lost) is reported, not returned', async () => {
    const { blobs, schema } = await open(100);
    const other = new PgBlobStore(urlWithSchema(schema), { ready: () => Promise.resolve() });
    const key = await blobs.put('y'.repeat(350));
    assert.equal((await other.get(key)).toString(), 'y'.repeat(350));
    await peekPostgres(`DELETE FROM "${schema}".blob_chunks WHERE key = $1 AND seq = 2`, [key]);
    await assert.rejects(other.get(key), (err) => err instanceof BlobNotFoundError && /chunk 2 of 4/.test(err.message));
    await Promise.all([blobs.close(), other.close()]);
  });

  it('rejects use after close', async () => {
    const { blobs } = await open();
    await blobs.close();
    await assert.rejects(blobs.put('x'), /used after close/);
  });
});
