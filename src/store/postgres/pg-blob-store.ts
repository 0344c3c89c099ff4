/**
 * Blobs in the Postgres store's schema (tables `blobs` and `blob_chunks`, Postgres migration 3), so that a
 * Postgres store holds everything a run needs: offloaded values and the content of `flyte.io.File` / `Dir`.
 *
 * A blob is cut into chunks of at most {@link PgBlobStoreOptions.chunkBytes} bytes, one `bytea` row each, and
 * its `blobs` row (size and chunk count) is written last, in the same transaction: a blob that has a `blobs` row
 * is complete. Chunks keep each row far below a `bytea`'s 1 GiB limit and the driver's memory bounded per row,
 * so values past 1 GiB can be stored.
 * @module
 */
import type pg from 'pg';
import {
  BlobNotFoundError,
  blobBytes,
  checkBlobKey,
  sha256OfBytes,
  verifiedBlob,
  type BlobStore,
} from '../blob-store.js';
import { quoteIdent } from './migrations.js';
import { parsePostgresUrl } from './postgres-store.js';

/** Options of {@link PgBlobStore}. */
export interface PgBlobStoreOptions {
  /**
   * Resolves once the schema is migrated (the run store's `ready()`): the blob store waits for it before its first
   * query, and fails as it does.
   */
  readonly ready: () => Promise<void>;
  /**
   * The largest chunk, in bytes. The driver sends a `bytea` parameter as hex text (twice its size), so a chunk
   * costs about three times its size in memory while it is written.
   * @default 16 MiB
   */
  readonly chunkBytes?: number;
  /** Connections in the blob store's own pool. @default 2 */
  readonly poolSize?: number;
}

const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * A {@link BlobStore} on the schema of a Postgres store URL (`postgres://...?schema=NAME`), with its own small
 * pool so that large blob transfers do not hold the run store's connections.
 *
 * @example
 * ```ts
 * const store = PostgresStore.connect(url);
 * const blobs = new PgBlobStore(url, { ready: () => store.ready() });
 * const key = await blobs.put(bigText);
 * ```
 */
export class PgBlobStore implements BlobStore {
  readonly local = false;
  readonly description: string;
  readonly #connectionString: string;
  readonly #blobs: string;
  readonly #chunks: string;
  readonly #chunkBytes: number;
  readonly #poolSize: number;
  readonly #ready: () => Promise<void>;
  #pool: Promise<pg.Pool> | undefined;
  #closed = false;

  /**
   * @throws {@link InitializationError} when the URL or its schema name is malformed.
   * @throws RangeError when `chunkBytes` or `poolSize` is not a positive integer.
   */
  constructor(url: string, options: PgBlobStoreOptions) {
    const { connectionString, schema, description } = parsePostgresUrl(url);
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const poolSize = options.poolSize ?? 2;
    for (const [name, value] of [
      ['chunkBytes', chunkBytes],
      ['poolSize', poolSize],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`PgBlobStore: ${name}: expected a positive integer; received ${String(value)}`);
      }
    }
    this.description = `${description} (blobs)`;
    this.#connectionString = connectionString;
    this.#blobs = `${quoteIdent(schema)}.blobs`;
    this.#chunks = `${quoteIdent(schema)}.blob_chunks`;
    this.#chunkBytes = chunkBytes;
    this.#poolSize = poolSize;
    this.#ready = options.ready;
  }

  async put(data: Uint8Array | string): Promise<string> {
    const bytes = blobBytes(data);
    const key = sha256OfBytes(bytes);
    const pool = await this.#db();
    if (await this.#hasIn(pool, key)) return key;
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const chunks = Math.max(1, Math.ceil(bytes.length / this.#chunkBytes));
      for (let seq = 0; seq < chunks; seq += 1) {
        const part = bytes.subarray(seq * this.#chunkBytes, (seq + 1) * this.#chunkBytes);
        await client.query(`INSERT INTO ${this.#chunks} (key, seq, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
          key,
          seq,
          part,
        ]);
      }
      await client.query(
        `INSERT INTO ${this.#blobs} (key, bytes, chunks, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        [key, bytes.length, chunks, Date.now()],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined); // the original error is the one to report
      throw err;
    } finally {
      client.release();
    }
    return key;
  }

  async get(key: string): Promise<Buffer> {
    checkBlobKey(key);
    const pool = await this.#db();
    const head = await pool.query<{ chunks: number }>(`SELECT chunks FROM ${this.#blobs} WHERE key = $1`, [key]);
    const chunks = head.rows[0]?.chunks;
    if (chunks === undefined) throw new BlobNotFoundError(key, this.description);
    const parts: Buffer[] = [];
    // One chunk per query: only one chunk at a time is in flight from the server.
    for (let seq = 0; seq < chunks; seq += 1) {
      const row = await pool.query<{ data: Buffer }>(`SELECT data FROM ${this.#chunks} WHERE key = $1 AND seq = $2`, [
        key,
        seq,
      ]);
      const data = row.rows[0]?.data;
      if (data === undefined) throw new BlobNotFoundError(key, `${this.description}, chunk ${seq} of ${chunks}`);
      parts.push(data);
    }
    return verifiedBlob(key, parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts), this.description);
  }

  async has(key: string): Promise<boolean> {
    checkBlobKey(key);
    return this.#hasIn(await this.#db(), key);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool !== undefined) await (await pool.catch(() => undefined))?.end();
  }

  async #hasIn(pool: pg.Pool, key: string): Promise<boolean> {
    const r = await pool.query(`SELECT 1 FROM ${this.#blobs} WHERE key = $1`, [key]);
    return r.rows.length > 0;
  }

  #db(): Promise<pg.Pool> {
    if (this.#closed) return Promise.reject(new Error(`${this.description}: used after close()`));
    this.#pool ??= (async () => {
      await this.#ready();
      const { default: driver } = await import('pg');
      const pool = new driver.Pool({
        connectionString: this.#connectionString,
        max: this.#poolSize,
        // As the run store's pool: a process stopped inside a transaction must not hold its locks for long.
        idle_in_transaction_session_timeout: 10_000,
        allowExitOnIdle: true,
      });
      // An idle connection that breaks emits 'error' on the pool; the next query opens a new one.
      pool.on('error', () => undefined);
      return pool;
    })();
    const pool = this.#pool;
    // A failed start is not kept: the next call tries again (the run store reports its own failure).
    pool.catch(() => {
      if (this.#pool === pool) this.#pool = undefined;
    });
    return pool;
  }
}
