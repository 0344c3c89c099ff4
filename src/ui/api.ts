/**
 * What the UI's JSON API answers, independent of HTTP: each function reads the run store through its read-side
 * queries (or acts through the public API: `flyte.getRun(...).abort()`, `flyte.rerun()`) and returns plain data.
 *
 * Nothing here ever reads a whole large run: lists are paged, a fan-out is summarised by the store's
 * per-group counts (`listGroups`), and the members of a group are read one page at a time.
 * @module
 */
import * as flyte from '../index.js';
import { lastSeenAt } from '../internal/last-seen.js';
import { runtime } from '../internal/runtime.js';
import { shownLine, type ShownLogLine } from '../internal/shown-log-line.js';
import {
  countsOfItems,
  MAX_RUN_LOGS_PAGE,
  type FailureCause,
  type GroupSummary,
  type RunLogLine,
  type RunStore,
} from '../store/run-store.js';
import {
  isAbortable,
  isTerminal,
  type ActionCounts,
  type ActionPhase,
  type ActionRecord,
  type AttemptRecord,
  type LogLine,
  type RunPhase,
  type RunRecord,
} from '../types.js';
import { renderValue, type RenderedValue } from './values.js';

/** A failure to answer a request, with its HTTP status. The message is shown to the user. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  override get name(): string {
    return 'HttpError';
  }
}

/** A run in the run list: its record, its actions' counts and its duration so far. */
export interface RunSummary extends RunRecord {
  readonly counts: ActionCounts;
  /** From start to end, or to now while it runs, or to `lastSeenAt` once orphaned; `null` before it started. */
  readonly durationMs: number | null;
  /** When the driver of an orphaned run was last seen (its last lease renewal); `null` unless orphaned. */
  readonly lastSeenAt: number | null;
}

/** An action as the UI lists it: its record, and whether it has children to expand. */
export interface ActionView extends ActionRecord {
  readonly hasChildren: boolean;
}

/** One page of runs. */
export interface RunsPage {
  readonly runs: readonly RunSummary[];
  readonly offset: number;
  readonly limit: number;
  readonly hasMore: boolean;
  /** Server time (ms since the epoch), so the browser can measure running durations with the server's clock. */
  readonly now: number;
}

/** The direct children of one action: its folded groups, and one page of its ungrouped children. */
export interface TreeChildren {
  readonly parent: string;
  readonly groups: readonly GroupSummary[];
  readonly actions: readonly ActionView[];
  readonly offset: number;
  readonly limit: number;
  readonly hasMore: boolean;
  readonly now: number;
}

/** One page of actions. */
export interface ActionsPage {
  readonly actions: readonly ActionView[];
  readonly offset: number;
  readonly limit: number;
  readonly hasMore: boolean;
  readonly now: number;
}

/** Everything the UI shows about one action. */
export interface ActionDetail {
  readonly action: ActionView;
  readonly inputs: RenderedValue | null;
  readonly outputs: RenderedValue | null;
  readonly attempts: readonly AttemptRecord[];
  /** The last {@link MAX_LOG_LINES} lines. */
  readonly logs: readonly LogLine[];
  /** How many earlier lines were left out. */
  readonly logsOmitted: number;
  readonly now: number;
}

/** Most log lines sent for one action. */
export const MAX_LOG_LINES = 5_000;
/** Largest page of runs or actions. */
export const MAX_PAGE = 1_000;
/** Lines in a page of run-wide logs, unless the request asks for another number. */
export const LOG_PAGE = 1_000;
/** Largest page of run-wide logs: the store's largest. */
export const MAX_LOG_PAGE = MAX_RUN_LOGS_PAGE;
/** How long an abort request waits for the run (or action) to end before answering `pending`. */
const ABORT_WAIT_MS = 5_000;

function store(): RunStore {
  return runtime().store;
}

