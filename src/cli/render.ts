/**
 * Renders a folded action tree (see `tree.ts`) as terminal lines: one line per action or fold, tree guides,
 * phase marks, durations, retries, cache hits, progress bars with counts for folds (and, in the live view, the time a
 * running fold has left).
 *
 * ```
 * ✓ main a0                                        2.1s
 * ├─ ✓ load 3f9a2c01                                120ms
 * ├─ ⠹ map_demo.process_map ██████████▒▒░░░░░░░░  52/100 done  4 running  0 failed  0 cached  ETA 2s  1.8s
 * └─ ○ report 7be1d2aa                              -
 * ```
 * @module
 */
import type { ActionRecord, RunPhase } from '../index.js';
import { displayName } from '../internal/display-name.js';
import { countsText, elapsed, errorText, etaText, phaseIcon, progressBar, type Colors } from './format.js';
import type { ActionNode, FoldNode, TreeNode } from './tree.js';

/** Options of {@link renderTree}. */
export interface RenderOptions {
  readonly colors: Colors;
  /** The clock for running durations. @default Date.now() */
  readonly now?: number;
  /** Animation step for running marks. @default 0 */
  readonly tick?: number;
  /** Cut lines to this many columns. @default no limit */
  readonly width?: number;
  /** Width of fold progress bars. @default 20 */
  readonly barWidth?: number;
  /** At most this many causes of failure under each fold, the largest. @default 5 */
  readonly maxCauses?: number;
  /**
   * The run is orphaned and its driver was last seen then: its running and queued actions and folds are drawn
   * orphaned (`?`, never a spinner), their durations ending at this time. @default not orphaned
   */
  readonly lastSeenAt?: number | null;
  /**
   * The time a running fold has left, in ms (`null`: no estimate), shown next to its counts as `ETA 12s`; the live
   * view passes its estimators' (`src/internal/eta.ts`). Never shown for an orphaned run. @default no ETA
   */
  readonly etaOf?: (fold: FoldNode) => number | null;
}

// The SGR colour sequences picocolors writes: all of them, and one as a split separator that is kept.
// eslint-disable-next-line no-control-regex
const SGR = /\u001b\[[0-9;]*m/g;
// eslint-disable-next-line no-control-regex
const SGR_SPLIT = /(\u001b\[[0-9;]*m)/;

/** The width of a line on screen (colour sequences take none). */
export function visibleLength(text: string): number {
  return [...text.replace(SGR, '')].length;
}

/** Cuts a coloured line to `width` columns, ending it with `…` when cut. */
export function truncate(text: string, width: number): string {
  if (visibleLength(text) <= width) return text;
  let out = '';
  let used = 0;
  for (const part of text.split(SGR_SPLIT)) {
    if (part.startsWith('\u001b[')) {
      out += part;
      continue;
    }
    for (const ch of part) {
      if (used >= width - 1) return `${out}…\u001b[0m`;
      out += ch;
      used++;
    }
  }
  return out;
}

/** Pads a coloured string with spaces to `width` columns. */
function pad(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - visibleLength(text)));
}

/**
 * The phase a fold shows: running while any member is not finished (orphaned when the run is), else the worst
 * outcome.
 */
export function foldPhase(f: FoldNode, orphaned = false): RunPhase {
  const c = f.counts;
  if (c.running > 0 || c.queued > 0) return orphaned ? 'orphaned' : c.running > 0 ? 'running' : 'queued';
  if (c.failed > 0) return 'failed';
  if (c.timed_out > 0) return 'timed_out';
  if (c.aborted > 0) return 'aborted';
  return 'succeeded';
}

interface Row {
  readonly left: string;
  readonly right: string;
}

/**
 * The lines of a tree, root first.
 *
 * @example
 * ```ts
 * const lines = renderTree(tree, { colors: pc.createColors(false), width: 100 });
 * ```
 */
export function renderTree(root: ActionNode, options: RenderOptions): string[] {
  const rows: Row[] = [];
  const visit = (node: TreeNode, prefix: string, guide: string): void => {
    rows.push(row(node, prefix + guide, options));
    const childPrefix = prefix + (guide === '' ? '' : guide.startsWith('└') ? '   ' : '│  ');
    if (node.kind === 'fold') rows.push(...causeRows(node, childPrefix, options));
    if (node.kind !== 'action') return;
    node.children.forEach((child, i) => {
      visit(child, childPrefix, i === node.children.length - 1 ? '└─ ' : '├─ ');
    });
  };
  visit(root, '', '');
  // Align the right-hand columns, but do not let one long name push everything off screen.
  // Lines with nothing on the right (causes, `… more`) do not count.
  const leftWidth = Math.min(Math.max(0, ...rows.filter((r) => r.right !== '').map((r) => visibleLength(r.left))), 48);
  return rows.map((r) => {
    const line = r.right === '' ? r.left : `${pad(r.left, leftWidth)}  ${r.right}`;
    return options.width === undefined ? line : truncate(line, options.width);
  });
}

