/**
 * The `flyte.io.File` and `flyte.io.Dir` classes (re-exported by `src/io.ts`), kept here so that the codec
 * (`serde.ts`) can encode and revive them without importing the SDK layer.
 *
 * Besides its path, a reference may carry what the codec needs to avoid file I/O on the hot path: its **known
 * content hash** (taken asynchronously by `File.fromLocal` / `Dir.fromLocal`, or recorded when the value was
 * decoded from a store), and, for a value decoded from a store shared across machines (Postgres), the **blob store
 * holding its bytes**, which it reads when its path does not hold the same content on this machine. That state
 * lives in a module-private `WeakMap`, so it adds nothing to the public API.
 * @module
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256OfBytes, type BlobStore } from '../store/blob-store.js';
import { describe } from './duration.js';
import { dirManifest, fileHash, listFiles, manifestHash, type DirManifest } from './content-hash.js';

/** What the codec knows about a reference beyond its path. */
export interface RefState {
  /** The content hash, known without reading the path again. */
  readonly hash: string;
  /** A directory's `[relative path, file hash]` pairs, sorted, when known. */
  readonly entries?: DirManifest;
  /** Where the bytes are when the path does not hold them (a value decoded from a shared store). */
  readonly blobs?: BlobStore;
}

const states = new WeakMap<File | Dir, RefState>();

/** What the codec knows about `ref` beyond its path, if anything. */
export function refState(ref: File | Dir): RefState | undefined {
  return states.get(ref);
}

/** Records what is known about `ref`; returns `ref`. */
export function withRefState<T extends File | Dir>(ref: T, state: RefState): T {
  states.set(ref, state);
  return ref;
}

function toPath(path: string | URL, what: string): string {
  if (path instanceof URL) {
    if (path.protocol !== 'file:')
      throw new TypeError(`${what}: expected a path or a file: URL; received ${path.href}`);
    return fileURLToPath(path);
  }
  if (typeof path !== 'string' || path === '') {
    throw new TypeError(`${what}: expected a non-empty path; received ${describe(path)}`);
  }
  return resolve(path);
}

/**
 * A reference to a local file, as a task input or output.
 *
 * @example
 * ```ts
 * export const checksum = env.task(async function checksum(f: flyte.io.File) {
 *   return { name: f.name, sha256: await f.hash(), bytes: (await f.read()).length };
 * });
 * ```
 */
export class File {
  /** Absolute path of the file (a relative path is resolved against the working directory at creation). */
  readonly path: string;
  /** The last part of the path, e.g. `'data.csv'`. */
  readonly name: string;

  /**
   * A reference to the file at `path`. The file is not touched until it is read, hashed or crosses an action
   * boundary.
   * @throws TypeError when `path` is not a non-empty string or a `file:` URL.
   */
  constructor(path: string | URL) {
    this.path = toPath(path, 'flyte.io.File');
    this.name = basename(this.path);
  }

  /**
   * A reference to the file at `path`; the same as `new File(path)`. Its content is hashed when it first crosses
   * an action boundary (synchronously, memoized per version of the file); {@link File.fromLocal} hashes it ahead,
   * without blocking.
   *
   * @example
   * ```ts
   * const f = flyte.io.File.from('data/input.csv');
   * ```
   */
  static from(path: string | URL): File {
    return new File(path);
  }

  /**
   * A reference to the file at `path`, its content hashed now, asynchronously: passing it to a task then reads
   * nothing on the calling thread. The hash is a snapshot: edit the file afterwards and take a new reference.
   *
   * @throws TypeError (synchronously) as `new File(path)` does.
   * @throws the `fs` error (as a rejection) when the file cannot be read, e.g. `ENOENT` or `EISDIR`.
   * @example
   * ```ts
   * const f = await flyte.io.File.fromLocal('data/input.csv');
   * await flyte.run(wordCount, f);
   * ```
   */
  static fromLocal(path: string | URL): Promise<File> {
    const file = new File(path);
    return fileHash(file.path).then((hash) => withRefState(file, { hash }));
  }

  /**
   * The file's bytes. A file recorded in a shared store (Postgres) is read from its path when that still holds
   * the recorded content, else from the store.
   *
   * @throws the `fs` error (as a rejection) when the file cannot be read and no store holds it.
   */
  async read(): Promise<Buffer> {
    const state = states.get(this);
    if (state?.blobs === undefined) return readFile(this.path);
    const here = await readFile(this.path).catch(() => undefined); // gone or unreadable here: use the store
    if (here !== undefined && sha256OfBytes(here) === state.hash) return here;
    return state.blobs.get(state.hash);
  }

  /**
   * The file's content as text.
   * @param encoding - @default 'utf8'
   */
  async text(encoding: BufferEncoding = 'utf8'): Promise<string> {
    return (await this.read()).toString(encoding);
  }

  /**
   * The SHA-256 (64 hex characters) of the file's content: what the inputs hash and cache keys use for it.
   * Computed when first asked and memoized while the file is unchanged (same inode, size and modification time);
   * for a reference made by {@link File.fromLocal} or decoded from a shared store, the hash it carries.
   */
  hash(): Promise<string> {
    const known = states.get(this)?.hash;
    return known === undefined ? fileHash(this.path) : Promise.resolve(known);
  }
}

/**
 * A reference to a local directory, as a task input or output. Its content hash covers the relative path and
 * content of every file under it (recursively, following symbolic links; empty directories do not count).
 *
 * @example
 * ```ts
 * export const totalBytes = env.task(async function totalBytes(dir: flyte.io.Dir) {
 *   let n = 0;
 *   for await (const f of dir.walk()) n += (await f.read()).length;
 *   return n;
 * });
 * ```
 */