/** The duration of something that started at `startedAt` and ended at `endedAt` (or is still going). */
function durationOf(startedAt: number | null, endedAt: number | null, now: number, ended: boolean): number | null {
  if (startedAt === null) return null;
  if (endedAt !== null) return Math.max(0, endedAt - startedAt);
  return ended ? null : Math.max(0, now - startedAt);
}

/**
 * Answers that cannot change while a run stays ended, keyed by the run's state: the run list counts the actions
 * of every run it shows on every poll, and an ended run's counts are the same each time. A run that is recovered
 * changes its phase and end, and so its key.
 */
class EndedRunCache<T> {
  readonly #entries = new Map<string, T>();
  constructor(readonly capacity: number) {}

  async get(run: RunRecord, part: string, compute: () => Promise<T>): Promise<T> {
    if (!isTerminal(run.phase)) return compute();
    const key = `${run.name}\0${run.phase}\0${run.endedAt ?? ''}\0${part}`;
    const hit = this.#entries.get(key);
    if (hit !== undefined) return hit;
    const value = await compute();
    this.#entries.set(key, value);
    // Maps keep insertion order: the first key is the oldest.
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
    return value;
  }
}

const endedCounts = new EndedRunCache<ActionCounts>(2_000);
const endedGroups = new EndedRunCache<GroupSummary[]>(200);
const endedChildren = new EndedRunCache<{ actions: ActionRecord[]; hasMore: boolean }>(200);
const endedLastSeen = new EndedRunCache<number | null>(2_000);

async function summarize(run: RunRecord, now: number): Promise<RunSummary> {
  const [counts, seen] = await Promise.all([
    endedCounts.get(run, 'counts', () => store().countActions(run.name)),
    endedLastSeen.get(run, 'lastSeen', () => lastSeenAt(run, store())),
  ]);
  const durationMs = durationOf(run.startedAt, run.endedAt ?? seen, now, isTerminal(run.phase));
  return { ...run, counts, durationMs, lastSeenAt: seen };
}

/** Reads `name`'s record or answers 404. */
async function requireRun(name: string): Promise<RunRecord> {
  await runtime().reconcileOrphans();
  const run = await store().getRun(name);
  if (run === undefined) throw new HttpError(404, `no run named ${name}`);
  return run;
}

async function withChildFlags(runName: string, actions: readonly ActionRecord[]): Promise<ActionView[]> {
  const s = store();
  return Promise.all(
    actions.map(async (a) => {
      // Trace and durable pseudo-actions never have children; for the others one indexed lookup says.
      const leaf = a.taskName.startsWith('trace:') || a.taskName.startsWith('durable:');
      const hasChildren = !leaf && (await s.listActions(runName, { parentName: a.name, limit: 1 })).length > 0;
      return { ...a, hasChildren };
    }),
  );
}

/** Runs, newest first, filtered by phase and root task. */
export async function listRunsPage(query: {
  phase?: RunPhase | undefined;
  task?: string | undefined;
  offset: number;
  limit: number;
}): Promise<RunsPage> {
  await runtime().reconcileOrphans();
  const rows = await store().listRuns({
    offset: query.offset,
    limit: query.limit + 1,
    ...(query.phase === undefined ? {} : { phase: query.phase }),
    ...(query.task === undefined ? {} : { taskName: query.task }),
  });
  const now = Date.now();
  const runs = await Promise.all(rows.slice(0, query.limit).map((r) => summarize(r, now)));
  return { runs, offset: query.offset, limit: query.limit, hasMore: rows.length > query.limit, now };
}

/**
 * Groups as the UI shows them: the counts of their items, where their maps' sizes are known (see
 * `countsOfItems`): a 1 500-item map with 587 actions started shows 1 500, the rest queued.
 */
function itemGroups(groups: readonly GroupSummary[]): GroupSummary[] {
  return groups.map((g) => (g.expected === null ? g : { ...g, counts: countsOfItems(g.counts, g.expected) }));
}

