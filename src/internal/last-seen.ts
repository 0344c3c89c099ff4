/**
 * When an orphaned run was last seen alive: what the CLI and the UI show in place of "still running".
 * @module
 */
import type { RunStore } from '../store/run-store.js';
import type { RunRecord } from '../types.js';

/**
 * When the driver of an orphaned run was last seen: its last lease renewal (`heartbeatAt`); for runs recorded
 * before leases existed, the latest start or end of any of its actions, else the run's start. `null` for a run
 * that is not orphaned. Reads the run's actions only for those old runs.
 */
export async function lastSeenAt(run: RunRecord, store: RunStore): Promise<number | null> {
  if (run.phase !== 'orphaned') return null;
  if (run.heartbeatAt !== null) return run.heartbeatAt;
  let latest = run.startedAt ?? run.createdAt;
  for (const a of await store.listActions(run.name)) {
    latest = Math.max(latest, a.startedAt ?? latest, a.endedAt ?? latest);
  }
  return latest;
}