export class Dir {
  /** Absolute path of the directory. */
  readonly path: string;
  /** The last part of the path. */
  readonly name: string;

  /**
   * A reference to the directory at `path`; nothing is read until it is listed, hashed or crosses a boundary.
   * @throws TypeError when `path` is not a non-empty string or a `file:` URL.
   */
  constructor(path: string | URL) {
    this.path = toPath(path, 'flyte.io.Dir');
    this.name = basename(this.path);
  }

  /**
   * A reference to the directory at `path`; the same as `new Dir(path)`. Its content is hashed when it first
   * crosses an action boundary (synchronously); {@link Dir.fromLocal} hashes it ahead, without blocking.
   *
   * @example
   * ```ts
   * const images = flyte.io.Dir.from('data/images');
   * ```
   */
  static from(path: string | URL): Dir {
    return new Dir(path);
  }

  /**
   * A reference to the directory at `path`, the content of every file under it hashed now, asynchronously:
   * passing it to a task then reads nothing on the calling thread. The hash is a snapshot.
   *
   * @throws TypeError (synchronously) as `new Dir(path)` does.
   * @throws the `fs` error (as a rejection) when the directory or a file in it cannot be read.
   * @example
   * ```ts
   * const images = await flyte.io.Dir.fromLocal('data/images');
   * ```
   */
  static fromLocal(path: string | URL): Promise<Dir> {
    const dir = new Dir(path);
    return dirManifest(dir.path).then((entries) => withRefState(dir, { hash: manifestHash(entries), entries }));
  }

  /**
   * The directory's own entries (not recursive), sorted by name: a {@link File} for each file and a {@link Dir}
   * for each subdirectory (symbolic links are followed; other kinds of entries are left out). A directory recorded
   * in a shared store lists what was recorded (empty subdirectories are not kept).
   */
  async list(): Promise<(File | Dir)[]> {
    const stored = await this.#stored();
    if (stored !== undefined) return listStored(this.path, stored.entries, stored.blobs);
    const names = (await readdir(this.path)).sort();
    const out: (File | Dir)[] = [];
    for (const name of names) {
      const path = join(this.path, name);
      const st = await stat(path).catch(() => undefined); // a dangling link: not an entry we can offer
      if (st?.isDirectory() === true) out.push(new Dir(path));
      else if (st?.isFile() === true) out.push(new File(path));
    }
    return out;
  }

  /**
   * Every file under the directory, recursively, in order of relative path. A directory recorded in a shared
   * store yields the files that were recorded, each read from its path or the store (see `File.read`).
   *
   * @example
   * ```ts
   * for await (const f of dir.walk()) console.log(f.path);
   * ```
   */
  async *walk(): AsyncGenerator<File, void, undefined> {
    const stored = await this.#stored();
    if (stored !== undefined) {
      for (const [relative, hash] of stored.entries) {
        yield withRefState(new File(join(this.path, relative)), { hash, blobs: stored.blobs });
      }
      return;
    }
    for (const entry of await listFiles(this.path)) yield new File(entry.path);
  }

  /**
   * SHA-256 (hex) over the sorted `[relative path, file content hash]` pairs of every file under the directory:
   * what the inputs hash and cache keys use for it. Moving the directory does not change it; renaming or editing
   * a file inside does.
   */
  hash(): Promise<string> {
    const known = states.get(this)?.hash;
    return known === undefined ? dirHashOf(this.path) : Promise.resolve(known);
  }

  /** For a directory decoded from a shared store: its recorded entries (read from the store once) and the store. */
  async #stored(): Promise<{ entries: DirManifest; blobs: BlobStore } | undefined> {
    const state = states.get(this);
    if (state?.blobs === undefined) return undefined;
    const entries = state.entries ?? parseManifest(await state.blobs.get(state.hash), state.hash);
    if (state.entries === undefined) states.set(this, { ...state, entries });
    return { entries, blobs: state.blobs };
  }
}

async function dirHashOf(path: string): Promise<string> {
  return manifestHash(await dirManifest(path));
}

/**
 * Reads a directory manifest blob (the JSON text whose SHA-256 is the directory's hash).
 * @throws TypeError when the blob is not a list of `[relative path, hash]` pairs.
 */
function parseManifest(bytes: Buffer, key: string): DirManifest {
  const parsed: unknown = JSON.parse(bytes.toString('utf8'));
  const ok =
    Array.isArray(parsed) &&
    parsed.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string');
  if (!ok) throw new TypeError(`expected the directory manifest ${key} as [[relative path, hash], ...]; received another JSON value`);
  return parsed as DirManifest;
}

/** The direct entries of a recorded directory at `root`, from its manifest. */
function listStored(root: string, entries: DirManifest, blobs: BlobStore): (File | Dir)[] {
  const files = new Map<string, string>();
  const dirs = new Map<string, [string, string][]>();
  for (const [relative, hash] of entries) {
    const slash = relative.indexOf('/');
    if (slash < 0) files.set(relative, hash);
    else {
      const name = relative.slice(0, slash);
      let sub = dirs.get(name);
      if (sub === undefined) dirs.set(name, (sub = []));
      sub.push([relative.slice(slash + 1), hash]);
    }
  }
  const names = [...new Set([...files.keys(), ...dirs.keys()])].sort();
  return names.map((name) => {
    const hash = files.get(name);
    if (hash !== undefined) return withRefState(new File(join(root, name)), { hash, blobs });
    const sub = dirs.get(name) as [string, string][];
    return withRefState(new Dir(join(root, name)), { hash: manifestHash(sub), entries: sub, blobs });
  });
}
