/**
 * What `flyte run` shows while a run goes on:
 * - on a terminal, a **live view** redrawn about ten times a second: the run's phase and counts, the action tree
 *   with fan-outs folded into one line each (progress bar; done / running / failed / cached counts; duration;
 *   retries), the last lines the tasks logged, and after Ctrl-C a note that the run is being aborted;
 * - elsewhere (a pipe, a file, CI), **plain lines**: one per fold whose counts changed, at most once a second.
 *
 * The live state comes from this process's recorder events ({@link LiveIndex}); the final frame is read from the
 * store, so it shows what was recorded.
 * @module
 */
import { createLogUpdate } from 'log-update';
import type { Run } from '../index.js';
import { countsText, elapsed, phaseIcon, phaseText } from './format.js';
import type { CliIo } from './io.js';
import { renderTree, truncate } from './render.js';
import { buildTree, foldsOf, type LiveIndex, type TreeSource } from './tree.js';

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

/** The live view on a terminal. */
export class LiveRunView implements RunView {
  readonly #update: ReturnType<typeof createLogUpdate>;
  #timer: NodeJS.Timeout | undefined;
  #tick = 0;
  #drawing = false;
  #interrupted = false;

  constructor(
    readonly io: CliIo,
    readonly run: Run,
    readonly live: LiveIndex,
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
    if (tree !== undefined) lines.push(...renderTree(tree, { colors: c, now, tick: this.#tick, width }));
    lines.push(...footer.map((l) => truncate(l, width)));
    return lines.join('\n');
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
    readonly live: LiveIndex,
    readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.#timer = setInterval(() => void this.#report(this.live.source(this.run.name)), this.intervalMs);
  }

  interrupted(): void {
    this.io.error('interrupted: aborting the run (press Ctrl-C again to exit at once)');
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
        this.io.print(`[${at}] ${fold.label}  ${text}`);
      }
    } finally {
      this.#busy = false;
    }
  }
}
