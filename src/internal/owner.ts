/**
 * Which process drives a local run (`host:pid`), and whether that process is still alive.
 * @module
 */
import os from 'node:os';

/** This process, as recorded in `RunRecord.owner`. */
export const OWNER = `${os.hostname()}:${process.pid}`;

/**
 * Whether the owner of a run may still be driving it: `false` only when it is a process of this host that no
 * longer exists (or the owner is unknown). Owners on other hosts are assumed alive.
 */
export function ownerAlive(owner: string | null): boolean {
  if (owner === null) return false;
  const sep = owner.lastIndexOf(':');
  const host = owner.slice(0, sep);
  const pid = Number(owner.slice(sep + 1));
  if (host !== os.hostname()) return true;
  if (pid === process.pid) return true;
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
