/**
 * Text helpers shared by the commands: colours, durations, phases, tables and JSON for decoded values.
 * @module
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import Table from 'cli-table3';
import pc from 'picocolors';
import type { ActionCounts, ActionError, ActionPhase, RunPhase } from '../index.js';

/** The colour functions for one output stream. */
export type Colors = ReturnType<typeof pc.createColors>;

/**
 * Colours for a stream: on when the stream is a terminal and picocolors allows them (it honours `NO_COLOR`,
 * `FORCE_COLOR`, `--no-color` and `--color`).
 */
export function colorsFor(stream: NodeJS.WriteStream): Colors {
  const forced = 'FORCE_COLOR' in process.env && process.env.FORCE_COLOR !== '0';
  return pc.createColors(pc.isColorSupported && (stream.isTTY || forced));
}

/**
 * `850ms`, `12.3s`, `4m05s`, `2h03m`.
 *
 * @example
 * ```ts
 * formatDuration(12_345); // '12.3s'
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * The time a fan-out has left, for its line in the live view: whole seconds (rounded up) under a minute, else as
 * {@link formatDuration} writes it.
 *
 * @example
 * ```ts
 * etaText(11_200); // 'ETA 12s'
 * etaText(245_000); // 'ETA 4m05s'
 * ```
 */
export function etaText(ms: number): string {
  return `ETA ${ms < 60_000 ? `${Math.max(1, Math.ceil(ms / 1000))}s` : formatDuration(ms)}`;
}

/** How long something took (or has been running, with `now`), `-` if it has not started. */
export function elapsed(startedAt: number | null, endedAt: number | null, now: number = Date.now()): string {
  return startedAt === null ? '-' : formatDuration((endedAt ?? now) - startedAt);
}

/** A local time of day, `13:26:47`, with the date in front when it is not today: `2026-11-25 13:26:47`. */
export function formatClock(ms: number, now: number = Date.now()): string {
  const full = formatTime(ms);
  return full.slice(0, 10) === formatTime(now).slice(0, 10) ? full.slice(11) : full;
}

/** A local timestamp, `2026-11-25 13:26:47`. */
export function formatTime(ms: number | null): string {
  if (ms === null) return '-';
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A one-character mark for a phase (running ones spin with `tick`). */
export function phaseIcon(phase: ActionPhase | RunPhase, c: Colors, tick = 0): string {
  switch (phase) {
    case 'queued':
      return c.dim('○');
    case 'running':
      return c.cyan(SPINNER[tick % SPINNER.length]);
    case 'succeeded':
      return c.green('✓');
    case 'failed':
      return c.red('✗');
    case 'aborted':
      return c.yellow('⊘');
    case 'timed_out':
      return c.red('⏱');
    case 'orphaned':
      return c.yellow('?');
  }
}

/** The phase word, coloured. */
export function phaseText(phase: ActionPhase | RunPhase, c: Colors): string {
  switch (phase) {
    case 'succeeded':
      return c.green(phase);
    case 'failed':
    case 'timed_out':
      return c.red(phase);
    case 'aborted':
    case 'orphaned':
      return c.yellow(phase);
    case 'running':
      return c.cyan(phase);
    case 'queued':
      return c.dim(phase);
  }
}

/** Finished actions: succeeded, failed, aborted or timed out. */
export function doneCount(counts: ActionCounts): number {
  return counts.succeeded + counts.failed + counts.aborted + counts.timed_out;
}

/**
 * A progress bar of `width` cells: succeeded in green, failed/aborted/timed out in red, running in cyan (in
 * yellow when `orphaned`: the actions were running when their run's driver was last seen).
 *
 * @example
 * ```ts
 * progressBar({ total: 10, succeeded: 5, failed: 1, running: 2, ... }, 20, c); // '██████████▓▓▓▓░░░░░░' in colours
 * ```
 */
export function progressBar(counts: ActionCounts, width: number, c: Colors, orphaned = false): string {
  const total = Math.max(counts.total, 1);
  const cells = (n: number): number => Math.round((n / total) * width);
  const bad = cells(counts.failed + counts.aborted + counts.timed_out);
  const good = Math.min(cells(doneCount(counts)) - bad, width - bad);
  const running = Math.min(cells(counts.running), width - bad - Math.max(good, 0));
  const rest = width - bad - Math.max(good, 0) - Math.max(running, 0);
  return (
    c.green('█'.repeat(Math.max(good, 0))) +
    c.red('█'.repeat(bad)) +
    (orphaned ? c.yellow : c.cyan)('▒'.repeat(Math.max(running, 0))) +
    c.dim('░'.repeat(Math.max(rest, 0)))
  );
}

/**
 * `100/100 done  0 running  0 failed  3 cached`; with `orphaned` (the run's driver is gone), `2 orphaned` in place
 * of `2 running`.
 */
export function countsText(counts: ActionCounts, c: Colors, orphaned = false): string {
  const failed = counts.failed + counts.timed_out;
  const running = `${counts.running} ${orphaned ? 'orphaned' : 'running'}`;
  const parts = [
    `${doneCount(counts)}/${counts.total} done`,
    orphaned && counts.running > 0 ? c.yellow(running) : running,
    failed > 0 ? c.red(`${failed} failed`) : `${failed} failed`,
    `${counts.cached} cached`,
  ];
  if (counts.aborted > 0) parts.push(c.yellow(`${counts.aborted} aborted`));
  return parts.join('  ');
}

/** `ValueError: boom` (with the action, when given). */
export function errorText(error: ActionError, c: Colors): string {
  return `${c.red(error.code)}: ${error.message}`;
}

/**
 * A value as plain JSON data, for printing decoded inputs and outputs: `Map` → object (or entry list when a key is
 * not a string), `Set` and typed arrays → arrays, `Date` → ISO string, `BigInt` and non-finite numbers → strings,
 * `undefined` → `null`, errors → `{ error, message }`.
 */
export function toJsonValue(value: unknown, seen: WeakSet<object> = new WeakSet()): unknown {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? value + 0 /* -0 is 0 in JSON */ : String(value);
    case 'string':
    case 'boolean':
      return value;
    case 'function':
    case 'symbol':
      return String(value);
  }
  if (value === null) return null;
  const obj = value as object;
  if (seen.has(obj)) return '[Circular]';
  seen.add(obj);
  try {
    if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
    if (obj instanceof Error) {
      const code = (obj as { code?: unknown }).code;
      return { error: typeof code === 'string' ? code : obj.name, message: obj.message };
    }
    if (Array.isArray(obj)) return obj.map((v) => toJsonValue(v, seen));
    if (obj instanceof Set) return [...obj].map((v) => toJsonValue(v, seen));
    if (obj instanceof Map) {
      const entries = [...(obj as Map<unknown, unknown>).entries()];
      if (entries.every(([k]) => typeof k === 'string')) {
        return Object.fromEntries(entries.map(([k, v]) => [k, toJsonValue(v, seen)]));
      }
      return entries.map(([k, v]) => [toJsonValue(k, seen), toJsonValue(v, seen)]);
    }
    if (ArrayBuffer.isView(obj)) {
      return Array.from(obj as unknown as ArrayLike<number | bigint>, (v) => toJsonValue(v, seen));
    }
    if (obj instanceof ArrayBuffer) return Array.from(new Uint8Array(obj));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = toJsonValue(v, seen);
    return out;
  } finally {
    seen.delete(obj);
  }
}

