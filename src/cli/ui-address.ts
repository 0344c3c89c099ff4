/**
 * Where a running `flyte ui` can be reached, so that the links of runs (`run.url`) point at it.
 *
 * `flyte ui` writes its address beside the SQLite file it serves (`flyte.db` → `flyte.db-ui.json`, like SQLite's
 * own `-wal` and `-shm` files) and removes it when it stops. Every command that opens that store and has no
 * `--ui-url`, `FLYTE_UI_URL` or config `uiUrl` uses it; a file left by a process that died is ignored.
 * @module
 */
import { hostname } from 'node:os';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** What `flyte ui` writes. */
interface UiAddressFile {
  readonly url: string;
  readonly pid: number;
  readonly host: string;
}

/** The address file for a store description (`sqlite:/abs/flyte.db`); none for other stores. */
export function uiAddressPath(storeDescription: string): string | undefined {
  if (!storeDescription.startsWith('sqlite:')) return undefined;
  const path = storeDescription.slice('sqlite:'.length);
  return path === ':memory:' || path === '' ? undefined : `${path}-ui.json`;
}

/**
 * Records that this process serves the UI of the store at `url`; returns a function that removes the record
 * (if it is still this process's).
 *
 * @example
 * ```ts
 * const forget = writeUiAddress(runtime().store.description, ui.url);
 * // ... serve ...
 * forget();
 * ```
 */
export function writeUiAddress(storeDescription: string, url: string): () => void {
  const path = uiAddressPath(storeDescription);
  if (path === undefined) return () => undefined;
  const record: UiAddressFile = { url, pid: process.pid, host: hostname() };
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(record)}\n`);
  renameSync(temp, path);
  return () => {
    // Another `flyte ui` over the same store may have written its own address since: leave that one.
    if (readRecord(path)?.pid === process.pid) rmSync(path, { force: true });
  };
}

/** The address of the live `flyte ui` serving the store, if there is one. */
export function readUiAddress(storeDescription: string): string | undefined {
  const path = uiAddressPath(storeDescription);
  const record = path === undefined ? undefined : readRecord(path);
  if (record === undefined || record.host !== hostname() || !alive(record.pid)) return undefined;
  return record.url;
}

function readRecord(path: string): UiAddressFile | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    // No UI is serving the store (no file), or the file is unreadable: either way there is no address to use.
    return undefined;
  }
  const r = parsed as Partial<UiAddressFile> | null;
  if (typeof r?.url !== 'string' || typeof r.pid !== 'number' || typeof r.host !== 'string') return undefined;
  return { url: r.url, pid: r.pid, host: r.host };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
