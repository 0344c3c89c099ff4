/**
 * `flyte get runs | run NAME | action RUN ACTION | io RUN [ACTION] | logs RUN [ACTION] [--all] [--follow]`, each with
 * `--output table|json` (default `table`). Reads the store only; works for runs of any process.
 * @module
 */
import * as flyte from '../index.js';
import type { ActionRecord, LogLine, RunPhase, RunRecord } from '../index.js';
import { displayName } from '../internal/display-name.js';
import { lastSeenAt } from '../internal/last-seen.js';
import { runtime } from '../internal/runtime.js';
import { RUN_PHASES } from '../types.js';
import type { ConfigFlags } from './config.js';
import { CommandError, UsageError } from './errors.js';
import {
  countsText,
  elapsed,
  errorText,
  formatClock,
  formatTime,
  jsonText,
  phaseText,
  table,
  toJsonValue,
  type Colors,
} from './format.js';
import { initFromFlags } from './init.js';
import type { CliIo } from './io.js';
import { renderTree, seenUntil } from './render.js';
import { clockMs, LogColumns, readRunLogs, type ShownLogLine } from './run-logs.js';
import { buildTree, StoreTreeSource, type TreeNode } from './tree.js';

/** `--output` of the get commands. */
export type OutputFormat = 'table' | 'json';

/** Options every get command takes. */
export interface GetOptions extends ConfigFlags {
  readonly output?: string;
}

/** Checks `--output`. */
export function outputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === 'table' || value === 'json') return value ?? 'table';
  throw new UsageError(`--output: expected 'table' or 'json'; received '${value}'`);
}

function printJson(io: CliIo, value: unknown): void {
  io.print(JSON.stringify(toJsonValue(value), null, 2));
}

/** The stored run, or a CommandError that says where it looked. */
async function requireRun(name: string): Promise<RunRecord> {
  const rt = runtime();
  await rt.reconcileOrphans();
  const store = rt.store;
  const run = await store.getRun(name);
  if (run === undefined) throw new CommandError(`no run named '${name}' in ${store.description} (see flyte get runs)`);
  return run;
}

async function requireAction(runName: string, actionName: string): Promise<ActionRecord> {
  await requireRun(runName);
  const action = await runtime().store.getAction(runName, actionName);
  if (action === undefined) {
    throw new CommandError(`run '${runName}' has no action '${actionName}' (see flyte get run ${runName})`);
  }
  return action;
}

/** `flyte get runs [--limit N] [--phase P] [--task T]`. */
export async function getRuns(
  options: GetOptions & { limit?: string; phase?: string; task?: string },
  io: CliIo,
): Promise<void> {
  const format = outputFormat(options.output);
  const limit = options.limit === undefined ? 20 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    throw new UsageError(`--limit: expected a positive integer; received '${options.limit}'`);
  }
  const phase = options.phase;
  if (phase !== undefined && !(RUN_PHASES as readonly string[]).includes(phase)) {
    throw new UsageError(`--phase: expected one of ${RUN_PHASES.join(', ')}; received '${phase}'`);
  }
  await initFromFlags(options);
  const rt = runtime();
  await rt.reconcileOrphans();
  const store = rt.store;
  const runs = await store.listRuns({
    limit,
    ...(phase === undefined ? {} : { phase: phase as RunPhase }),
    ...(options.task === undefined ? {} : { taskName: options.task }),
  });
  const [counts, seen] = await Promise.all([
    Promise.all(runs.map((r) => store.countActions(r.name))),
    Promise.all(runs.map((r) => lastSeenAt(r, store))),
  ]);
  if (format === 'json') {
    printJson(
      io,
      runs.map((run, i) => ({ ...run, url: runtime().runUrl(run.name), counts: counts[i], lastSeenAt: seen[i] })),
    );
    return;
  }
  if (runs.length === 0) {
    io.print(phase === undefined ? `no runs in ${store.description}` : `no ${phase} runs in ${store.description}`);
    return;
  }
  const c = io.out;
  const rows = runs.map((run, i) => {
    const n = counts[i];
    const done = n === undefined ? '' : `${n.total - n.queued - n.running}/${n.total}`;
    const failed = n === undefined ? 0 : n.failed + n.timed_out;
    const lastSeen = seen[i] ?? null;
    return [
      run.name,
      run.taskName,
      phaseText(run.phase, c) + (lastSeen === null ? '' : c.dim(`, last seen ${formatClock(lastSeen)}`)),
      formatTime(run.startedAt ?? run.createdAt),
      elapsed(run.startedAt, run.endedAt ?? lastSeen),
      failed > 0 ? `${done} ${c.red(`(${failed} failed)`)}` : done,
    ];
  });
  io.print(table(['NAME', 'TASK', 'PHASE', 'STARTED', 'DURATION', 'ACTIONS'], rows, c));
}

