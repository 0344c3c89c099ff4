/**
 * A run's action tree as the CLI shows it: actions nest under their parents; the members of a group (a
 * `flyte.map`, a `flyte.group`) fold into one node with counts, and so do many ungrouped calls of one task under
 * one parent (a `Promise.all` fan-out). A 10 000-item map is one line.
 *
 * The tree is read from a {@link TreeSource}: the store (any run, any process) or the live events of this
 * process's recorder (no store reads while a run goes on); a remote run is followed in the store (`store-feed.ts`).
 * @module
 */
import type { ActionCounts, ActionError, ActionRecord, LogLine } from '../index.js';
import { displayName } from '../internal/display-name.js';
import { causeOf } from '../internal/error-cause.js';
import type { Recorder } from '../internal/recorder.js';
import {
  countsOfItems,
  emptyCounts,
  pickActionRecord,
  type FailureCause,
  type GroupSummary,
  type MapTotal,
  type RunStore,
} from '../store/run-store.js';

/** Where the tree comes from. */
export interface TreeSource {
  /** The root action `a0`, `undefined` before it is recorded. */
  root(): Promise<ActionRecord | undefined>;
  /** Direct children of an action, in creation order. */
  children(parentName: string): Promise<readonly ActionRecord[]>;
  /**
   * Counts of all the run's actions by phase; the items that maps of known size have not started yet count as
   * `queued` (see `countsOfItems`).
   */
  counts(): Promise<ActionCounts>;
  /** The items each group under `parentName` will run in all, where its maps had inputs of known size. */
  expected(parentName: string): Promise<ReadonlyMap<string, number>>;
}

/** One action, with its (folded) children. */
export interface ActionNode {
  readonly kind: 'action';
  readonly action: ActionRecord;
  readonly children: TreeNode[];
}

/** Many sibling actions folded into one node: a group, or many calls of one task. */
export interface FoldNode {
  readonly kind: 'fold';
  readonly parentName: string;
  /**
   * What the fold is under its parent, stable while it grows: its group, or the task of ungrouped calls (the
   * label of those has their number in it).
   */
  readonly key: string;
  /** The group's name, or `${shortName} ×${n}` for ungrouped calls of one task. */
  readonly label: string;
  readonly group: string | null;
  /**
   * Counts of the members; for a map whose input had a known size, `total` is its number of items and the items
   * not started yet count as `queued`, so that progress is of the items, not of the actions started so far.
   */
  readonly counts: ActionCounts;
  /** The items the group's maps will run, when known (`null` otherwise). */
  readonly expected: number | null;
  /** Earliest start of a member. */
  readonly startedAt: number | null;
  /** Latest end, once every member has ended; `null` before. */
  readonly endedAt: number | null;
  /** Members that needed more than one attempt. */
  readonly retried: number;
  /** The first member that failed, for a hint. */
  readonly firstFailure: { readonly name: string; readonly error: ActionError } | null;
  /**
   * The failed and timed-out members grouped by cause (error code and masked message), largest first, as the
   * store's `listCauses` gives them; `[]` when none failed.
   */
  readonly causes: readonly FoldCause[];
}

/** A cause of failure of a fold's members, with the name a person reads of its example (`task #i`). */
export interface FoldCause extends FailureCause {
  /** {@link displayName} of the example member. */
  readonly exampleLabel: string;
}

/** Siblings left out because the tree reached its size limit. */
export interface MoreNode {
  readonly kind: 'more';
  readonly parentName: string;
  readonly hidden: number;
}

export type TreeNode = ActionNode | FoldNode | MoreNode;

/** Options of {@link buildTree}. */
export interface BuildTreeOptions {
  /** At most this many nodes (lines) besides the root. @default 200 */
  readonly maxNodes?: number;
  /** Ungrouped calls of one task under one parent fold when there are at least this many. @default 5 */
  readonly foldMin?: number;
}

