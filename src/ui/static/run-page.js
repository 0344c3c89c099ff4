/**
 * A run: its header (phase, task, times, counts, abort and rerun), the action tree with its timeline, and the
 * side panel of the selected action or group. While the run goes on, every update of the event stream refreshes
 * the header and exactly the rows and panel on screen.
 */
/* global setInterval, clearInterval, URLSearchParams */
import { useContext, useEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import { LoaderContext, postJson, runPath, serverNow, useData, useEvents } from './api.js';
import { ActionPanel, GroupPanel } from './action-panel.js';
import { CountsBar, CountsText, ErrorBox, PhaseBadge } from './components.js';
import { count, duration, fullTime, isAbortable, isTerminal, splitTaskName, time, ago } from './format.js';
import { html } from './html.js';
import { Link, navigate, runHref } from './router.js';
import { RunLogs } from './run-logs.js';
import { Tree, TreeContext } from './tree.js';

export function RunPage({ name, search }) {
  const loader = useContext(LoaderContext);
  const fetched = useData(runPath(name));
  const [live, setLive] = useState(null);
  const seen = useRef('');
  const connected = useEvents(runPath(name, '/events'), (data) => {
    if (data.missing) return;
    setLive({ name, data });
    // Refresh the rows and panel on screen when something changed, and on every update while the run goes on
    // (logs and retries do not change the counts). The first event of an ended run changes nothing.
    const key = stateKey(data.run);
    const before = seen.current || (fetched.data === undefined ? '' : stateKey(fetched.data.run));
    seen.current = key;
    if (!isTerminal(data.run.phase) || key !== before) void loader.refresh();
  });
  const detail = live?.name === name && live.data.run.name === name ? live.data : fetched.data;
  const run = detail?.run;
  const active = run !== undefined && !isTerminal(run.phase);
  useTicker(active);

  const [expanded, setExpanded] = useState(() => new Set(['a:a0']));
  const actionParam = search.get('action');
  const groupParam = search.get('group');
  const selected =
    groupParam !== null
      ? { kind: 'group', parent: search.get('parent') ?? 'a0', group: groupParam }
      : { kind: 'action', name: actionParam ?? 'a0' };
  const view = search.get('view') === 'logs' ? 'logs' : 'tree';
  const select = (node) => navigate(pageHref(name, view, node), { replace: true });
  const lastSeenAt = run?.lastSeenAt ?? null;
  const scale = useMemo(() => {
    const start = run?.startedAt ?? run?.createdAt ?? 0;
    const end = run?.endedAt ?? lastSeenAt ?? (active ? serverNow() : start + 1);
    return { start, end: Math.max(end, start + 1) };
  }, [run?.startedAt, run?.endedAt, run?.createdAt, lastSeenAt, active, active && Math.floor(serverNow() / 1000)]);
  const tree = {
    run: name,
    lastSeenAt,
    rootEnv: run === undefined ? '' : splitTaskName(run.taskName)[0],
    scale,
    expanded,
    selected,
    select,
    toggle: (key) =>
      setExpanded((old) => {
        const next = new Set(old);
        if (next.has(key)) next.delete(key);
        else next.add(key);
        return next;
      }),
  };

  if (detail === undefined) {
    return html`<div class="page">
      ${fetched.error ? html`<${NotFound} name=${name} error=${fetched.error} />` : html`<p class="muted">Loading run ${name}…</p>`}
    </div>`;
  }
  return html`<${TreeContext.Provider} value=${tree}>
    <div class="page run-page" data-run=${name} data-phase=${run.phase}>
      <${RunHeader} run=${run} connected=${connected} />
      <div class="run-body">
        <section class="card tree-pane">
          <${ViewTabs} name=${name} view=${view} selected=${selected} />
          ${
            view === 'logs'
              ? html`<${RunLogs}
                  key=${name}
                  run=${name}
                  selected=${selected.kind === 'action' ? selected.name : null}
                  onSelect=${select}
                />`
              : detail.root === null
                ? html`<p class="muted pad">The root action is not recorded yet.</p>`
                : html`<${Tree} root=${detail.root} />`
          }
        </section>
        <aside class="card detail-pane">
          ${
            selected.kind === 'action'
              ? html`<${ActionPanel} key=${selected.name} run=${name} name=${selected.name} onSelect=${select} />`
              : html`<${GroupPanel}
                  key=${`${selected.parent}/${selected.group}`}
                  run=${name}
                  parent=${selected.parent}
                  group=${selected.group}
                  onSelect=${select}
                />`
          }
        </aside>
      </div>
    </div>
  </${TreeContext.Provider}>`;
}

/** The address of the run page in `view` (`tree` or `logs`) with `node` selected. */
function pageHref(name, view, node) {
  const params = new URLSearchParams();
  if (view === 'logs') params.set('view', 'logs');
  if (node.kind === 'group') {
    params.set('parent', node.parent);
    params.set('group', node.group);
  } else params.set('action', node.name);
  const q = params.toString();
  return q === '' ? runHref(name) : `${runHref(name)}?${q}`;
}

/** Actions (the tree and its timeline) or Logs (every action's lines): kept in the address (`?view=logs`). */
function ViewTabs({ name, view, selected }) {
  const tab = (id, label) =>
    html`<${Link}
      role="tab"
      class=${`tab${view === id ? ' active' : ''}`}
      aria-selected=${view === id}
      data-view=${id}
      href=${pageHref(name, id, selected)}
      >${label}</${Link}
    >`;
  return html`<div class="tabs view-tabs" role="tablist">${tab('tree', 'Actions')}${tab('logs', 'Logs')}</div>`;
}

/** What an update changes: the run's phase, end and counts. */
function stateKey(run) {
  return JSON.stringify([run.phase, run.endedAt, run.counts]);
}

/** Re-renders every second while `on`, so running durations and bars grow. */
function useTicker(on) {
  const [, tick] = useReducer((n) => n + 1, 0);
  useEffect(() => {
    if (!on) return undefined;
    const id = setInterval(tick, 1000);
    return () => clearInterval(id);
  }, [on]);
}

function NotFound({ name, error }) {
  return html`<div class="card pad">
    <h1>Run ${name}</h1>
    <p>${error.status === 404 ? 'There is no run of this name in this store.' : error.message}</p>
    <p><${Link} href="/">All runs</${Link}></p>
  </div>`;
}

function RunHeader({ run, connected }) {
  const [env, task] = splitTaskName(run.taskName);
  const now = serverNow();
  const end = run.endedAt ?? run.lastSeenAt ?? (isTerminal(run.phase) ? null : now);
  return html`<div class="card run-header">
    <div class="run-title">
      <div>
        <div class="crumbs"><${Link} href="/">Runs</${Link}> <span class="muted">/</span></div>
        <h1 class="mono" data-testid="run-name">${run.name}</h1>
      </div>
      <${PhaseBadge} phase=${run.phase} />
      ${
        !isTerminal(run.phase) &&
        html`<span class=${`live${connected ? ' on' : ''}`} title=${connected ? 'updating live' : 'reconnecting…'}
          >${connected ? 'live' : 'offline'}</span
        >`
      }
      <div class="spacer"></div>
      <${RunActions} run=${run} />
    </div>
    <div class="run-facts">
      <div><span class="fact-label">Task</span><span class="mono">${task}</span>${env && html`<span class="muted"> ${env}</span>`}</div>
      <div title=${fullTime(run.startedAt)}><span class="fact-label">Started</span>${time(run.startedAt ?? run.createdAt)} <span class="muted">${ago(run.startedAt ?? run.createdAt, now)}</span></div>
      ${
        run.lastSeenAt != null &&
        html`<div title=${fullTime(run.lastSeenAt)} data-testid="run-last-seen">
          <span class="fact-label">Last seen</span>${time(run.lastSeenAt)}
          <span class="muted">${ago(run.lastSeenAt, now)}</span>
        </div>`
      }
      <div><span class="fact-label">Duration</span><span class="mono">${duration(run.startedAt === null || end === null ? null : end - run.startedAt)}</span></div>
      <div><span class="fact-label">Actions</span>${count(run.counts.total)}</div>
      <div class="run-progress"><${CountsBar} counts=${run.counts} wide /><${CountsText} counts=${run.counts} orphaned=${run.lastSeenAt != null} /></div>
    </div>
    ${run.error && html`<${ErrorBox} error=${run.error} title="Run failed" />`}
  </div>`;
}

/** Abort (with a confirmation step), rerun and recover. */
function RunActions({ run }) {
  const loader = useContext(LoaderContext);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const act = async (what, fn) => {
    setBusy(what);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
      setConfirming(false);
    }
  };
  const abort = () =>
    act('abort', async () => {
      await postJson(runPath(run.name, '/abort'), { reason: 'aborted from the flyte UI' });
      await loader.refresh();
    });
  const rerun = (recover) =>
    act(recover ? 'recover' : 'rerun', async () => {
      const res = await postJson(runPath(run.name, '/rerun'), { recover });
      if (recover) await loader.refresh();
      else navigate(runHref(res.name));
    });
  const terminal = isTerminal(run.phase);
  // An orphaned run can be recovered, or aborted (recorded as aborted: nobody drives it any more).
  const abortable = isAbortable(run.phase);
  return html`<div class="run-actions">
    ${error && html`<span class="action-error" role="alert">${error.message}</span>`}
    ${
      abortable &&
      (confirming
        ? html`<span class="confirm">
            <span>Abort this run?</span>
            <button class="btn btn-danger" onClick=${abort} disabled=${busy !== null}>
              ${busy === 'abort' ? 'Aborting…' : 'Yes, abort'}
            </button>
            <button class="btn btn-ghost" onClick=${() => setConfirming(false)}>Cancel</button>
          </span>`
        : html`<button class="btn btn-danger-outline" onClick=${() => setConfirming(true)}>Abort</button>`)
    }
    ${
      terminal &&
      run.phase !== 'succeeded' &&
      html`<button
        class="btn"
        title="run again under this run, reusing what succeeded"
        disabled=${busy !== null}
        onClick=${() => rerun(true)}
      >
        ${busy === 'recover' ? 'Recovering…' : 'Recover'}
      </button>`
    }
    ${
      terminal &&
      html`<button
        class="btn btn-primary"
        title="run the root task again with the same inputs, as a new run"
        disabled=${busy !== null}
        onClick=${() => rerun(false)}
      >
        ${busy === 'rerun' ? 'Starting…' : 'Rerun'}
      </button>`
    }
  </div>`;
}
