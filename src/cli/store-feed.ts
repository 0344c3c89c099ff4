/**
 * The live state of a run that this process does not drive (a remote run: `flyte worker` processes run its
 * actions and record them), read from the store. The recorder of this process sees none of its events, so the
 * views of `flyte run` and `flyte rerun` follow it by polling: every {@link POLL_MS} a {@link StoreFeed} reads the
 * run's folded tree (as `flyte get run` does: the root, the children of the nodes it shows, the groups and the
 * counts) and the log lines written since the last poll, and the views draw the last complete snapshot. Frames
 * between polls cost no store reads.
 * @module
 */
import type { ActionCounts, ActionRecord, LogLine } from '../index.js';
import { emptyCounts, type RunStore } from '../store/run-store.js';
import { StoreTreeSource, buildTree, type LiveFeed, type TreeSource } from './tree.js';

/** How often the store is read while the run goes on. */
export const POLL_MS = 300;

/** How many tree nodes a poll reads ahead: the plain view's budget, more than a terminal shows. */
const WARM_NODES = 1000;

/** At most this many new log lines are read per poll (a body that logs faster is shown in part). */
const MAX_NEW_LOG_LINES = 2000;

/** Options of {@link StoreFeed}. */
export interface StoreFeedOptions {
  /** How many recent log lines to keep for the view's footer. */
  readonly logLines: number;
  /** Called with the log lines recorded since the last poll, oldest first (plain output echoes them). */
  readonly onLogs?: (lines: readonly LogLine[]) => void;
  /** @default {@link POLL_MS} */
  readonly intervalMs?: number;
}

/**
 * Polls the store for one run and serves the last snapshot as the views' tree source.
 *
 * @example
 * ```ts
 * const feed = new StoreFeed(runtime().store, run.name, { logLines: 5 });
 * feed.start();
 * const tree = await buildTree(feed.source(run.name));
 * feed.close();
 * ```
 */
export class StoreFeed implements LiveFeed {
  #current: TreeSource = EMPTY;
  readonly #tail: LogLine[] = [];
  #logsSeen = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #closed = false;

  constructor(
    readonly store: RunStore,
    readonly runName: string,
    readonly options: StoreFeedOptions,
  ) {}

  /** Starts polling (at once, then every interval). */
  start(): void {
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), this.options.intervalMs ?? POLL_MS);
  }

  /**
   * Reads the store once now (or joins the read in progress): the next frame shows what is recorded now, and the
   * log lines recorded until now have been handed to `onLogs`. A failed read keeps the last snapshot.
   */
  poll(): Promise<void> {
    this.#polling ??= this.#read().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #read(): Promise<void> {
    if (this.#closed) return;
    try {
      const source = new MemoSource(new StoreTreeSource(this.store, this.runName));
      const [, , total] = await Promise.all([
        buildTree(source, { maxNodes: WARM_NODES }),
        source.counts(),
        this.store.countLogs(this.runName),
      ]);
      let fresh: LogLine[] = [];
      if (total > this.#logsSeen) {
        fresh = await this.store.listLogs(this.runName, undefined, {
          tail: Math.min(total - this.#logsSeen, MAX_NEW_LOG_LINES),
        });
        this.#logsSeen = total;
      }
      if (this.#closed) return;
      this.#current = source;
      this.#tail.push(...fresh);
      if (this.#tail.length > this.options.logLines) this.#tail.splice(0, this.#tail.length - this.options.logLines);
      if (fresh.length > 0) this.options.onLogs?.(fresh);
    } catch {
      // The store could not be read this time (a dropped connection): the view keeps the last snapshot, and the
      // next poll tries again; the run's end is learned by the wait, not here.
    }
  }

  source(runName: string): TreeSource {
    return runName === this.runName ? this.#current : EMPTY;
  }

  logTail(runName: string): readonly LogLine[] {
    return runName === this.runName ? this.#tail : [];
  }

  /** Stops polling. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}

/** A tree source that reads each part of the tree from the store once: one snapshot. */
class MemoSource implements TreeSource {
  #root: Promise<ActionRecord | undefined> | undefined;
  #counts: Promise<ActionCounts> | undefined;
  readonly #children = new Map<string, Promise<readonly ActionRecord[]>>();
  readonly #expected = new Map<string, Promise<ReadonlyMap<string, number>>>();

  constructor(readonly inner: TreeSource) {}

  root(): Promise<ActionRecord | undefined> {
    return (this.#root ??= this.inner.root());
  }

  counts(): Promise<ActionCounts> {
    return (this.#counts ??= this.inner.counts());
  }

  children(parentName: string): Promise<readonly ActionRecord[]> {
    return memo(this.#children, parentName, () => this.inner.children(parentName));
  }

  expected(parentName: string): Promise<ReadonlyMap<string, number>> {
    return memo(this.#expected, parentName, () => this.inner.expected(parentName));
  }
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, read: () => Promise<T>): Promise<T> {
  let p = cache.get(key);
  if (p === undefined) {
    p = read();
    cache.set(key, p);
  }
  return p;
}

/** Before the first poll: nothing recorded yet. */
const EMPTY: TreeSource = {
  root: async () => undefined,
  children: async () => [],
  counts: async () => emptyCounts(),
  expected: async () => new Map(),
};
