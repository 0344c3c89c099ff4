/**
 * A run's action tree with its timeline: one row per node, the Gantt bar of each node in the row's last column.
 *
 * Groups (a `flyte.map`, a `flyte.group`) are one node whatever their size, drawn from the server's per-group
 * counts; expanding one reads its members a page at a time (optionally only those in one phase). Many
 * ungrouped calls of one task under one parent (a `Promise.all` fan-out) fold the same way. Every node reads its
 * own data, so a live update refreshes exactly the rows on screen.
 */
import { Fragment, createContext } from 'preact';
import { useContext, useRef, useState } from 'preact/hooks';
import { query, runPath, serverNow, useData } from './api.js';
import { CountsBar, CountsText, PhaseDot, Tag } from './components.js';
import {
  PHASE_LABELS,
  actionKind,
  count,
  displayName,
  done,
  duration,
  etaLabel,
  etaMs,
  fullTime,
  offset as offsetLabel,
  openEnd,
  shownPhase,
  splitTaskName,
} from './format.js';
import { html } from './html.js';
import { CauseList, MemberSearch, NO_FILTER, filterLabel, filterParams } from './member-search.js';

/**
 * What the rows share: the run, the time scale of the timeline, which nodes are open and which is selected.
 * `select(node)` takes `{ kind: 'action', name }` or `{ kind: 'group', parent, group }`.
 */
export const TreeContext = createContext(null);

const CHILD_PAGE = 50;
const GROUP_PAGE = 100;
/** Ungrouped calls of one task fold when there are at least this many siblings. */
const FOLD_MIN = 5;

const groupKey = (parent, group) => `g:${parent}\u0000${group}`;

/** The time axis above the timeline column. */
export function TimelineAxis({ scale }) {
  const span = Math.max(1, scale.end - scale.start);
  const ticks = [0, 1 / 3, 2 / 3, 1];
  return html`<div class="track axis">
    ${ticks.map(
      (t) => html`<span class="tick" style=${{ left: `${t * 100}%` }}>${offsetLabel(Math.round(t * span))}</span>`,
    )}
  </div>`;
}

/** The header row and the whole tree under the root action. */
export function Tree({ root }) {
  const { scale } = useContext(TreeContext);
  return html`<div class="tree" role="tree" data-testid="tree">
    <div class="row row-head">
      <div class="cell">Action</div>
      <div class="cell">Status</div>
      <div class="cell num">Duration</div>
      <div class="cell timeline-cell"><${TimelineAxis} scale=${scale} /></div>
    </div>
    <${ActionNode} action=${root} depth=${0} />
  </div>`;
}

/** A bar on the timeline from `start` to `end` (or now), coloured by phase or split by counts. */
function Bar({ start, end, phase, counts }) {
  const { scale } = useContext(TreeContext);
  if (start === null || start === undefined) return null;
  const span = Math.max(1, scale.end - scale.start);
  const stop = end ?? serverNow();
  const left = Math.min(100, Math.max(0, ((start - scale.start) / span) * 100));
  const width = Math.max(0.4, Math.min(100 - left, ((stop - start) / span) * 100));
  const style = { left: `${left}%`, width: `${width}%` };
  if (counts !== undefined) {
    return html`<div class="span span-group" style=${style}><${CountsBar} counts=${counts} /></div>`;
  }
  return html`<div class=${`span phase-${phase}${end === null ? ' open' : ''}`} style=${style}></div>`;
}

function Twisty({ open, onToggle, label, disabled = false }) {
  if (disabled) return html`<span class="twisty-space"></span>`;
  return html`<button
    class=${`twisty${open ? ' open' : ''}`}
    aria-label=${`${open ? 'Collapse' : 'Expand'} ${label}`}
    aria-expanded=${open}
    onClick=${(e) => {
      e.stopPropagation();
      onToggle();
    }}
  >
    <svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><path d="M6 4l4 4-4 4" /></svg>
  </button>`;
}

function rowProps(selected, onSelect, depth) {
  return {
    role: 'treeitem',
    tabIndex: 0,
    'aria-selected': selected,
    style: { '--depth': depth },
    onClick: onSelect,
    onKeyDown: (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        onSelect();
      }
    },
  };
}