/**
 * A value as JSON text for people (see {@link toJsonValue}): on one line when it fits in `width` columns, else
 * indented, with each nested value again on one line when it fits.
 *
 * @example
 * ```ts
 * jsonText({ n: 3, items: [1, 2, 3] }); // '{"n":3,"items":[1,2,3]}'
 * ```
 */
export function jsonText(value: unknown, width = 100): string {
  return layout(toJsonValue(value), '', width);
}

function layout(value: unknown, indent: string, width: number): string {
  const flat = JSON.stringify(value) ?? 'null';
  if (flat.length + indent.length <= width || value === null || typeof value !== 'object') return flat;
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every((v) => v === null || typeof v !== 'object')) {
      // A long list of plain values: as many to a line as fit.
      const lines: string[] = [];
      let line = '';
      for (const v of value.map((item) => JSON.stringify(item) ?? 'null')) {
        if (line !== '' && inner.length + line.length + v.length + 2 > width) {
          lines.push(line);
          line = '';
        }
        line += line === '' ? v : ` ${v}`;
        line += ',';
      }
      lines.push(line.slice(0, -1));
      return `[\n${lines.map((l) => inner + l).join('\n')}\n${indent}]`;
    }
    return `[\n${value.map((v) => inner + layout(v, inner, width)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return '{}';
  const body = entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${layout(v, inner, width)}`);
  return `{\n${body.join(',\n')}\n${indent}}`;
}

/**
 * Rows as aligned columns without borders, like `kubectl get`: a dim header line, then one line per row.
 *
 * @example
 * ```ts
 * table(['NAME', 'PHASE'], [['brisk-otter', 'succeeded']], c);
 * ```
 */
export function table(head: readonly string[], rows: readonly (readonly string[])[], c: Colors): string {
  const t = new Table({
    head: head.map((h) => c.bold(h)),
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  t.push(...rows.map((r) => [...r]));
  return t
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/** flyte-ts's own directory (`dist/`, or `src/` when run from source): its stack frames are noise to a user. */
const OWN_DIR = fileURLToPath(new URL('../', import.meta.url));

/** The stack frames of an error that are in the user's code (not flyte-ts's, not Node's). */
export function userFrames(stack: string | undefined): string[] {
  return (stack ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .filter((line) => !line.includes(OWN_DIR) && !line.includes(pathToFileURL(OWN_DIR).href))
    .filter((line) => !/\(?node:|\(<anonymous>\)|[\\/]node_modules[\\/](commander|tsx)[\\/]/.test(line));
}
