/**
 * Content hashes of files and directories, for `flyte.io.File` / `flyte.io.Dir` and the codec's canonical hashes.
 *
 * A file's hash is the SHA-256 of its bytes; a directory's is the SHA-256 of its manifest, the sorted list of
 * (relative path, content hash) of every file under it (see {@link manifestHash}). Both come in an asynchronous
 * form, for `File.fromLocal` / `Dir.fromLocal`, `file.hash()` and `dir.hash()`, and a synchronous one: the codec's
 * fallback for a reference made with `File.from` / `Dir.from` and never hashed ahead (encoding is synchronous,
 * because a child's name is derived from its inputs' hash before the call returns). A reference hashed ahead, or
 * decoded from a store, carries its hash, and the codec reads nothing for it.
 *
 * Hashes are memoized per version of a file: the key is its path and the value is only reused while the file's
 * device, inode, size and modification time are unchanged. A file modified less than {@link RACY_MS} before it was
 * hashed is not memoized (the "racy git" rule): the clock that stamps modification times is coarse, so an edit
 * right after the hash could leave the stamp unchanged.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, readdirSync, realpathSync, statSync, type BigIntStats } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from './hash.js';

/** How old (ms) a file's modification time must be, when it is hashed, for the hash to be memoized. */
const RACY_MS = 1000;

/** At most this many memoized file hashes; the oldest are dropped first. */
const MAX_MEMO = 10_000;

const memo = new Map<string, { readonly stamp: string; readonly hash: string }>();

function stampOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

function recall(path: string, st: BigIntStats): string | undefined {
  const known = memo.get(path);
  return known !== undefined && known.stamp === stampOf(st) ? known.hash : undefined;
}

function remember(path: string, st: BigIntStats, hash: string, hashedAt: number): void {
  if (Number(st.mtimeNs / 1_000_000n) > hashedAt - RACY_MS) return;
  memo.delete(path);
  if (memo.size >= MAX_MEMO) memo.delete(memo.keys().next().value as string);
  memo.set(path, { stamp: stampOf(st), hash });
}

/** An `EISDIR`/`ENOTDIR`-style error for a path of the wrong kind. */
function wrongKind(path: string, code: 'EISDIR' | 'ENOTDIR', message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}, '${path}'`), { code, path });
}

/**
 * The SHA-256 (hex) of a file's bytes, read synchronously (or memoized, see the module notes).
 * @throws the `fs` error (`ENOENT`, `EACCES`, `EISDIR`, ...) when the file cannot be read.
 */
export function fileHashSync(path: string): string {
  const st = statSync(path, { bigint: true });
  if (st.isDirectory()) throw wrongKind(path, 'EISDIR', 'expected a file, found a directory');
  const known = recall(path, st);
  if (known !== undefined) return known;
  const hashedAt = Date.now();
  const hash = createHash('sha256').update(readFileSync(path)).digest('hex');
  remember(path, st, hash, hashedAt);
  return hash;
}

/** {@link fileHashSync}, streaming the file without blocking the event loop. */
export async function fileHash(path: string): Promise<string> {
  const st = await stat(path, { bigint: true });
  if (st.isDirectory()) throw wrongKind(path, 'EISDIR', 'expected a file, found a directory');
  const known = recall(path, st);
  if (known !== undefined) return known;
  const hashedAt = Date.now();
  const hasher = createHash('sha256');
  for await (const chunk of createReadStream(path)) hasher.update(chunk as Buffer);
  const hash = hasher.digest('hex');
  remember(path, st, hash, hashedAt);
  return hash;
}

/** One file under a directory: its path relative to the directory (with `/`) and its absolute path. */
export interface DirEntryFile {
  readonly relative: string;
  readonly path: string;
}

/**
 * Every file under `root`, recursively, sorted by relative path (UTF-16 code unit order, the same everywhere).
 * Symbolic links are followed; a directory reached twice through links is walked once. Empty directories leave
 * no trace.
 * @throws the `fs` error when `root` is missing or is not a directory.
 */
export function listFilesSync(root: string): DirEntryFile[] {
  if (!statSync(root).isDirectory()) throw wrongKind(root, 'ENOTDIR', 'expected a directory, found a file');
  const out: DirEntryFile[] = [];
  const seen = new Set<string>();
  const visit = (dir: string, prefix: string): void => {
    const real = realpathSync(dir);
    if (seen.has(real)) return;
    seen.add(real);
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const relative = prefix === '' ? name : `${prefix}/${name}`;
      const st = statSync(path, { throwIfNoEntry: false });
      if (st === undefined) continue; // a dangling link, or removed while we walk: not part of the content
      if (st.isDirectory()) visit(path, relative);
      else if (st.isFile()) out.push({ relative, path });
    }
  };
  visit(root, '');
  return out.sort(byRelative);
}

/** {@link listFilesSync}, without blocking the event loop. */
export async function listFiles(root: string): Promise<DirEntryFile[]> {
  if (!(await stat(root)).isDirectory()) throw wrongKind(root, 'ENOTDIR', 'expected a directory, found a file');
  const out: DirEntryFile[] = [];
  const seen = new Set<string>();
  const visit = async (dir: string, prefix: string): Promise<void> => {
    const real = await realpath(dir);
    if (seen.has(real)) return;
    seen.add(real);
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const relative = prefix === '' ? name : `${prefix}/${name}`;
      const st = await stat(path).catch(() => undefined); // dangling link or removed meanwhile: skip it
      if (st === undefined) continue;
      if (st.isDirectory()) await visit(path, relative);
      else if (st.isFile()) out.push({ relative, path });
    }
  };
  await visit(root, '');
  return out.sort(byRelative);
}

function byRelative(a: DirEntryFile, b: DirEntryFile): number {
  return a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0;
}

/** A directory's content: the `[relative path, file content hash]` pair of every file under it, by relative path. */
export type DirManifest = readonly (readonly [string, string])[];

/**
 * The content hash of a directory from its manifest: the SHA-256 of the manifest as JSON text. That text is also
 * what a shared store keeps for the directory, so the blob of a directory's manifest has the directory's hash as
 * its key.
 */
export function manifestHash(entries: DirManifest): string {
  return sha256Hex(manifestText(entries));
}

/** The manifest as the JSON text that {@link manifestHash} hashes. */
export function manifestText(entries: DirManifest): string {
  return JSON.stringify(entries);
}

/**
 * The manifest of a directory, read synchronously: the codec's fallback for a `Dir` whose content was not hashed
 * ahead (`Dir.fromLocal`). Renaming a file inside the directory changes its hash; moving the whole directory
 * does not.
 * @throws the `fs` error when the directory or one of its files cannot be read.
 */
export function dirManifestSync(root: string): DirManifest {
  return listFilesSync(root).map((f) => [f.relative, fileHashSync(f.path)] as const);
}

/** {@link dirManifestSync}, without blocking the event loop. */
export async function dirManifest(root: string): Promise<DirManifest> {
  const files = await listFiles(root);
  const entries: (readonly [string, string])[] = [];
  for (const f of files) entries.push([f.relative, await fileHash(f.path)]);
  return entries;
}

/** The content hash of a directory, read synchronously: {@link manifestHash} of {@link dirManifestSync}. */
export function dirHashSync(root: string): string {
  return manifestHash(dirManifestSync(root));
}