/**
 * Reads the folded tree of a run from `source`, depth first, expanding actions (never folds) until `maxNodes`.
 *
 * @example
 * ```ts
 * const tree = await buildTree(new StoreTreeSource(store, 'brisk-otter'), { maxNodes: 50 });
 * ```
 */
export async function buildTree(source: TreeSource, options: BuildTreeOptions = {}): Promise<ActionNode | undefined> {
  const root = await source.root();
  if (root === undefined) return undefined;
  const node: ActionNode = { kind: 'action', action: root, children: [] };
  const budget = { left: options.maxNodes ?? 200 };
  await expand(source, node, budget, options.foldMin ?? 5);
  return node;
}

async function expand(source: TreeSource, node: ActionNode, budget: { left: number }, foldMin: number): Promise<void> {
  if (budget.left <= 0) return;
  const [children, expected] = await Promise.all([
    source.children(node.action.name),
    source.expected(node.action.name),
  ]);
  const items = foldChildren(node.action.name, children, foldMin, expected);
  for (let i = 0; i < items.length; i++) {
    if (budget.left <= 0) {
      node.children.push({ kind: 'more', parentName: node.action.name, hidden: items.length - i });
      return;
    }
    budget.left--;
    const item = items[i] as TreeNode;
    node.children.push(item);
    if (item.kind === 'action') await expand(source, item, budget, foldMin);
  }
}

/**
 * Folds the children of one parent: every group into one node (where its first member was), and ungrouped calls
 * of one task into one node when there are at least `foldMin` of them. Other children stay actions.
 */
export function foldChildren(
  parentName: string,
  children: readonly ActionRecord[],
  foldMin: number,
  expected: ReadonlyMap<string, number> = new Map(),
): TreeNode[] {
  const keyOf = (a: ActionRecord): string => (a.group !== null ? `g\0${a.group}` : `t\0${a.taskName}`);
  const sizes = new Map<string, number>();
  for (const a of children) sizes.set(keyOf(a), (sizes.get(keyOf(a)) ?? 0) + 1);
  const folds = new Map<string, FoldBuilder>();
  const out: (TreeNode | FoldBuilder)[] = [];
  for (const a of children) {
    const key = keyOf(a);
    if (a.group === null && (sizes.get(key) ?? 0) < foldMin) {
      out.push({ kind: 'action', action: a, children: [] });
      continue;
    }
    let fold = folds.get(key);
    if (fold === undefined) {
      fold = new FoldBuilder(parentName, key, a.group, a.group ?? `${a.shortName} ×${sizes.get(key) ?? 0}`);
      folds.set(key, fold);
      out.push(fold);
    }
    fold.add(a);
  }
  return out.map((item) =>
    item instanceof FoldBuilder ? item.build(item.group === null ? undefined : expected.get(item.group)) : item,
  );
}

class FoldBuilder {
  readonly counts = emptyCounts() as { -readonly [K in keyof ActionCounts]: number };
  startedAt: number | null = null;
  endedAt: number | null = null;
  allEnded = true;
  retried = 0;
  firstFailure: FoldNode['firstFailure'] = null;
  /** Causes by `code\0pattern`, in the order their first member came (a `Map` keeps insertion order). */
  readonly causes = new Map<string, { -readonly [K in keyof FoldCause]: FoldCause[K] }>();

  constructor(
    readonly parentName: string,
    readonly key: string,
    readonly group: string | null,
    readonly label: string,
  ) {}

  add(a: ActionRecord): void {
    this.counts.total++;
    this.counts[a.phase]++;
    if (a.cacheHit) this.counts.cached++;
    if (a.attempts > 1) this.retried++;
    if (a.startedAt !== null && (this.startedAt === null || a.startedAt < this.startedAt)) this.startedAt = a.startedAt;
    if (a.endedAt === null) this.allEnded = false;
    else if (this.endedAt === null || a.endedAt > this.endedAt) this.endedAt = a.endedAt;
    if (this.firstFailure === null && a.error !== null && (a.phase === 'failed' || a.phase === 'timed_out')) {
      this.firstFailure = { name: a.name, error: a.error };
    }
    const cause = a.error === null ? null : causeOf(a);
    if (cause !== null) {
      const key = `${cause.code}\0${cause.pattern}`;
      const seen = this.causes.get(key);
      if (seen !== undefined) seen.count++;
      else this.causes.set(key, { ...cause, count: 1, example: a.name, exampleLabel: displayName(a) });
    }
  }