/** One run with its counts (of the items of its maps, see {@link itemGroups}) and its root action. */
export async function runDetail(name: string): Promise<{ run: RunSummary; root: ActionView | null; now: number }> {
  const record = await requireRun(name);
  const now = Date.now();
  const [root, summary, groups] = await Promise.all([
    store().getAction(name, 'a0'),
    summarize(record, now),
    endedGroups.get(record, 'groups', () => store().listGroups(name)),
  ]);
  let notStarted = 0;
  for (const g of groups) if (g.expected !== null && g.expected > g.counts.total) notStarted += g.expected - g.counts.total;
  const counts =
    notStarted === 0
      ? summary.counts
      : { ...summary.counts, total: summary.counts.total + notStarted, queued: summary.counts.queued + notStarted };
  return {
    run: { ...summary, counts },
    root: root === undefined ? null : ((await withChildFlags(name, [root]))[0] ?? null),
    now,
  };
}

/** Every folded group of a run: per (parent, group), counts and time span. */
export async function runGroups(name: string): Promise<{ groups: readonly GroupSummary[]; now: number }> {
  const run = await requireRun(name);
  return { groups: itemGroups(await endedGroups.get(run, 'groups', () => store().listGroups(name))), now: Date.now() };
}

/**
 * The children of `parent` as the tree shows them: its groups folded (from the per-group counts, whatever their
 * size) and a page of its ungrouped children.
 */
export async function treeChildren(name: string, parent: string, offset: number, limit: number): Promise<TreeChildren> {
  const run = await requireRun(name);
  const s = store();
  const [allGroups, counts] = await Promise.all([
    endedGroups.get(run, 'groups', () => s.listGroups(name)),
    endedCounts.get(run, 'counts', () => s.countActions(name)),
  ]);
  const groups = allGroups.filter((g) => g.parentName === parent);
  // Every action but the root is either in a group or not; when the groups hold all of them there is nothing
  // ungrouped to look for (the common case of a big map), and no member needs to be read.
  const grouped = allGroups.reduce((sum, g) => sum + g.counts.total, 0);
  const page =
    counts.total - 1 - grouped <= 0
      ? { actions: [] as ActionRecord[], hasMore: false }
      : await endedChildren.get(run, `${parent}\0${offset}\0${limit}`, () =>
          ungroupedChildren(s, name, parent, offset, limit),
        );
  return {
    parent,
    groups: itemGroups(groups),
    actions: await withChildFlags(name, page.actions),
    offset,
    limit,
    hasMore: page.hasMore,
    now: Date.now(),
  };
}

/** One page of the children of `parent` that are in no group (one more is read to know if there are more). */
async function ungroupedChildren(
  s: RunStore,
  runName: string,
  parent: string,
  offset: number,
  limit: number,
): Promise<{ actions: ActionRecord[]; hasMore: boolean }> {
  const actions = await s.listActions(runName, { parentName: parent, group: null, offset, limit: limit + 1 });
  return { actions: actions.slice(0, limit), hasMore: actions.length > limit };
}

/** The search filters of a fan-out's members (see `ListActionsQuery`): all given must match. */
export interface MemberFilters {
  readonly failed?: boolean;
  /** In the encoded inputs or the error message, ignoring case. */
  readonly text?: string;
  readonly itemIndex?: number;
  readonly cause?: { readonly code: string; readonly pattern: string };
}

/** One page of a run's actions, by parent, group and phase, and the member filters, in creation order. */
export async function actionsPage(
  name: string,
  query: MemberFilters & {
    parent?: string | undefined;
    group?: string | undefined;
    phase?: ActionPhase | undefined;
    offset: number;
    limit: number;
  },
): Promise<ActionsPage> {
  await requireRun(name);
  const rows = await store().listActions(name, {
    offset: query.offset,
    limit: query.limit + 1,
    ...(query.parent === undefined ? {} : { parentName: query.parent }),
    ...(query.group === undefined ? {} : { group: query.group }),
    ...(query.phase === undefined ? {} : { phase: query.phase }),
    ...(query.failed === true ? { failed: true } : {}),
    ...(query.text === undefined ? {} : { text: query.text }),
    ...(query.itemIndex === undefined ? {} : { itemIndex: query.itemIndex }),
    ...(query.cause === undefined ? {} : { cause: query.cause }),
  });
  return {
    actions: await withChildFlags(name, rows.slice(0, query.limit)),
    offset: query.offset,
    limit: query.limit,
    hasMore: rows.length > query.limit,
    now: Date.now(),
  };
}