/** One action, and its children when open. */
export function ActionNode({ action, depth, index }) {
  const tree = useContext(TreeContext);
  const key = `a:${action.name}`;
  const open = tree.expanded.has(key);
  const selected = tree.selected?.kind === 'action' && tree.selected.name === action.name;
  const kind = actionKind(action.taskName);
  const [env, name] = splitTaskName(action.taskName);
  const phase = shownPhase(action.phase, tree.lastSeenAt);
  // Still running: up to now, or in an orphaned run up to when its driver was last seen.
  const runningEnd = action.phase === 'running' ? openEnd(action.startedAt, tree.lastSeenAt, serverNow()) : null;
  const durationMs = action.startedAt === null ? null : (action.endedAt ?? runningEnd) - action.startedAt;
  const orphanNote =
    phase === action.phase
      ? undefined
      : `${PHASE_LABELS[action.phase]} when its run was last seen, ${fullTime(tree.lastSeenAt)}`;
  return html`<${Fragment}>
    <div
      class=${`row row-action${selected ? ' selected' : ''}`}
      data-action=${action.name}
      ...${rowProps(selected, () => tree.select({ kind: 'action', name: action.name }), depth)}
    >
      <div class="cell name">
        <${Twisty} open=${open} label=${name} disabled=${!action.hasChildren} onToggle=${() => tree.toggle(key)} />
        <${PhaseDot} phase=${phase} />
        ${kind !== 'task' && html`<${Tag} kind=${kind}>${kind}</${Tag}>`}
        <span class="label" title=${action.name}>${action.itemIndex == null ? name : displayName(action)}</span>
        ${
          action.itemIndex == null &&
          index !== undefined &&
          html`<span class="index mono" title="position in the group">#${index}</span>`
        }
        ${kind === 'task' && env && (depth === 0 || env !== tree.rootEnv) && html`<span class="env">${env}</span>`}
        ${action.cacheHit && html`<${Tag} kind="cached" title="output reused from the cache">cached</${Tag}>`}
        ${action.attempts > 1 && html`<${Tag} kind="retry" title="attempts">×${action.attempts}</${Tag}>`}
      </div>
      <div class="cell status">
        <span class=${`phase-text phase-${phase}`} title=${orphanNote}>${PHASE_LABELS[phase]}</span>
      </div>
      <div class="cell num mono">${duration(durationMs)}</div>
      <div class="cell timeline-cell">
        <div class="track">
          <${Bar}
            start=${action.startedAt}
            end=${action.endedAt ?? (action.phase !== 'running' ? action.startedAt : tree.lastSeenAt === null ? null : runningEnd)}
            phase=${phase}
          />
        </div>
      </div>
    </div>
    ${open && html`<${Children} parent=${action.name} depth=${depth + 1} />`}
  </${Fragment}>`;
}

/** Children of one action: its groups folded, then its ungrouped children (same-task runs folded too). */
function Children({ parent, depth }) {
  const tree = useContext(TreeContext);
  const [limit, setLimit] = useState(CHILD_PAGE);
  const { data, error } = useData(runPath(tree.run, `/tree${query({ parent, limit })}`));
  if (data === undefined) {
    return html`<div class="row row-note" style=${{ '--depth': depth }}>${error ? error.message : 'Loading…'}</div>`;
  }
  const nodes = [
    ...data.groups.map((g) => ({ kind: 'group', at: g.startedAt, group: g })),
    ...foldSameTask(data.actions),
  ].sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity));
  if (nodes.length === 0) {
    return html`<div class="row row-note" style=${{ '--depth': depth }}>No child actions.</div>`;
  }
  return html`<${Fragment}>
    ${nodes.map((n) =>
      n.kind === 'group'
        ? html`<${GroupNode} key=${groupKey(n.group.parentName, n.group.group)} group=${n.group} depth=${depth} />`
        : n.kind === 'fold'
          ? html`<${FoldNode} key=${`f:${parent}:${n.taskName}`} parent=${parent} fold=${n} depth=${depth} />`
          : html`<${ActionNode} key=${n.action.name} action=${n.action} depth=${depth} />`,
    )}
    ${
      data.hasMore &&
      html`<div class="row row-note" style=${{ '--depth': depth }}>
        <button class="btn btn-small" onClick=${() => setLimit(Math.min(1000, limit * 2))}>Show more children</button>
      </div>`
    }
  </${Fragment}>`;
}

/** Ungrouped siblings: calls of one task fold into one node when there are {@link FOLD_MIN} or more. */
function foldSameTask(actions) {
  const byTask = new Map();
  for (const a of actions) byTask.set(a.taskName, (byTask.get(a.taskName) ?? 0) + 1);
  const folds = new Map();
  const out = [];
  for (const a of actions) {
    if (byTask.get(a.taskName) < FOLD_MIN) {
      out.push({ kind: 'action', at: a.startedAt, action: a });
      continue;
    }
    let fold = folds.get(a.taskName);
    if (fold === undefined) {
      fold = { kind: 'fold', at: a.startedAt, taskName: a.taskName, actions: [] };
      folds.set(a.taskName, fold);
      out.push(fold);
    }
    fold.actions.push(a);
    if (a.startedAt !== null && (fold.at === null || a.startedAt < fold.at)) fold.at = a.startedAt;
  }
  return out;
}

function countsOf(actions) {
  const c = { total: 0, queued: 0, running: 0, succeeded: 0, failed: 0, aborted: 0, timed_out: 0, cached: 0 };
  for (const a of actions) {
    c.total++;
    c[a.phase]++;
    if (a.cacheHit) c.cached++;
  }
  return c;
}

function spanOf(actions) {
  let start = null;
  let end = null;
  let open = false;
  for (const a of actions) {
    if (a.startedAt !== null && (start === null || a.startedAt < start)) start = a.startedAt;
    if (a.endedAt === null) open = true;
    else if (end === null || a.endedAt > end) end = a.endedAt;
  }
  return { start, end: open ? null : end };
}

/**
 * A folded node's row: name, size, counts, progress (with the time it has left while it runs, re-estimated at each
 * render: the run page renders every second while the run goes on) and its span on the timeline.
 */
function FoldRow({ label, sub, counts, start, end, depth, open, onToggle, selected, onSelect, testid }) {
  const { lastSeenAt } = useContext(TreeContext);
  const running = counts.running + counts.queued > 0;
  // No estimate for an orphaned run: nothing is moving.
  const eta = running && lastSeenAt === null ? etaMs(counts, start, serverNow()) : null;
  // Members still going: the span is open, or in an orphaned run ends when its driver was last seen.
  const shownEnd = !running ? end : lastSeenAt === null ? null : (end ?? openEnd(start, lastSeenAt, null));
  return html`<div
    class=${`row row-group${selected ? ' selected' : ''}`}
    data-testid=${testid}
    data-group=${label}
    ...${rowProps(selected, onSelect, depth)}
  >
    <div class="cell name">
      <${Twisty} open=${open} label=${label} onToggle=${onToggle} />
      <span class="group-icon" aria-hidden="true">
        <svg viewBox="0 0 16 16" width="14" height="14">
          <rect x="2" y="2" width="12" height="3" rx="1" />
          <rect x="2" y="6.5" width="12" height="3" rx="1" />
          <rect x="2" y="11" width="12" height="3" rx="1" />
        </svg>
      </span>
      <span class="label" title=${label}>${label}</span>
      <span class="group-size">${sub}</span>
    </div>
    <div class="cell status status-group">
      <div class="progress">
        <${CountsBar} counts=${counts} />
        <span class="progress-label">${Math.floor((100 * done(counts)) / Math.max(1, counts.total))}%</span>
        ${
          eta !== null &&
          html`<span class="eta" data-testid="eta" title="time left at the average completion rate so far"
            >${etaLabel(eta)}</span
          >`
        }
      </div>
      <${CountsText} counts=${counts} showDone=${false} orphaned=${lastSeenAt !== null} />
    </div>
    <div class="cell num mono">${duration(start === null ? null : (shownEnd ?? serverNow()) - start)}</div>
    <div class="cell timeline-cell">
      <div class="track"><${Bar} start=${start} end=${shownEnd} counts=${counts} /></div>
    </div>
  </div>`;
}

/**
 * A group (a map, a `flyte.group`) folded into one node, its causes of failure listed under it; open, a page of
 * its members, filtered by a cause picked in the list or by the search box.
 */
function GroupNode({ group, depth }) {
  const tree = useContext(TreeContext);
  const key = groupKey(group.parentName, group.group);
  const open = tree.expanded.has(key);
  const [filter, setFilter] = useState(NO_FILTER);
  const pickCause = (f) => {
    setFilter(f);
    if (!open && f !== NO_FILTER) tree.toggle(key);
  };
  const selected =
    tree.selected?.kind === 'group' && tree.selected.parent === group.parentName && tree.selected.group === group.group;
  return html`<${Fragment}>
    <${FoldRow}
      testid="group-row"
      label=${group.group}
      sub=${`${count(group.counts.total)} ${group.counts.total === 1 ? 'action' : 'actions'}`}
      counts=${group.counts}
      start=${group.startedAt}
      end=${group.endedAt}
      depth=${depth}
      open=${open}
      selected=${selected}
      onToggle=${() => tree.toggle(key)}
      onSelect=${() => tree.select({ kind: 'group', parent: group.parentName, group: group.group })}
    />
    <${CauseList} run=${tree.run} group=${group} filter=${filter} onPick=${pickCause} depth=${depth + 1} />
    ${open && html`<${GroupMembers} group=${group} depth=${depth + 1} filter=${filter} onFilter=${setFilter} />`}
  </${Fragment}>`;
}

/** One page of a group's members, with a phase filter, the search box (`filter`, see member-search.js) and a pager. */
function GroupMembers({ group, depth, filter, onFilter }) {
  const tree = useContext(TreeContext);
  const [phase, setPhase] = useState('');
  const [offset, setOffset] = useState(0);
  const [shownFilter, setShownFilter] = useState(filter);
  // A new filter (a cause picked, a search) starts from the first page.
  if (shownFilter !== filter) {
    setShownFilter(filter);
    setOffset(0);
  }
  const filtered = filter !== NO_FILTER;
  const url = runPath(
    tree.run,
    `/actions${query({
      parent: group.parentName,
      group: group.group,
      phase,
      ...filterParams(filter),
      offset,
      limit: GROUP_PAGE,
    })}`,
  );
  const { data, error, loading } = useData(url);
  // While the next page loads, the previous one stays on screen: its range and indexes are those of the offset it
  // was loaded for, not of the page asked for.
  const loadedOffset = useRef(offset);
  if (!loading) loadedOffset.current = offset;
  const at = loadedOffset.current;
  // The group's counts say how many members are in a phase, a cause's count how many failed of it; a search's
  // size is known only page by page.
  const total = filtered
    ? phase === ''
      ? (filter.count ?? null)
      : null
    : phase === ''
      ? group.counts.total
      : group.counts[phase];
  const pick = (p) => {
    setPhase(p);
    setOffset(0);
  };
  const filters = ['', 'running', 'failed', 'timed_out', 'aborted', 'queued', 'succeeded'].filter(
    (p) => p === '' || p === phase || group.counts[p] > 0,
  );
  const shown = data?.actions ?? [];
  return html`<${Fragment}>
    <div class="row row-toolbar" style=${{ '--depth': depth }} data-testid="group-toolbar">
      <div class="chips" role="group" aria-label="Show members in phase">
        ${filters.map(
          (p) =>
            html`<button class=${`chip${p === phase ? ' active' : ''}`} onClick=${() => pick(p)}>
              ${p === '' ? 'All' : PHASE_LABELS[p]}
              <span class="chip-count">${count(p === '' ? group.counts.total : group.counts[p])}</span>
            </button>`,
        )}
      </div>
      <${MemberSearch} key=${filtered ? 'filtered' : 'all'} filter=${filter} onSearch=${onFilter} />
      <div class="pager-inline">
        <span class="muted" data-testid="group-range">
          ${
            total === 0 || (total === null && shown.length === 0 && data !== undefined)
              ? 'none'
              : total === null
                ? `${count(at + 1)}–${count(at + shown.length)} ${filterLabel(filter)}`
                : `${count(at + 1)}–${count(at + shown.length)} of ${count(total)}`
          }
        </span>
        ${filtered && html`<button class="btn btn-small" data-testid="clear-filter" onClick=${() => onFilter(NO_FILTER)}>Clear</button>`}
        <button class="btn btn-small" aria-label="Previous page" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - GROUP_PAGE))}>‹</button>
        <button class="btn btn-small" aria-label="Next page" disabled=${!data?.hasMore} onClick=${() => setOffset(offset + GROUP_PAGE)}>›</button>
      </div>
    </div>
    ${error && html`<div class="row row-note" style=${{ '--depth': depth }}>${error.message}</div>`}
    ${loading && data === undefined && html`<div class="row row-note" style=${{ '--depth': depth }}>Loading…</div>`}
    ${shown.map((a, i) => html`<${ActionNode} key=${a.name} action=${a} depth=${depth} index=${phase === '' && !filtered ? at + i : undefined} />`)}
  </${Fragment}>`;
}

/** Many ungrouped calls of one task, folded; open, all of them (they are already loaded). */
function FoldNode({ parent, fold, depth }) {
  const tree = useContext(TreeContext);
  const key = `f:${parent}:${fold.taskName}`;
  const open = tree.expanded.has(key);
  const [, name] = splitTaskName(fold.taskName);
  const span = spanOf(fold.actions);
  return html`<${Fragment}>
    <${FoldRow}
      testid="fold-row"
      label=${`${name} ×${count(fold.actions.length)}`}
      sub="calls"
      counts=${countsOf(fold.actions)}
      start=${span.start}
      end=${span.end}
      depth=${depth}
      open=${open}
      selected=${false}
      onToggle=${() => tree.toggle(key)}
      onSelect=${() => tree.toggle(key)}
    />
    ${open && fold.actions.map((a) => html`<${ActionNode} key=${a.name} action=${a} depth=${depth + 1} />`)}
  </${Fragment}>`;
}