  build(expected: number | undefined): FoldNode {
    return {
      kind: 'fold',
      parentName: this.parentName,
      key: this.key,
      label: this.label,
      group: this.group,
      counts: countsOfItems({ ...this.counts }, expected),
      expected: expected ?? null,
      startedAt: this.startedAt,
      endedAt: this.allEnded ? this.endedAt : null,
      retried: this.retried,
      firstFailure: this.firstFailure,
      // A stable sort: equal counts stay in the order of their first member, as the stores order them.
      causes: [...this.causes.values()].sort((x, y) => y.count - x.count),
    };
  }
}

/** Every fold node of a tree, depth first. */
export function foldsOf(node: TreeNode): FoldNode[] {
  if (node.kind === 'fold') return [node];
  if (node.kind === 'more') return [];
  return node.children.flatMap(foldsOf);
}

/** The tree of one run as recorded in a store. */
export class StoreTreeSource implements TreeSource {
  #groups: Promise<GroupSummary[]> | undefined;

  constructor(
    readonly store: RunStore,
    readonly runName: string,
  ) {}

  /** The run's groups, read once per source (one tree). */
  #listGroups(): Promise<GroupSummary[]> {
    return (this.#groups ??= this.store.listGroups(this.runName));
  }

  async expected(parentName: string): Promise<ReadonlyMap<string, number>> {
    const out = new Map<string, number>();
    for (const g of await this.#listGroups()) {
      if (g.parentName === parentName && g.expected !== null) out.set(g.group, g.expected);
    }
    return out;
  }

  root(): Promise<ActionRecord | undefined> {
    return this.store.getAction(this.runName, 'a0');
  }

  children(parentName: string): Promise<ActionRecord[]> {
    return this.store.listActions(this.runName, { parentName });
  }