/** The folded tree as JSON: actions with children (and their `displayName`), folds with counts and causes. */
function treeJson(node: TreeNode): unknown {
  if (node.kind === 'action') {
    return { ...node, displayName: displayName(node.action), children: node.children.map(treeJson) };
  }
  if (node.kind === 'fold') {
    // `key` is the views' handle on a fold (`group` and `label` say what it is).
    const { key: _key, ...fold } = node;
    return {
      ...fold,
      causes: node.causes.map(({ code, pattern, count, example }) => ({ code, pattern, count, example })),
    };
  }
  return node;
}

/** Options of `flyte get run`. */
export interface GetRunOptions extends GetOptions {
  readonly maxNodes?: string;
  /** List the actions that failed or timed out instead of the tree. */
  readonly failed?: boolean;
  /** List the actions whose inputs or error message contain this text (ignoring case) instead of the tree. */
  readonly grep?: string;
  /** The page of a listing: at most this many actions (default 50), after skipping `offset` (default 0). */
  readonly limit?: string;
  readonly offset?: string;
}

/** A non-negative (or, with `min` 1, positive) integer flag. */
function integerFlag(flag: string, value: string | undefined, fallback: number, min: 0 | 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || value.trim() === '') {
    throw new UsageError(`${flag}: expected a ${min === 1 ? 'positive' : 'non-negative'} integer; received '${value}'`);
  }
  return n;
}

/**
 * `flyte get run NAME`: the run's record and its action tree with fan-outs folded, each fan-out's causes of
 * failure under it. With `--failed` and/or `--grep TEXT`: the matching actions of the run instead, a page at a
 * time (`--limit`, `--offset`).
 */
