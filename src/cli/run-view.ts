/**
 * What `flyte run` shows while a run goes on:
 * - on a terminal, a **live view** redrawn about ten times a second: the run's phase and counts, the action tree
 *   with fan-outs folded into one line each (progress bar; done / running / failed / cached counts; while one runs,
 *   the time it has left, `ETA 12s`, from its recent completion rate (`src/internal/eta.ts`); duration; retries),
 *   the last lines the tasks logged, and after Ctrl-C a note that the run is being aborted;
 * - elsewhere (a pipe, a file, CI), **plain lines**: one per fold whose counts changed, at most once a second (no
 *   ETA: a line is written when the counts change, and an estimate on it would be stale by the next);
 *   in the JSON log format (`FLYTE_LOG_FORMAT=json`, on a terminal too) the same, as JSON lines with the fold's
 *   `group`, `parent` and `counts`.
 *
 * The live state comes from this process's recorder events (`LiveIndex`) for a run it drives, and from the
 * store, polled (`StoreFeed`), for a remote run that workers run; the final frame is read from the store, so it
 * shows what was recorded. Under the final frame the live view prints the root action's own log
 * lines (the last {@link FINAL_LOG_LINES}), which the redrawn footer showed only five at a time, and where to read
 * the rest.
 * @module
 */
import { createLogUpdate } from 'log-update';
import type { Run } from '../index.js';
import { EtaEstimator } from '../internal/eta.js';
import { runtime } from '../internal/runtime.js';
import { countsText, doneCount, elapsed, phaseIcon, phaseText } from './format.js';
import type { CliIo } from './io.js';
import { renderTree, truncate } from './render.js';
import { buildTree, foldsOf, type FoldNode, type LiveFeed, type TreeNode, type TreeSource } from './tree.js';

/** A way of showing a run while it goes on. */
export interface RunView {
  /** Starts showing the run. */
  start(): void;
  /** The user pressed Ctrl-C once: the run is being aborted. */
  interrupted(): void;
  /** Stops updating and shows the final state from `source` (the store). */
  finish(source: TreeSource): Promise<void>;
}

/** Frames per second of the live view. */
const FPS = 10;
/** Lines of task logs shown under the tree. */
export const LOG_TAIL_LINES = 5;
/** How many of the root's own log lines stay under the final frame. */
export const FINAL_LOG_LINES = 20;

/** The live view on a terminal. */
export class LiveRunView implements RunView {
  readonly #update: ReturnType<typeof createLogUpdate>;
  #timer: NodeJS.Timeout | undefined;
  #tick = 0;
  #drawing = false;
  #interrupted = false;
  /** An estimator per fold seen (by parent and fold key), fed at every frame. */
  readonly #etas = new Map<string, EtaEstimator>();

  constructor(
    readonly io: CliIo,
    readonly run: Run,
    readonly live: LiveFeed,
  ) {
    this.#update = createLogUpdate(io.stdout, { showCursor: false });
  }

  start(): void {
    this.#timer = setInterval(() => void this.#draw(), 1000 / FPS);
    void this.#draw();
  }

  interrupted(): void {
    this.#interrupted = true;
    void this.#draw();
  }

