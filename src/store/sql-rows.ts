/**
 * What the SQL stores (SQLite and Postgres) share: the rows they read and how a row becomes a record, the column
 * lists of the records, and the stores' own copy of an action write.
 * @module
 */
import type { ActionCounts, ActionError, ActionRecord, AttemptRecord, LogLine, RunRecord } from '../types.js';
import type {
  AbortRequest,
  ActionWrite,
  CacheEntry,
  ClaimedAction,
  FailureCause,
  GroupSummary,
  RunLogLine,
} from './run-store.js';

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export const RUN_COLUMNS =
  'name, task_name, phase, mode, created_at, started_at, ended_at, error, labels, options, module, owner, ' +
  'epoch, heartbeat_at, lease_expires_at';
export const ACTION_COLUMNS =
  'run_name, name, parent_name, task_name, short_name, grp, item_index, phase, cache_hit, attempts, started_at, ' +
  'ended_at, error';
/** The columns of an attempt record. */
export const ATTEMPT_COLUMNS = 'run_name, action_name, attempt, phase, started_at, ended_at, error, worker';

/** The phases of a failure (`ListActionsQuery.failed`), as an SQL list for `phase IN …`. */
export const FAILED_PHASES_SQL = `('failed', 'timed_out')`;

/** The terminal action phases, as an SQL list for `phase IN …`. */
export const TERMINAL_ACTION_PHASES_SQL = `('succeeded', 'failed', 'aborted', 'timed_out')`;

/**
 * The guard of an action upsert's `DO UPDATE … WHERE` (see `RunStore.putAction`), `a` being the stored row:
 * never a write of an older epoch, and a terminal row becomes unfinished again only for a writer of a newer
 * epoch (a recovery that claimed the run, a worker that claimed the action).
 */
export function actionWriteGuard(a: string): string {
  return `${a}.epoch <= excluded.epoch
    AND NOT (${a}.phase IN ${TERMINAL_ACTION_PHASES_SQL} AND excluded.phase NOT IN ${TERMINAL_ACTION_PHASES_SQL}
      AND ${a}.epoch = excluded.epoch)`;
}

/** `abort_requests.action_name` of a request to abort the whole run. */
export const WHOLE_RUN = '';

/** The columns of an abort request. */
export const ABORT_REQUEST_COLUMNS = 'seq, run_name, action_name, reason, run_epoch, requested_at';

/** The columns of a claimed action: its record, its epoch and the claim. */
export const CLAIMED_ACTION_COLUMNS = `${ACTION_COLUMNS}, epoch, owner, lease_expires_at, inputs, takeovers, lost_owners`;

/**
 * The SET list of a claim (`RunStore.claimAction`), with the placeholders of the owner and the lease's end. A
 * claim of an action still held by an earlier claim (`owner` set: never given back) is a takeover: it is
 * counted, and the earlier owner appended to `lost_owners`. The right-hand sides read the row before the update.
 */
export function claimActionSet(owner: string, leaseExpiresAt: string): string {
  return `phase = 'running', owner = ${owner}, lease_expires_at = ${leaseExpiresAt}, epoch = epoch + 1,
    takeovers = takeovers + CASE WHEN owner IS NULL THEN 0 ELSE 1 END,
    lost_owners = CASE WHEN owner IS NULL THEN lost_owners
      WHEN lost_owners IS NULL THEN owner ELSE lost_owners || ' ' || owner END`;
}

export interface RunRow {
  name: string;
  task_name: string;
  phase: RunRecord['phase'];
  mode: RunRecord['mode'];
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  error: string | null;
  labels: string;
  options: string;
  module: string | null;
  owner: string | null;
  epoch: number;
  heartbeat_at: number | null;
  lease_expires_at: number | null;
}

export interface ActionRow {
  run_name: string;
  name: string;
  parent_name: string | null;
  task_name: string;
  short_name: string;
  grp: string | null;
  /** `null` for actions that are not map items (and for every action recorded before the column existed). */
  item_index: number | null;
  phase: ActionRecord['phase'];
  /** SQLite stores 0 / 1, Postgres a boolean. */
  cache_hit: number | boolean;
  attempts: number;
  started_at: number | null;
  ended_at: number | null;
  error: string | null;
}

export interface ClaimedActionRow extends ActionRow {
  epoch: number;
  owner: string;
  lease_expires_at: number;
  inputs: string | null;
  takeovers: number;
  lost_owners: string | null;
}

/** An ended action's row with its encoded outputs (see `RunStore.endedAmong`'s `withOutputs`). */
export interface EndedActionRow extends ActionRow {
  outputs?: string | null;
}

export interface AbortRequestRow {
  seq: number;
  run_name: string;
  action_name: string;
  reason: string;
  run_epoch: number;
  requested_at: number;
}

export interface GroupRow extends ActionCounts {
  parent_name: string;
  grp: string;
  expected: number | null;
  started_at: number | null;
  ended_at: number | null;
}

/** A row of a `listCauses` query. */
export interface CauseRow {
  code: string;
  pattern: string;
  /** A bigint's text on Postgres. */
  count: number | string;
  example: string;
}

/** A cause of failure from its row. */
export function causeFromRow(r: CauseRow): FailureCause {
  return { code: r.code, pattern: r.pattern, count: Number(r.count), example: r.example };
}