  async counts(): Promise<ActionCounts> {
    const [counts, groups] = await Promise.all([this.store.countActions(this.runName), this.#listGroups()]);
    return notStartedAsQueued(
      counts,
      groups.map((g) => [g.counts.total, g.expected]),
    );
  }
}

/** Run-wide counts plus, as `queued`, the items of maps of known size that have not started yet. */
function notStartedAsQueued(counts: ActionCounts, groups: Iterable<readonly [number, number | null]>): ActionCounts {
  let missing = 0;
  for (const [started, expected] of groups) if (expected !== null && expected > started) missing += expected - started;
  return missing === 0 ? counts : { ...counts, total: counts.total + missing, queued: counts.queued + missing };
}

/** The actions and recent log lines of one run, as the recorder reported them. */
class LiveRun implements TreeSource {
  readonly actions = new Map<string, ActionRecord>();
  readonly childNames = new Map<string, string[]>();
  readonly logTail: LogLine[] = [];
  /** Map totals by parent, then group, then map call. */
  readonly totals = new Map<string, Map<string, Map<number, number>>>();

  putTotal(m: MapTotal): void {
    let byGroup = this.totals.get(m.parentName);
    if (byGroup === undefined) this.totals.set(m.parentName, (byGroup = new Map<string, Map<number, number>>()));
    let bySeq = byGroup.get(m.group);
    if (bySeq === undefined) byGroup.set(m.group, (bySeq = new Map<number, number>()));
    bySeq.set(m.seq, m.total);
  }

  async expected(parentName: string): Promise<ReadonlyMap<string, number>> {
    const out = new Map<string, number>();
    for (const [group, bySeq] of this.totals.get(parentName) ?? []) {
      out.set(
        group,
        [...bySeq.values()].reduce((a, b) => a + b, 0),
      );
    }
    return out;
  }

  put(a: ActionRecord): void {
    const record = pickActionRecord(a);
    if (!this.actions.has(a.name) && a.parentName !== null) {
      const siblings = this.childNames.get(a.parentName);
      if (siblings === undefined) this.childNames.set(a.parentName, [a.name]);
      else siblings.push(a.name);
    }
    this.actions.set(a.name, record);
  }

  async root(): Promise<ActionRecord | undefined> {
    return this.actions.get('a0');
  }

  async children(parentName: string): Promise<ActionRecord[]> {
    const names = this.childNames.get(parentName) ?? [];
    return names.map((n) => this.actions.get(n) as ActionRecord);
  }

  async counts(): Promise<ActionCounts> {
    const counts = emptyCounts() as { -readonly [K in keyof ActionCounts]: number };
    const started = new Map<string, number>();
    for (const a of this.actions.values()) {
      counts.total++;
      counts[a.phase]++;
      if (a.cacheHit) counts.cached++;
      if (a.group !== null && a.parentName !== null) {
        const key = `${a.parentName}\0${a.group}`;
        started.set(key, (started.get(key) ?? 0) + 1);
      }
    }
    const groups: [number, number][] = [];
    for (const [parent, byGroup] of this.totals) {
      for (const [group, bySeq] of byGroup) {
        const expected = [...bySeq.values()].reduce((a, b) => a + b, 0);
        groups.push([started.get(`${parent}\0${group}`) ?? 0, expected]);
      }
    }
    return notStartedAsQueued(counts, groups);
  }
}

/**
 * Where the views of a run going on read it between frames: this process's recorder events ({@link LiveIndex}) for
 * a run it drives, the store polled (`StoreFeed`, `store-feed.ts`) for a run that workers run.
 */
export interface LiveFeed {
  /** The tree source of one run, as known now. */
  source(runName: string): TreeSource;
  /** The last log lines of one run, oldest first. */
  logTail(runName: string): readonly LogLine[];
  /** Stops following. */
  close(): void;
}

/**
 * The live state of this process's runs, kept from the recorder's events: a tree source that costs no store
 * reads (and so no early commits) while a run goes on.
 *
 * @example
 * ```ts
 * const live = new LiveIndex(runtime().recorder, 5);
 * const run = await flyte.run(main, items);
 * const tree = await buildTree(live.source(run.name));
 * live.close();
 * ```
 */
export class LiveIndex implements LiveFeed {
  readonly #runs = new Map<string, LiveRun>();
  readonly #onAction = (a: ActionRecord): void => this.#run(a.runName).put(a);
  readonly #onMapTotal = (m: MapTotal): void => this.#run(m.runName).putTotal(m);
  readonly #onLog = (line: LogLine): void => {
    const tail = this.#run(line.runName).logTail;
    tail.push(line);
    if (tail.length > this.logLines) tail.shift();
  };

  constructor(
    readonly recorder: Recorder,
    /** How many recent log lines to keep per run. */
    readonly logLines: number,
  ) {
    recorder.on('action', this.#onAction);
    recorder.on('mapTotal', this.#onMapTotal);
    recorder.on('log', this.#onLog);
  }

  #run(name: string): LiveRun {
    let run = this.#runs.get(name);
    if (run === undefined) {
      run = new LiveRun();
      this.#runs.set(name, run);
    }
    return run;
  }

  /** The tree source of one run. */
  source(runName: string): TreeSource {
    return this.#run(runName);
  }

  /** The last log lines of one run, oldest first. */
  logTail(runName: string): readonly LogLine[] {
    return this.#run(runName).logTail;
  }

  /** Stops listening. */
  close(): void {
    this.recorder.off('action', this.#onAction);
    this.recorder.off('mapTotal', this.#onMapTotal);
    this.recorder.off('log', this.#onLog);
  }
}