  async finish(source: TreeSource): Promise<void> {
    clearInterval(this.#timer);
    while (this.#drawing) await new Promise((resolve) => setTimeout(resolve, 5));
    this.#update(await this.#frame(source, true));
    this.#update.done();
    for (const line of await this.#rootLogs()) this.io.print(line);
  }

  /** The root's last log lines, and how to see the rest (the root's and its children's), from the store. */
  async #rootLogs(): Promise<string[]> {
    const store = runtime().store;
    const name = this.run.name;
    const [own, total] = await Promise.all([store.countLogs(name, 'a0'), store.countLogs(name)]);
    const c = this.io.out;
    const lines: string[] = [];
    const more: string[] = [];
    if (own > 0) {
      const tail = await store.listLogs(name, 'a0', { tail: FINAL_LOG_LINES });
      const which = own > tail.length ? `the last ${tail.length} of ${own} lines` : plural(own, 'line');
      lines.push(c.dim(`logs of a0 (${which}):`));
      for (const l of tail) lines.push(`  ${l.stream === 'stderr' ? c.red(l.line) : l.line}`);
      if (own > tail.length) more.push(`all of them: flyte get logs ${name} a0`);
    }
    if (total > own) more.push(`${plural(total - own, 'line')} of other actions: flyte get logs ${name}`);
    if (more.length > 0) lines.push(c.dim(more.join('  ·  ')));
    return lines;
  }

  async #draw(): Promise<void> {
    if (this.#drawing) return;
    this.#drawing = true;
    try {
      this.#tick++;
      this.#update(await this.#frame(this.live.source(this.run.name), false));
    } finally {
      this.#drawing = false;
    }
  }

  async #frame(source: TreeSource, final: boolean): Promise<string> {
    const c = this.io.out;
    const width = this.io.stdout.columns || 100;
    const rows = this.io.stdout.rows || 40;
    const now = Date.now();
    const footer: string[] = [];
    if (!final) {
      for (const line of this.live.logTail(this.run.name)) {
        footer.push(c.dim(`  ${line.actionName} │ ${line.line}`));
      }
      if (this.#interrupted) footer.push(c.yellow('aborting the run… (press Ctrl-C again to exit at once)'));
    }
    // On screen the frame must fit the terminal, or redrawing it would scroll; the final frame stays in the
    // scrollback and may be longer.
    const maxNodes = final ? 200 : Math.max(3, rows - 4 - footer.length);
    const [tree, counts] = await Promise.all([buildTree(source, { maxNodes }), source.counts()]);
    const root = tree?.action;
    const phase = final ? (await this.run.record()).phase : (root?.phase ?? 'queued');
    const header = [
      `${phaseIcon(phase, c, this.#tick)} run ${c.bold(this.run.name)}`,
      phaseText(phase, c),
      root === undefined ? '' : elapsed(root.startedAt, root.endedAt, now),
      `${counts.total} action${counts.total === 1 ? '' : 's'}: ${countsText(counts, c)}`,
    ].filter((s) => s !== '');
    const lines = [truncate(header.join('  '), width)];
    if (tree !== undefined) {
      // The final frame shows what was recorded, with nothing left to estimate.
      const etaOf = final ? undefined : this.#estimate(tree, now);
      lines.push(...renderTree(tree, { colors: c, now, tick: this.#tick, width, etaOf }));
    }
    lines.push(...footer.map((l) => truncate(l, width)));
    return lines.join('\n');
  }

  /** Feeds each fold of this frame to its estimator; returns the estimates of the frame. */
  #estimate(tree: TreeNode, now: number): (fold: FoldNode) => number | null {
    const etas = new Map<FoldNode, number | null>();
    for (const fold of foldsOf(tree)) {
      const key = `${fold.parentName}\0${fold.key}`;
      let estimator = this.#etas.get(key);
      if (estimator === undefined) this.#etas.set(key, (estimator = new EtaEstimator()));
      const progress = { total: fold.counts.total, done: doneCount(fold.counts), startedAt: fold.startedAt };
      etas.set(fold, estimator.update(progress, now));
    }
    return (fold) => etas.get(fold) ?? null;
  }
}

/** Plain lines for pipes and files: a line per fold whose counts changed, at most once a second. */
export class PlainRunView implements RunView {
  readonly #last = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  readonly #startedAt = Date.now();

  constructor(
    readonly io: CliIo,
    readonly run: Run,
    readonly live: LiveFeed,
    readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.#timer = setInterval(() => void this.#report(this.live.source(this.run.name)), this.intervalMs);
  }

  interrupted(): void {
    this.io.log.info('interrupted: aborting the run (press Ctrl-C again to exit at once)', { run: this.run.name });
  }

  async finish(source: TreeSource): Promise<void> {
    clearInterval(this.#timer);
    while (this.#busy) await new Promise((resolve) => setTimeout(resolve, 5));
    await this.#report(source);
  }

  async #report(source: TreeSource): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const tree = await buildTree(source, { maxNodes: 1000 });
      if (tree === undefined) return;
      const at = elapsed(this.#startedAt, Date.now());
      for (const fold of foldsOf(tree)) {
        const key = `${fold.parentName}/${fold.label}`;
        const text = countsText(fold.counts, this.io.out);
        if (this.#last.get(key) === text) continue;
        this.#last.set(key, text);
        if (this.io.log.format === 'json') {
          this.io.results.info(`${fold.label}  ${text}`, {
            run: this.run.name,
            group: fold.label,
            parent: fold.parentName,
            counts: fold.counts,
          });
        } else this.io.print(`[${at}] ${fold.label}  ${text}`);
      }
    } finally {
      this.#busy = false;
    }
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
