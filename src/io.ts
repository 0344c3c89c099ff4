/**
 * `flyte.io`: references to files and directories that cross action boundaries.
 *
 * A {@link File} or {@link Dir} is passed to and returned from tasks like any other value. It crosses the
 * boundary as a **reference** (its absolute path and the content hash at that moment), and its part in the
 * inputs hash is the **content hash only**: the same bytes under another path give the same cache key, and
 * editing the file gives a new one.
 *
 * With the SQLite store, files are read where they are, so a file must exist when it crosses a boundary (else a
 * `RuntimeDataValidationError` naming the argument and the path) and should not be changed while a run uses it.
 * With a store shared across machines (Postgres), its content is also uploaded to the store's blobs when it
 * crosses a boundary (once per content), and a reference read back from the store reads its path if that still
 * holds the recorded content, else the stored bytes: no shared directory is needed.
 *
 * Hashing: `File.from(path)` / `Dir.from(path)` hash the content when the reference first crosses a boundary,
 * synchronously (encoding is synchronous, since a child's name derives from its inputs' hash); hashes are memoized
 * per version of the file (same inode, size and modification time). `await File.fromLocal(path)` /
 * `await Dir.fromLocal(path)` hash ahead, without blocking, and the boundary then reads nothing.
 *
 * @example
 * ```ts
 * import * as flyte from 'flyte-ts';
 *
 * export const wordCount = env.task({ cache: 'auto' }, async function wordCount(doc: flyte.io.File) {
 *   return (await doc.text()).split(/\s+/).filter(Boolean).length;
 * });
 *
 * await flyte.run(wordCount, await flyte.io.File.fromLocal('README.md'));
 * ```
 * @module
 */
export { Dir, File } from './internal/io-values.js';
