/**
 * Formatting for the UI: durations, times, sizes, counts and phases. Pure functions, no DOM.
 */

/** Phases in the order the UI lists them, with their labels. */
export const PHASE_LABELS = {
  queued: 'Queued',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  aborted: 'Aborted',
  timed_out: 'Timed out',
  orphaned: 'Orphaned',
};

export const RUN_PHASES = Object.keys(PHASE_LABELS);
export const ACTION_PHASES = RUN_PHASES.filter((p) => p !== 'orphaned');

const TERMINAL = new Set(['succeeded', 'failed', 'aborted', 'timed_out', 'orphaned']);

/**
 * The phase to show for an action of a run whose driver was last seen at `lastSeenAt` (`null` while the run is not
 * orphaned): an action still queued or running then is orphaned.
 */
export function shownPhase(phase, lastSeenAt) {
  return lastSeenAt != null && (phase === 'queued' || phase === 'running') ? 'orphaned' : phase;
}

/**
 * Where the time of something that has not ended stops: now, or in an orphaned run the time its driver was last
 * seen (never before the thing started).
 */
export function openEnd(startedAt, lastSeenAt, now) {
  return lastSeenAt == null ? now : Math.max(lastSeenAt, startedAt ?? lastSeenAt);
}

/** Whether nothing changes any more in this phase. */
export function isTerminal(phase) {
  return TERMINAL.has(phase);
}

/** Whether a run in this phase can still be aborted: not ended, or orphaned (aborting records it as aborted). */
export function isAbortable(phase) {
  return !isTerminal(phase) || phase === 'orphaned';
}

const numberFormat = new Intl.NumberFormat('en-US');

/** 10000 → "10,000". */
export function count(n) {
  return numberFormat.format(n);
}

/** 1234 → "1.2s", 65000 → "1m 05s", 3720000 → "1h 02m". */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A short offset on a time axis: "+0s", "+250ms", "+1.5s", "+2m". */
export function offset(ms) {
  if (ms === 0) return '0';
  if (ms < 1000) return `+${Math.round(ms)}ms`;
  if (ms < 60_000) return `+${Number((ms / 1000).toFixed(1))}s`;
  if (ms < 3_600_000) return `+${Number((ms / 60_000).toFixed(1))}m`;
  return `+${Number((ms / 3_600_000).toFixed(1))}h`;
}

/** A timestamp: the time of day for today, else the date and time. */
export function time(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const today = new Date();
  const clock = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (d.toDateString() === today.toDateString()) return clock;
  return `${d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' })} ${clock}`;
}

/** The full timestamp, for tooltips. */
export function fullTime(ms) {
  return ms === null || ms === undefined ? '' : new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/** "just now", "5s ago", "3m ago", "2h ago", "4d ago". */
export function ago(ms, now) {
  if (ms === null || ms === undefined) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 3) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** 1536 → "1.5 KB". */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Actions that ended, whatever how. */
export function done(c) {
  return c.succeeded + c.failed + c.aborted + c.timed_out;
}

/**
 * The time a running fan-out has left, in ms, at its average completion rate since it started:
 * `remaining × elapsed / done`; `null` before 2 members are done or 1 s has passed, and once all are done. The
 * stateless form of the CLI's estimator (src/internal/eta.ts, which measures the rate over a recent window): the
 * page sees snapshots of a group's counts, and computes this again at each render, so while nothing completes
 * the estimate grows; a slow start stays in it.
 */
export function etaMs(counts, startedAt, now) {
  const finished = done(counts);
  if (startedAt === null || startedAt === undefined || finished < 2 || finished >= counts.total) return null;
  const elapsed = now - startedAt;
  return elapsed < 1000 ? null : ((counts.total - finished) * elapsed) / finished;
}

/** 11200 → "~12s left" (whole seconds, rounded up, under a minute), 245000 → "~4m 05s left". */
export function etaLabel(ms) {
  return `~${ms < 60_000 ? `${Math.max(1, Math.ceil(ms / 1000))}s` : duration(ms)} left`;
}

/** What kind of action a task name is: a task, a trace or a durable step. */
export function actionKind(taskName) {
  if (taskName.startsWith('trace:')) return 'trace';
  if (taskName.startsWith('durable:')) return 'durable';
  return 'task';
}

/** `env.task` → ["env", "task"]; a name without a dot has no environment. */
export function splitTaskName(taskName) {
  const kind = actionKind(taskName);
  if (kind !== 'task') return [kind, taskName.slice(kind.length + 1)];
  const dot = taskName.lastIndexOf('.');
  return dot < 0 ? ['', taskName] : [taskName.slice(0, dot), taskName.slice(dot + 1)];
}

/**
 * The name a person reads for an action: `task #i` for item `i` of a `flyte.map`, the task's short name
 * otherwise (a copy of `displayName` in src/internal/display-name.ts; the hash name stays in a tooltip).
 */
export function displayName(action) {
  return action.itemIndex === null || action.itemIndex === undefined
    ? action.shortName
    : `${action.shortName} #${action.itemIndex}`;
}
