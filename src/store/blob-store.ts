/**
 * Content-addressed storage of the bytes that do not fit in a run store's rows: offloaded values (past
 * `maxInlineIoBytes`) and the content of `flyte.io.File` / `flyte.io.Dir` values.
 *
 * A blob's key is the SHA-256 (64 lower-case hex characters) of its bytes, so a put is idempotent: writing the
 * same bytes twice, from one process or from many at once, stores them once and yields the same key. Readers
 * check the bytes against the key, so a torn or edited blob is reported, never returned.
 *
 * Implementations:
 * - {@link DirBlobStore}: files `<root>/values/<key>.devalue` (the layout older `.flyte/` directories already
 *   have), for the SQLite store, written through a temporary file and a rename;
 * - `PgBlobStore` (`postgres/pg-blob-store.ts`): a table of `bytea` chunks in the Postgres store's schema, so that
 *   a Postgres store is complete by itself;
 * - {@link MemoryBlobStore}: a map, for tests.
 *
 * @example
 * ```ts
 * const blobs = new DirBlobStore('.flyte');
 * const key = await blobs.put('[1,2,3]');
 * (await blobs.get(key)).toString('utf8'); // '[1,2,3]'
 * ```
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What a blob store keeps. */
export interface BlobStore {
  /** Where blobs live, for messages, e.g. `/home/me/.flyte/values` or `postgres://db/flyte?schema=ci (blobs)`. */
  readonly description: string;
  /**
   * `true` when blobs live on this machine's filesystem, next to the files that `flyte.io.File` values name: then
   * those files are read where they are and not copied into the store. `false` for a store shared across
   * machines (Postgres): file contents are uploaded when they cross an action boundary.
   */
  readonly local: boolean;
  /**
   * Stores `data` (a string is stored as its UTF-8 bytes) and resolves with its key, the SHA-256 hex of the bytes.
   * Resolves once the blob is durable: a reader in any process that shares the store can then get it. Idempotent:
   * storing bytes that are already there does nothing more.
   *
   * @throws the store's I/O or database error (as a rejection) when the blob cannot be written.
   */
  put(data: Uint8Array | string): Promise<string>;
  /**
   * The bytes stored under `key`.
   *
   * @throws {@link BlobNotFoundError} (as a rejection) when there is no blob with that key.
   * @throws {@link BlobCorruptError} (as a rejection) when the stored bytes do not hash to `key`.
   */
  get(key: string): Promise<Buffer>;
  /**
   * Resolves `true` when a complete blob is stored under `key`.
   * @throws RangeError (as a rejection, like every method here) when `key` is not 64 lower-case hex characters.
   */
  has(key: string): Promise<boolean>;
  /** Releases connections; the store is not used afterwards. */
  close(): Promise<void>;
}

/** Thrown by {@link BlobStore.get} when no blob has the key asked for. */
export class BlobNotFoundError extends Error {
  /** The key asked for. */
  readonly key: string;

  constructor(key: string, where: string) {
    super(`expected a blob with key ${key} in ${where}; received none (it was never written, or was deleted)`);
    this.name = 'BlobNotFoundError';
    this.key = key;
  }
}

/** Thrown by {@link BlobStore.get} when a stored blob's bytes do not hash to its key. */
export class BlobCorruptError extends Error {
  /** The key asked for. */
  readonly key: string;

  constructor(key: string, actual: string, where: string) {
    super(
      `blob ${key} in ${where} is corrupt: expected bytes with SHA-256 ${key}; received bytes with SHA-256 ${actual}`,
    );
    this.name = 'BlobCorruptError';
    this.key = key;
  }
}

const KEY = /^[0-9a-f]{64}$/;

/**
 * Checks a blob key: 64 lower-case hex characters.
 * @throws RangeError when `key` is not one.
 */
export function checkBlobKey(key: string): string {
  if (typeof key !== 'string' || !KEY.test(key)) {
    throw new RangeError(`expected a blob key (64 lower-case hex characters); received ${JSON.stringify(key)}`);
  }
  return key;
}

/** The SHA-256 (64 lower-case hex characters) of `bytes`: the key a blob of them is stored under. */
export function sha256OfBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `data` as bytes: a string as its UTF-8 encoding, a typed array as a Buffer over the same memory. */
export function blobBytes(data: Uint8Array | string): Buffer {
  return typeof data === 'string'
    ? Buffer.from(data, 'utf8')
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Returns `bytes` when they hash to `key`.
 * @throws {@link BlobCorruptError} when they do not.
 */
export function verifiedBlob(key: string, bytes: Buffer, where: string): Buffer {
  const actual = sha256OfBytes(bytes);
  if (actual !== key) throw new BlobCorruptError(key, actual, where);
  return bytes;
}

/**
 * Blobs as files `<root>/values/<key>.devalue`, one per blob (the name is historical: any bytes), written through
 * a temporary file and a rename, so that a reader never sees a partial file and concurrent writers of the same
 * blob are harmless. All I/O is asynchronous (`fs/promises`).
 *
 * @example
 * ```ts
 * const blobs = new DirBlobStore('/tmp/flyte-root');
 * await blobs.put(new Uint8Array([1, 2, 3]));
 * ```
 */
export class DirBlobStore implements BlobStore {
  readonly local = true;
  /** The directory holding the blobs: `<root>/values`. */
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, 'values');
  }

  get description(): string {
    return this.dir;
  }

  async put(data: Uint8Array | string): Promise<string> {
    const bytes = blobBytes(data);
    const key = sha256OfBytes(bytes);
    const file = this.#fileOf(key);
    if (await exists(file)) return key; // content-addressed: the same name means the same bytes
    await mkdir(this.dir, { recursive: true });
    const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, bytes, { flag: 'wx' });
      await rename(temp, file);
    } catch (err) {
      // The temporary file may never have been created; the original error is the one to report.
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    return key;
  }

  async get(key: string): Promise<Buffer> {
    const file = this.#fileOf(checkBlobKey(key));
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(key, this.dir);
      throw err;
    }
    return verifiedBlob(key, bytes, file);
  }

  async has(key: string): Promise<boolean> {
    return exists(this.#fileOf(checkBlobKey(key)));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #fileOf(key: string): string {
    return join(this.dir, `${key}.devalue`);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Blobs in a map, for tests: nothing survives the process. `local` is `false`, so files are uploaded into it as
 * into a shared store.
 */
export class MemoryBlobStore implements BlobStore {
  readonly local = false;
  readonly description = 'memory (blobs)';
  readonly #blobs = new Map<string, Buffer>();

  async put(data: Uint8Array | string): Promise<string> {
    const bytes = Buffer.from(blobBytes(data)); // a copy: the caller may reuse its buffer
    const key = sha256OfBytes(bytes);
    if (!this.#blobs.has(key)) this.#blobs.set(key, bytes);
    return key;
  }

  async get(key: string): Promise<Buffer> {
    const bytes = this.#blobs.get(checkBlobKey(key));
    if (bytes === undefined) throw new BlobNotFoundError(key, this.description);
    return Buffer.from(bytes);
  }

  async has(key: string): Promise<boolean> {
    return this.#blobs.has(checkBlobKey(key));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