function row(node: TreeNode, guide: string, o: RenderOptions): Row {
  const c = o.colors;
  const now = o.now ?? Date.now();
  const dimGuide = c.dim(guide);
  if (node.kind === 'more') return { left: `${dimGuide}${c.dim(`… ${node.hidden} more`)}`, right: '' };
  if (node.kind === 'fold') {
    const f = node;
    const orphaned = o.lastSeenAt != null;
    const parts = [progressBar(f.counts, o.barWidth ?? 20, c, orphaned), countsText(f.counts, c, orphaned)];
    const eta = orphaned ? null : (o.etaOf?.(f) ?? null);
    if (eta !== null) parts.push(c.cyan(etaText(eta)));
    parts.push(elapsed(f.startedAt, f.endedAt ?? seenUntil(f.startedAt, o.lastSeenAt), now));
    if (f.retried > 0) parts.push(c.yellow(`${f.retried} retried`));
    // With causes listed under the fold, the first failure is one of their examples.
    if (f.firstFailure !== null && f.causes.length === 0) {
      parts.push(`first failure ${c.dim(f.firstFailure.name)} ${errorText(f.firstFailure.error, c)}`);
    }
    return {
      left: `${dimGuide}${phaseIcon(foldPhase(f, orphaned), c, o.tick)} ${c.bold(f.label)}`,
      right: parts.join('  '),
    };
  }
  return actionRow(node.action, dimGuide, o, now);
}

/**
 * The lines under a fold that list its causes of failure, largest first: `212 × HTTP 503 for item <n>  Error  e.g.
 * fetch #7 a1-3f9c…`, then `… 2 more causes` past `maxCauses`.
 */
function causeRows(f: FoldNode, prefix: string, o: RenderOptions): Row[] {
  const c = o.colors;
  const max = o.maxCauses ?? 5;
  const guide = c.dim(`${prefix}   `);
  const rows: Row[] = f.causes.slice(0, max).map((cause) => ({
    left:
      `${guide}${c.red(`${cause.count} ×`)} ${cause.pattern === '' ? cause.code : cause.pattern}  ` +
      `${c.dim(cause.code)}  ${c.dim('e.g.')} ${cause.exampleLabel} ${c.dim(cause.example)}`,
    right: '',
  }));
  const hidden = f.causes.length - max;
  if (hidden > 0)
    rows.push({ left: `${guide}${c.dim(`… ${hidden} more cause${hidden === 1 ? '' : 's'}`)}`, right: '' });
  return rows;
}

/**
 * Where the duration of something not ended stops in an orphaned run: when its driver was last seen (never before
 * the thing started); `null` (up to now) when the run is not orphaned.
 */
export function seenUntil(startedAt: number | null, lastSeenAt: number | null | undefined): number | null {
  if (lastSeenAt == null) return null;
  return Math.max(lastSeenAt, startedAt ?? lastSeenAt);
}

function actionRow(a: ActionRecord, guide: string, o: RenderOptions, now: number): Row {
  const c = o.colors;
  const orphaned = o.lastSeenAt != null && (a.phase === 'running' || a.phase === 'queued');
  const left = `${guide}${phaseIcon(orphaned ? 'orphaned' : a.phase, c, o.tick)} ${displayName(a)} ${c.dim(a.name)}`;
  const parts = [
    a.phase === 'queued'
      ? c.dim(orphaned ? 'queued, orphaned' : 'queued')
      : elapsed(a.startedAt, a.endedAt ?? (orphaned ? seenUntil(a.startedAt, o.lastSeenAt) : null), now),
  ];
  if (orphaned && a.phase === 'running') parts.push(c.yellow('orphaned'));
  if (a.cacheHit) parts.push(c.blue('cached'));
  if (a.attempts > 1) parts.push(c.yellow(`attempt ${a.attempts}`));
  if (a.error !== null && a.phase !== 'succeeded') parts.push(errorText(a.error, c));
  return { left, right: parts.join('  ') };
}
