/**
 * Which process drives a run, and whether it still does.
 *
 * A driver holds a **lease** on its run: it records itself as the run's `owner` (`host:pid`) with an `epoch`,
 * and renews the lease every {@link renewEveryMs} while the run is live. A `running` run whose lease has expired
 * has lost its driver (the process died, or hangs), and so has one whose owner is a process of this host that no
 * longer exists (which is known at once, without waiting for the lease). A process id that was reused by another
 * process (containers restart with the same host name and low pids) cannot keep a dead run alive: its lease
 * still expires. Taking a run over is an atomic claim in the store (`RunStore.claimRun`), which also raises the
 * epoch and so fences the writes of the previous driver.
 * @module
 */
import os from 'node:os';
import type { RunRecord } from '../types.js';

/** This process, as recorded in `RunRecord.owner`. */
export const OWNER = `${os.hostname()}:${process.pid}`;

/**
 * How long a driver's lease holds, in ms: `FLYTE_LEASE_MS` or 15 s. A run whose driver stopped renewing is
 * orphaned after at most this long (at once when the driver was a process of this host that exited).
 */
export function leaseMs(): number {
  const raw = process.env.FLYTE_LEASE_MS;
  if (raw === undefined || raw === '') return DEFAULT_LEASE_MS;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 100) {
    throw new RangeError(`FLYTE_LEASE_MS: expected an integer number of ms of at least 100; received '${raw}'`);
  }
  return ms;
}

const DEFAULT_LEASE_MS = 15_000;

/** How often a driver renews a lease of `lease` ms: five times per lease, so a slow tick or two is harmless. */
export function renewEveryMs(lease: number): number {
  return Math.max(20, Math.floor(lease / 5));
}

/**
 * Whether the run's driver is gone: its lease expired, or it was a process of this host that no longer exists.
 * Only meaningful for a `running` run (an `orphaned` one is gone by definition). Never for a remote run: its
 * actions are jobs of the engine, taken over by another worker when their worker dies.
 */
export function driverGone(run: RunRecord, now: number = Date.now()): boolean {
  if (run.phase === 'orphaned') return true;
  // A remote run has no driver process: its actions are jobs that workers hold and hand over.
  if (run.mode === 'remote') return false;
  if (run.leaseExpiresAt !== null && run.leaseExpiresAt < now) return true;
  return !processMayBeAlive(run.owner);
}

/**
 * Whether the owner process may still be running: `false` only when it is a process of this host that no longer
 * exists (or the owner is unknown). Owners on other hosts are assumed alive: their lease tells.
 */
function processMayBeAlive(owner: string | null): boolean {
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