export async function getRunCommand(name: string, options: GetRunOptions, io: CliIo): Promise<void> {
  const format = outputFormat(options.output);
  const maxNodes = integerFlag('--max-nodes', options.maxNodes, 200, 1);
  if (options.grep !== undefined && options.grep === '') {
    throw new UsageError("--grep: expected some text to look for; received ''");
  }
  const searching = options.failed === true || options.grep !== undefined;
  const limit = integerFlag('--limit', options.limit, 50, 1);
  const offset = integerFlag('--offset', options.offset, 0, 0);
  if (!searching && (options.limit !== undefined || options.offset !== undefined)) {
    throw new UsageError('--limit and --offset page the actions listed by --failed or --grep; add one of them');
  }
  await initFromFlags(options);
  if (searching) {
    await requireRun(name);
    await listMatching(name, { failed: options.failed === true, text: options.grep, limit, offset }, format, io);
    return;
  }
  const run = await requireRun(name);
  const store = runtime().store;
  const source = new StoreTreeSource(store, name);
  // Counts of the items: those that maps of known size have not started yet count as queued.
  const [counts, tree, lastSeen] = await Promise.all([
    source.counts(),
    buildTree(source, { maxNodes }),
    lastSeenAt(run, store),
  ]);
  const url = runtime().runUrl(name);
  if (format === 'json') {
    printJson(io, { run, lastSeenAt: lastSeen, url, counts, tree: tree === undefined ? null : treeJson(tree) });
    return;
  }
  const c = io.out;
  const fields: [string, string][] = [
    ['run', c.bold(run.name)],
    ['task', run.taskName],
    ['phase', phaseText(run.phase, c)],
    ['mode', run.mode],
    ['started', formatTime(run.startedAt ?? run.createdAt)],
    ...(lastSeen === null
      ? []
      : [['last seen', `${formatTime(lastSeen)} ${c.dim('(its driver is gone)')}`] as [string, string]]),
    ['duration', elapsed(run.startedAt, run.endedAt ?? lastSeen)],
    ['actions', `${counts.total}: ${countsText(counts, c, lastSeen !== null)}`],
    ['url', c.cyan(url)],
  ];
  if (run.error !== null) {
    // A map item that raised it by the name a person reads (`fetch #7`), its hash name after.
    const raiser = run.error.actionName ? await store.getAction(name, run.error.actionName) : undefined;
    const where = !run.error.actionName
      ? ''
      : raiser === undefined || raiser.itemIndex === null
        ? ` (action ${run.error.actionName})`
        : ` (action ${displayName(raiser)} ${c.dim(raiser.name)})`;
    fields.push(['error', `${errorText(run.error, c)}${where}`]);
  }
  if (Object.keys(run.labels).length > 0) {
    fields.push([
      'labels',
      Object.entries(run.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
    ]);
  }
  io.print(fieldList(fields, c));
  if (tree !== undefined) {
    io.print('');
    const width = io.stdout.isTTY ? io.stdout.columns : undefined;
    io.print(renderTree(tree, { colors: c, width, lastSeenAt: lastSeen }).join('\n'));
  }
}

/** The matching actions of `flyte get run NAME --failed / --grep TEXT`, one page. */
async function listMatching(
  runName: string,
  query: { failed: boolean; text: string | undefined; limit: number; offset: number },
  format: OutputFormat,
  io: CliIo,
): Promise<void> {
  const { limit, offset } = query;
  // One more than the page, to tell whether there is a next one.
  const found = await runtime().store.listActions(runName, {
    ...(query.failed ? { failed: true } : {}),
    ...(query.text === undefined ? {} : { text: query.text }),
    offset,
    limit: limit + 1,
  });
  const actions = found.slice(0, limit);
  const more = found.length > limit;
  if (format === 'json') {
    printJson(io, {
      run: runName,
      offset,
      limit,
      more,
      actions: actions.map((a) => ({ ...a, displayName: displayName(a) })),
    });
    return;
  }
  const what = [query.failed ? 'failed' : '', query.text === undefined ? '' : `matching '${query.text}'`]
    .filter((s) => s !== '')
    .join(' and ');
  const c = io.out;
  if (actions.length === 0) {
    io.print(offset === 0 ? `no actions ${what} in run ${runName}` : `no actions ${what} past ${offset}`);
    return;
  }
  const rows = actions.map((a) => [
    displayName(a),
    c.dim(a.name),
    phaseText(a.phase, c),
    elapsed(a.startedAt, a.endedAt),
    a.error === null ? '' : errorText(a.error, c),
  ]);
  io.print(table(['ACTION', 'NAME', 'PHASE', 'DURATION', 'ERROR'], rows, c));
  const range = `${offset + 1}–${offset + actions.length}`;
  io.print(c.dim(more ? `actions ${range} ${what}; next page: --offset ${offset + limit}` : `actions ${range} ${what}`));
}

function fieldList(fields: readonly (readonly [string, string])[], c: Colors): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${c.dim(k.padEnd(width))}  ${v}`).join('\n');
}

/** `flyte get action RUN ACTION`: one action's record, its attempts and its error. */
export async function getActionCommand(
  runName: string,
  actionName: string,
  options: GetOptions,
  io: CliIo,
): Promise<void> {
  const format = outputFormat(options.output);
  await initFromFlags(options);
  const action = await requireAction(runName, actionName);
  const store = runtime().store;
  const [attempts, lastSeen] = await Promise.all([
    store.listAttempts(runName, actionName),
    requireRun(runName).then((run) => lastSeenAt(run, store)),
  ]);
  // In an orphaned run, an action still running or queued was so when its run's driver was last seen.
  const orphanedAt = lastSeen !== null && (action.phase === 'running' || action.phase === 'queued') ? lastSeen : null;
  if (format === 'json') {
    printJson(io, { action, attempts });
    return;
  }
  const c = io.out;
  const fields: [string, string][] = [
    ['action', c.bold(action.name)],
    ['run', action.runName],
    ['task', `${action.taskName}${action.shortName === action.taskName ? '' : ` (${action.shortName})`}`],
    ['parent', action.parentName ?? '-'],
    ['group', action.group ?? '-'],
    ...(action.itemIndex === null ? [] : [['item', `#${action.itemIndex} of its map (${displayName(action)})`] as [string, string]]),
    [
      'phase',
      orphanedAt === null
        ? phaseText(action.phase, c)
        : `${phaseText('orphaned', c)} ${c.dim(`(${action.phase} when its run was last seen, ${formatTime(orphanedAt)})`)}`,
    ],
    ['cached', action.cacheHit ? 'yes' : 'no'],
    ['attempts', String(action.attempts)],
    ['started', formatTime(action.startedAt)],
    ['duration', elapsed(action.startedAt, action.endedAt ?? seenUntil(action.startedAt, orphanedAt))],
  ];
  if (action.error !== null) fields.push(['error', errorText(action.error, c)]);
  io.print(fieldList(fields, c));
  if (action.error?.stack) io.print(c.dim(action.error.stack.split('\n').slice(1).join('\n')));
  if (attempts.length > 0) {
    io.print('');
    const rows = attempts.map((a) => [
      String(a.attempt),
      phaseText(a.phase, c),
      formatTime(a.startedAt),
      elapsed(a.startedAt, a.endedAt ?? (a.phase === 'running' ? seenUntil(a.startedAt, orphanedAt) : null)),
      a.worker ?? '-',
      a.error === null ? '' : errorText(a.error, c),
    ]);
    io.print(table(['ATTEMPT', 'PHASE', 'STARTED', 'DURATION', 'WORKER', 'ERROR'], rows, c));
  }
}