/**
 * The causes of failure of one fan-out (the children of `parent` in `group`), largest first: one indexed query
 * of the store (`RunStore.listCauses`), however many members the fan-out has.
 */
export async function runCauses(name: string, parent: string, group: string): Promise<FailureCause[]> {
  await requireRun(name);
  return store().listCauses(name, { parentName: parent, group });
}

/** One action with its decoded inputs and outputs, attempts and (the end of) its logs. */
export async function actionDetail(name: string, actionName: string): Promise<ActionDetail> {
  await requireRun(name);
  const s = store();
  const record = await requireAction(name, actionName);
  const [io, attempts, logs, logCount, [action]] = await Promise.all([
    s.getActionIO(name, actionName),
    s.listAttempts(name, actionName),
    s.listLogs(name, actionName, { tail: MAX_LOG_LINES }),
    s.countLogs(name, actionName),
    withChildFlags(name, [record]),
  ]);
  const codec = runtime().codec;
  const omitted = Math.max(0, logCount - logs.length);
  return {
    action: action as ActionView,
    inputs: io?.inputs == null ? null : renderValue(codec, io.inputs, 'inputs'),
    outputs: io?.outputs == null ? null : renderValue(codec, io.outputs, 'outputs'),
    attempts,
    logs,
    logsOmitted: omitted,
    now: Date.now(),
  };
}

/** A line of the run-wide logs as the UI shows it: `displayName` is `task #i` for a map item. */
export type RunLogView = Omit<ShownLogLine, 'runName'>;

/** One page of a run's log lines, every action's, in write order. */
export interface RunLogsPage {
  readonly lines: readonly RunLogView[];
  /** The cursor to read the lines after this page with (`after=`): the last line's `seq`. */
  readonly next: number;
  /**
   * Reading forwards (`after=`): whether lines after this page exist already. Backwards (`before=`): whether
   * lines before it do.
   */
  readonly hasMore: boolean;
  /** The run's phase, read before the lines. */
  readonly runPhase: RunPhase;
  /**
   * Whether the run had ended before the lines were read: then a page without `hasMore` (forwards) holds its
   * last line, and nothing more will come.
   */
  readonly terminal: boolean;
  readonly now: number;
}

/** A page of run-wide logs: after a cursor (the first `limit` lines), or before one (the last `limit` lines). */
export type RunLogsRequest =
  { readonly after: number; readonly limit: number } | { readonly before: number | 'end'; readonly limit: number };

/**
 * One page of a run's log lines, every action's merged in the store's write order (`RunStore.listRunLogs`, one
 * index range), each with its action's display name. Forwards after a cursor, for a reader following the run;
 * backwards before one (or from the end), for a reader that opens a large run at its last lines.
 */
export async function runLogs(name: string, request: RunLogsRequest): Promise<RunLogsPage> {
  const run = await requireRun(name);
  const s = store();
  const { limit } = request;
  let lines: RunLogLine[];
  let hasMore: boolean;
  let next: number;
  if ('after' in request) {
    lines = await s.listRunLogs(name, { afterSeq: request.after, limit });
    next = lines[lines.length - 1]?.seq ?? request.after;
    hasMore = lines.length === limit && (await s.listRunLogs(name, { afterSeq: next, limit: 1 })).length > 0;
  } else {
    const beforeSeq = request.before === 'end' ? Number.MAX_SAFE_INTEGER : request.before;
    lines = await s.listRunLogs(name, { beforeSeq, limit });
    const first = lines[0]?.seq;
    // No line before the end: a follower reads from the start (0), not from past the end.
    next = lines[lines.length - 1]?.seq ?? (request.before === 'end' ? 0 : Math.max(0, beforeSeq - 1));
    hasMore = first !== undefined && (await s.listRunLogs(name, { beforeSeq: first, limit: 1 })).length > 0;
  }
  return {
    lines: lines.map((l) => {
      const { runName: _r, ...shown } = shownLine(l);
      return shown;
    }),
    next,
    hasMore,
    runPhase: run.phase,
    terminal: isTerminal(run.phase),
    now: Date.now(),
  };
}