export interface AttemptRow {
  run_name: string;
  action_name: string;
  attempt: number;
  phase: AttemptRecord['phase'];
  started_at: number;
  ended_at: number | null;
  error: string | null;
  worker: string | null;
}

export interface LogRow {
  run_name: string;
  action_name: string;
  attempt: number;
  at: number;
  stream: LogLine['stream'];
  line: string;
}

export interface CacheRow {
  key: string;
  task_name: string;
  created_at: number;
  run_name: string;
  action_name: string;
  outputs: string;
}

export function runFromRow(r: RunRow): RunRecord {
  return {
    name: r.name,
    taskName: r.task_name,
    phase: r.phase,
    mode: r.mode,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    error: errorFromJson(r.error),
    labels: JSON.parse(r.labels) as Record<string, string>,
    options: JSON.parse(r.options) as RunRecord['options'],
    module: r.module,
    owner: r.owner,
    epoch: r.epoch,
    heartbeatAt: r.heartbeat_at,
    leaseExpiresAt: r.lease_expires_at,
  };
}

export function actionFromRow(r: ActionRow): ActionRecord {
  return {
    runName: r.run_name,
    name: r.name,
    parentName: r.parent_name,
    taskName: r.task_name,
    shortName: r.short_name,
    group: r.grp,
    itemIndex: r.item_index === null ? null : Number(r.item_index),
    phase: r.phase,
    cacheHit: r.cache_hit === true || r.cache_hit === 1,
    attempts: r.attempts,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    error: errorFromJson(r.error),
  };
}

export function claimedActionFromRow(r: ClaimedActionRow): ClaimedAction {
  return {
    ...actionFromRow(r),
    epoch: r.epoch,
    owner: r.owner,
    leaseExpiresAt: r.lease_expires_at,
    inputs: r.inputs,
    takeovers: Number(r.takeovers),
    lostOwners: r.lost_owners === null ? [] : r.lost_owners.split(' '),
  };
}

export function abortRequestFromRow(r: AbortRequestRow): AbortRequest {
  return {
    seq: r.seq,
    runName: r.run_name,
    actionName: r.action_name === WHOLE_RUN ? null : r.action_name,
    reason: r.reason,
    runEpoch: r.run_epoch,
    requestedAt: r.requested_at,
  };
}

/**
 * The store's own copy of an action write (the caller may change its object afterwards), field by field: one object
 * on the hot path of every action, so not `{ ...pickActionRecord(a), ... }`, which would build two.
 */
export function copyActionWrite(a: ActionWrite): Mutable<ActionWrite> {
  return {
    runName: a.runName,
    name: a.name,
    parentName: a.parentName,
    taskName: a.taskName,
    shortName: a.shortName,
    group: a.group,
    itemIndex: a.itemIndex ?? null,
    phase: a.phase,
    cacheHit: a.cacheHit,
    attempts: a.attempts,
    startedAt: a.startedAt,
    endedAt: a.endedAt,
    error: a.error,
    inputs: a.inputs,
    inputsHash: a.inputsHash,
    outputs: a.outputs,
    epoch: a.epoch,
    worker: a.worker,
    job: a.job,
    enqueuedAt: a.enqueuedAt,
  };
}

export function errorJson(error: ActionError | null): string | null {
  return error === null ? null : JSON.stringify(error);
}

export function errorFromJson(json: string | null): ActionError | null {
  return json === null ? null : (JSON.parse(json) as ActionError);
}

export function groupFromRow(r: GroupRow): GroupSummary {
  return {
    parentName: r.parent_name,
    group: r.grp,
    counts: {
      total: r.total,
      queued: r.queued,
      running: r.running,
      succeeded: r.succeeded,
      failed: r.failed,
      aborted: r.aborted,
      timed_out: r.timed_out,
      cached: r.cached,
    },
    expected: r.expected,
    startedAt: r.started_at,
    endedAt: r.ended_at,
  };
}

export function attemptFromRow(r: AttemptRow): AttemptRecord {
  return {
    runName: r.run_name,
    actionName: r.action_name,
    attempt: r.attempt,
    phase: r.phase,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    error: errorFromJson(r.error),
    worker: r.worker,
  };
}

export function logFromRow(r: LogRow): LogLine {
  return {
    runName: r.run_name,
    actionName: r.action_name,
    attempt: r.attempt,
    at: r.at,
    stream: r.stream,
    line: r.line,
  };
}

/** A row of a run-wide log page: the line, its id, its action's short name and item index (`NULL` when not recorded). */
export interface RunLogRow extends LogRow {
  id: number | string;
  short_name: string | null;
  item_index: number | null;
}

/** A {@link RunLogRow} as a {@link RunLogLine} (Postgres returns the bigserial id as a string). */
export function runLogFromRow(r: RunLogRow): RunLogLine {
  return { ...logFromRow(r), seq: Number(r.id), shortName: r.short_name, itemIndex: r.item_index };
}

export function cacheEntryFromRow(r: CacheRow): CacheEntry {
  return {
    key: r.key,
    taskName: r.task_name,
    outputs: r.outputs,
    createdAt: r.created_at,
    runName: r.run_name,
    actionName: r.action_name,
  };
}
