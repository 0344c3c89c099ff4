/**
 * How the local controller reaches a run it does not drive: through the store, the one thing every process
 * shares. An abort becomes a durable request that the driving process polls for (or, when that process is gone,
 * a takeover that records the abort here); a wait polls the run's record; a recovery is a claim on the run's
 * epoch. The remote controller of distributed mode reaches its runs through its engine instead; both keep the
 * contract of `RunController`.
 * @module
 */
import { ActionAbortedError } from '../errors.js';
import type { RunClaim, RunStore } from '../store/run-store.js';
import { isAbortable, isTerminal, type RunRecord } from '../types.js';
import { driverGone } from './owner.js';

/** How often a wait polls the store for a run driven by another process. */
const POLL_MS = 200;

/** How long an action abort waits for another process to record the action's end. */
export const ACTION_ABORT_WAIT_MS = 10_000;

/** How long a run abort waits for another process to record the run's end. */
export const RUN_ABORT_WAIT_MS = 30_000;

function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, POLL_MS));
}

/** The record of run `name`, or a RangeError naming the store. */
async function mustGetRun(store: RunStore, name: string): Promise<RunRecord> {
  const rec = await store.getRun(name);
  if (rec === undefined) throw new RangeError(`run ${name} is not in ${store.description}`);
  return rec;
}

/**
 * Aborts run `name`, driven by another process or by none. A live driver gets a durable request, applied within
 * its poll; this waits up to {@link RUN_ABORT_WAIT_MS} for the run's end. A run whose driver is gone is claimed
 * (like a recovery, so that none starts meanwhile) and recorded as aborted here, with its unfinished actions.
 * Resolves once the run is recorded as ended (at once for a run that ended already).
 *
 * Thrown by it: RangeError when there is no such run; Error when the driving process did not record the run's
 * end in time (the abort may still take effect).
 */
export async function abortRunElsewhere(store: RunStore, claim: RunClaim, name: string, reason: string): Promise<void> {
  const error = new ActionAbortedError(`run ${name} was aborted${reason ? `: ${reason}` : ''}`);
  let requested = false;
  const deadline = Date.now() + RUN_ABORT_WAIT_MS;
  for (;;) {
    const rec = await mustGetRun(store, name);
    if (!isAbortable(rec.phase)) return;
    if (driverGone(rec)) {
      if (await recordAbortOfOrphan(store, claim, rec, error)) return;
      continue; // another process claimed it first: look again at who drives it now
    }
    if (!requested) {
      await store.requestAbort(name, reason);
      requested = true;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `run ${name} was not recorded as ended within ${RUN_ABORT_WAIT_MS / 1000} s of the abort request; ` +
          `the process that drives it (${rec.owner ?? 'unknown'}) may still apply it`,
      );
    }
    await pause();
  }
}

/**
 * Aborts action `actionName` of run `runName`, driven by another live process: leaves a durable request and
 * waits up to {@link ACTION_ABORT_WAIT_MS} for the action's end. Resolves at once if the action has ended.
 *
 * Thrown by it: RangeError when the run has no such action, or when the process that drove the run is gone (the
 * action will not end by itself: the run must be recovered or aborted); Error when the driving process did not
 * record the action's end in time.
 */
export async function abortActionElsewhere(
  store: RunStore,
  runName: string,
  actionName: string,
  reason: string,
): Promise<void> {
  const rec = await store.getAction(runName, actionName);
  if (rec === undefined) throw new RangeError(`run ${runName} has no action ${actionName}`);
  if (isTerminal(rec.phase)) return;
  const run = await store.getRun(runName);
  if (run === undefined || run.phase === 'orphaned' || driverGone(run)) {
    throw new RangeError(
      `cannot abort action ${actionName} of run ${runName}: the process that drove the run is gone; ` +
        `recover the run (flyte.rerun('${runName}', { recover: true })) or abort the whole run`,
    );
  }
  await store.requestAbort(runName, reason, actionName);
  const deadline = Date.now() + ACTION_ABORT_WAIT_MS;
  for (;;) {
    await pause();
    const now = await store.getAction(runName, actionName);
    if (now === undefined || isTerminal(now.phase)) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `action ${actionName} of run ${runName} was not recorded as ended within ${ACTION_ABORT_WAIT_MS} ms ` +
          'of the abort request; the process that drives the run may still apply it',
      );
    }
  }
}

/**
 * Resolves with the record of run `name` once it is terminal. A run whose driver died never ends by itself: it
 * is marked `orphaned` (a terminal phase for a wait), and the wait ends.
 *
 * Thrown by it: RangeError when there is no such run.
 */
export async function waitElsewhere(store: RunStore, name: string): Promise<RunRecord> {
  for (;;) {
    const rec = await mustGetRun(store, name);
    if (isTerminal(rec.phase)) return rec;
    if (driverGone(rec) && (await store.markOrphaned(name, rec.epoch))) continue;
    await pause();
  }
}

/**
 * Claims `record` (as read by the caller) for a recovery by this process: a compare-and-set on its epoch, so of
 * two recoveries started at once exactly one goes on. Resolves to the run as claimed.
 *
 * Thrown by it: RangeError when the run is neither ended nor left by its driver (a live process drives it), or
 * when another process claimed it first.
 */
export async function claimForRecovery(store: RunStore, claim: RunClaim, record: RunRecord): Promise<RunRecord> {
  const { name } = record;
  if (!isTerminal(record.phase) && !driverGone(record)) {
    throw new RangeError(
      `rerun: run ${name} is ${record.phase} and its driver (${record.owner ?? 'unknown'}) is alive ` +
        `(last seen ${lastSeen(record.heartbeatAt)}); only runs that ended or whose driver is gone can be recovered`,
    );
  }
  const claimed = await store.claimRun(name, record.epoch, claim);
  if (claimed === undefined) {
    throw new RangeError(
      `rerun: run ${name} was taken over by another process while this one was about to recover it; ` +
        `see \`flyte get run ${name}\``,
    );
  }
  return claimed;
}

function lastSeen(at: number | null): string {
  return at === null ? 'at an unknown time' : `${Math.round((Date.now() - at) / 1000)} s ago`;
}

/**
 * Takes over a run whose driver is gone and records it as aborted, with every action it left unfinished.
 * Resolves `false` when another process claimed the run first.
 */
async function recordAbortOfOrphan(
  store: RunStore,
  claim: RunClaim,
  rec: RunRecord,
  error: ActionAbortedError,
): Promise<boolean> {
  const claimed = await store.claimRun(rec.name, rec.epoch, claim);
  if (claimed === undefined) return false;
  const now = Date.now();
  const serialized = error.toJSON();
  for (const phase of ['queued', 'running'] as const) {
    for (const action of await store.listActions(rec.name, { phase })) {
      store.putAction({ ...action, phase: 'aborted', endedAt: now, error: { ...serialized, actionName: action.name } });
    }
  }
  store.updateRun(rec.name, { phase: 'aborted', endedAt: now, error: serialized, owner: null });
  await store.flush();
  return true;
}
