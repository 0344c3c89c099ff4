/**
 * `flyte.io`: references to files and directories that cross action boundaries.
 *
 * A {@link File} or {@link Dir} is passed to and returned from tasks like any other value. It crosses the
 * boundary as a **reference** (its absolute path and the content hash at that moment), not as its bytes, and
 * its part in the inputs hash is the **content hash only**: the same bytes under another path give the same
 * cache key, and editing the file gives a new one.
 *
 * Local mode reads the files where they are, so a file must exist when it crosses a boundary (else a
 * `RuntimeDataValidationError` naming the argument and the path) and should not be changed while a run uses it.
 * Encoding is synchronous, so the codec hashes a file's content synchronously when it crosses a boundary;
 * hashes are memoized per version of the file (same inode, size and modification time), so a large file that
 * does not change is read once per process.
 *
 * @example
 * ```ts
 * import * as flyte from 'flyte-ts';
 *
 * export const wordCount = env.task({ cache: 'auto' }, async function wordCount(doc: flyte.io.File) {
 *   return (await doc.text()).split(/\s+/).filter(Boolean).length;
 * });
 *
 * await flyte.run(wordCount, flyte.io.File.from('README.md'));
 * ```
 * @module
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from './internal/duration.js';
import { dirHash, fileHash, listFiles } from './internal/content-hash.js';

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
   * A reference to the file at `path`; the same as `new File(path)`.
   *
   * @example
   * ```ts
   * const f = flyte.io.File.from('data/input.csv');
   * ```
   */
  static from(path: string | URL): File {
    return new File(path);
  }

  /** The file's bytes. */
  read(): Promise<Buffer> {
    return readFile(this.path);
  }

  /**
   * The file's content as text.
   * @param encoding - @default 'utf8'
   */
  text(encoding: BufferEncoding = 'utf8'): Promise<string> {
    return readFile(this.path, encoding);
  }

  /**
   * The SHA-256 (64 hex characters) of the file's content: what the inputs hash and cache keys use for it.
   * Computed when first asked and memoized while the file is unchanged (same inode, size and modification time).
   */
  hash(): Promise<string> {
    return fileHash(this.path);
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
   * A reference to the directory at `path`; the same as `new Dir(path)`.
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
   * The directory's own entries (not recursive), sorted by name: a {@link File} for each file and a {@link Dir}
   * for each subdirectory (symbolic links are followed; other kinds of entries are left out).
   */
  async list(): Promise<(File | Dir)[]> {
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
   * Every file under the directory, recursively, in order of relative path.
   *
   * @example
   * ```ts
   * for await (const f of dir.walk()) console.log(f.path);
   * ```
   */
  async *walk(): AsyncGenerator<File, void, undefined> {
    for (const entry of await listFiles(this.path)) yield new File(entry.path);
  }

  /**
   * SHA-256 (hex) over the sorted `[relative path, file content hash]` pairs of every file under the directory:
   * what the inputs hash and cache keys use for it. Moving the directory does not change it; renaming or editing
   * a file inside does.
   */
  hash(): Promise<string> {
    return dirHash(this.path);
  }
}