/** `flyte get io RUN [ACTION]`: decoded inputs and outputs (of the root `a0` when ACTION is left out). */
export async function getIoCommand(
  runName: string,
  actionName: string | undefined,
  options: GetOptions,
  io: CliIo,
): Promise<void> {
  const format = outputFormat(options.output);
  await initFromFlags(options);
  const name = actionName ?? 'a0';
  const action = await requireAction(runName, name);
  const handle = (await flyte.getRun(runName)).action(name);
  const [inputs, outputs] = await Promise.all([handle.inputs(), handle.outputs()]);
  const hasOutputs = action.phase === 'succeeded';
  if (format === 'json') {
    printJson(io, {
      run: runName,
      action: name,
      phase: action.phase,
      inputs: inputs ?? null,
      outputs: hasOutputs ? outputs : null,
    });
    return;
  }
  const c = io.out;
  io.print(`${c.dim('inputs')}   ${inputs === undefined ? '-' : jsonText(inputs)}`);
  if (hasOutputs) io.print(`${c.dim('outputs')}  ${jsonText(outputs)}`);
  else if (action.error !== null) io.print(`${c.dim('error')}    ${errorText(action.error, c)}`);
  else io.print(`${c.dim('outputs')}  ${c.dim(`(none yet: ${action.phase})`)}`);
}

/** Options of `flyte get logs`. */
export interface GetLogsOptions extends GetOptions {
  /** Every action's lines (what RUN alone shows too). */
  readonly all?: boolean;
  /** Keep printing new lines until the run ends. */
  readonly follow?: boolean;
}

/**
 * `flyte get logs RUN [ACTION] [--all] [--follow]`: what task bodies wrote through `console`, in order.
 *
 * With ACTION, that action's lines. Without it (and with `--all`, its explicit spelling), every action's lines of
 * the run, merged in the order written (time order within a process), read a page at a time and prefixed with
 * each action's display name (`task #i` for a map item) before its hash name: the same lines and columns as
 * before run-wide logs existed, so `flyte get logs RUN` keeps working as it did. `--follow` (run-wide only) polls
 * for new lines until the run ends; with `--output json` it prints one JSON object per line (JSON Lines) as they
 * come, where the other forms print one JSON array.
 */
export async function getLogsCommand(
  runName: string,
  actionName: string | undefined,
  options: GetLogsOptions,
  io: CliIo,
): Promise<void> {
  const format = outputFormat(options.output);
  if (actionName !== undefined && options.all === true) {
    throw new UsageError(`--all: shows every action of the run, so takes no ACTION; received '${actionName}'`);
  }
  if (actionName !== undefined && options.follow === true) {
    throw new UsageError(
      `--follow: follows the whole run (flyte get logs ${runName} --follow); received an ACTION too ('${actionName}')`,
    );
  }
  await initFromFlags(options);
  if (actionName === undefined) {
    await requireRun(runName);
    await printRunLogs(runName, format, options.follow === true, io);
    return;
  }
  await requireAction(runName, actionName);
  const lines = await runtime().store.listLogs(runName, actionName);
  if (format === 'json') {
    printJson(io, lines);
    return;
  }
  if (lines.length === 0) {
    io.log.info(`no logs for action ${actionName} of run ${runName}`, { run: runName, action: actionName });
    return;
  }
  const c = io.out;
  const width = Math.max(...lines.map((l) => l.actionName.length));
  for (const line of lines) io.print(logLine(line, width, c));
}

/** Every action's lines of a run, page by page; until the run ends with `follow`. */
async function printRunLogs(runName: string, format: OutputFormat, follow: boolean, io: CliIo): Promise<void> {
  const rt = runtime();
  const columns = new LogColumns();
  const json: ShownLogLine[] = [];
  const count = await readRunLogs(rt.store, runName, {
    follow,
    beforePoll: () => rt.reconcileOrphans(),
    onPage: (lines) => {
      if (format === 'json' && !follow) json.push(...lines);
      else if (format === 'json') for (const l of lines) io.print(JSON.stringify(l));
      else {
        columns.fit(lines);
        for (const l of lines) io.print(columns.format(l, io.out));
      }
    },
  });
  if (format === 'json' && !follow) printJson(io, json);
  else if (count === 0 && format === 'table') io.log.info(`no logs for run ${runName}`, { run: runName });
}

function logLine(l: LogLine, width: number, c: Colors): string {
  const text = l.stream === 'stderr' ? c.red(l.line) : l.line;
  return `${c.dim(clockMs(l.at))} ${c.cyan(l.actionName.padEnd(width))} ${c.dim(`#${l.attempt}`)} ${text}`;
}