/**
 * Aborts a run through the public API. Answers once the run is recorded as ended, or after a few seconds with
 * `pending: true` when another process drives it and has not picked the request up yet.
 */
export async function abortRun(
  name: string,
  reason: string,
  log: (line: string) => void,
): Promise<{ phase: RunPhase; pending: boolean }> {
  const record = await requireRun(name);
  // An orphaned run has not ended (nobody drives it): aborting it records it as aborted.
  if (!isAbortable(record.phase)) {
    throw new HttpError(409, `run ${name} already ended (${record.phase})`);
  }
  const run = await flyte.getRun(name);
  await settleWithin(run.abort(reason), `could not abort run ${name}`, log);
  const after = await requireRun(name);
  return { phase: after.phase, pending: !isTerminal(after.phase) };
}

/**
 * Aborts one action of a run, and its running descendants, through the public API
 * (`flyte.getRun(name).action(actionName).abort()`). Answers like {@link abortRun}; the run goes on.
 */
export async function abortAction(
  name: string,
  actionName: string,
  reason: string,
  log: (line: string) => void,
): Promise<{ phase: ActionPhase; pending: boolean }> {
  await requireRun(name);
  const record = await requireAction(name, actionName);
  if (isTerminal(record.phase)) throw new HttpError(409, `action ${actionName} already ended (${record.phase})`);
  const run = await flyte.getRun(name);
  await settleWithin(run.action(actionName).abort(reason), `could not abort action ${actionName} of run ${name}`, log);
  const after = await requireAction(name, actionName);
  return { phase: after.phase, pending: !isTerminal(after.phase) };
}

async function requireAction(runName: string, actionName: string): Promise<ActionRecord> {
  const action = await store().getAction(runName, actionName);
  if (action === undefined) throw new HttpError(404, `run ${runName} has no action ${actionName}`);
  return action;
}

/**
 * Waits up to {@link ABORT_WAIT_MS} for an abort to settle; a failure becomes a 409 with `what` and the error's
 * message. An abort still going on when the wait ends reports how it ends through `log`.
 */
async function settleWithin(abort: Promise<void>, what: string, log: (line: string) => void): Promise<void> {
  const aborted = abort.then(
    () => true,
    (err: unknown) => {
      throw new HttpError(409, `${what}: ${err instanceof Error ? err.message : String(err)}`);
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ABORT_WAIT_MS);
  });
  try {
    const done = await Promise.race([aborted, waited]);
    if (!done) {
      // The abort goes on after this answer; report how it ends instead of leaving a rejection unhandled.
      aborted.catch((err: unknown) => log(`flyte ui: ${err instanceof Error ? err.message : String(err)}`));
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a recorded run again through the public API (`flyte.rerun`), in this process: as a new run, or with
 * `recover` under the same run. The task's module is the one recorded with the run, never one from the request.
 */
export async function rerunRun(name: string, recover: boolean): Promise<{ name: string }> {
  await requireRun(name);
  try {
    const run = await flyte.rerun(name, { recover });
    return { name: run.name };
  } catch (err) {
    if (err instanceof flyte.errors.ModuleLoadError) throw new HttpError(422, err.message);
    if (err instanceof RangeError || err instanceof TypeError) throw new HttpError(409, err.message);
    throw err;
  }
}
