/**
 * The side panel of a run page: one action (overview, inputs and outputs, logs, attempts) or one group.
 */
import { Fragment } from 'preact';
import { useContext, useState } from 'preact/hooks';
import { LoaderContext, postJson, query, runPath, serverNow, useData } from './api.js';
import { CountsBar, CountsText, ErrorBox, PhaseBadge, Tag } from './components.js';
import {
  PHASE_LABELS,
  actionKind,
  bytes,
  count,
  duration,
  fullTime,
  openEnd,
  shownPhase,
  splitTaskName,
  time,
} from './format.js';
import { html } from './html.js';
import { TreeContext } from './tree.js';

/** When the driver of the run on screen was last seen, if the run is orphaned; else `null`. */
function useLastSeen() {
  return useContext(TreeContext)?.lastSeenAt ?? null;
}

const TABS = [
  ['overview', 'Overview'],
  ['io', 'Inputs & outputs'],
  ['logs', 'Logs'],
  ['attempts', 'Attempts'],
];

/** Everything about one action. */
export function ActionPanel({ run, name, onSelect }) {
  const [tab, setTab] = useState('overview');
  const lastSeenAt = useLastSeen();
  const { data, error } = useData(runPath(run, `/actions/${encodeURIComponent(name)}`));
  if (data === undefined) {
    return html`<div class="panel-body muted">${error ? error.message : 'Loading…'}</div>`;
  }
  const a = data.action;
  const [env, short] = splitTaskName(a.taskName);
  const kind = actionKind(a.taskName);
  const badges = { logs: data.logs.length + data.logsOmitted, attempts: data.attempts.length };
  const phase = shownPhase(a.phase, lastSeenAt);
  const orphaned = phase !== a.phase;
  return html`<div class="panel" data-testid="action-panel" data-action=${a.name}>
    <div class="panel-head">
      <div class="panel-title">
        <h2 title=${a.name}>${a.itemIndex == null ? short : `${short} #${a.itemIndex}`}</h2>
        <${PhaseBadge} phase=${phase} />
        ${kind !== 'task' && html`<${Tag} kind=${kind}>${kind}</${Tag}>`}
        ${a.cacheHit && html`<${Tag} kind="cached">cache hit</${Tag}>`}
      </div>
      <div class="panel-sub mono">${env ? `${env}.${short}` : short} · ${a.name}</div>
      ${
        orphaned &&
        html`<div class="orphan-note" data-testid="action-last-seen" title=${fullTime(lastSeenAt)}>
          ${PHASE_LABELS[a.phase]} when its run's driver was last seen: last seen ${time(lastSeenAt)}
        </div>`
      }
      ${
        !orphaned &&
        (a.phase === 'queued' || a.phase === 'running') &&
        html`<${AbortAction} key=${a.name} run=${run} name=${a.name} />`
      }
    </div>
    <div class="tabs" role="tablist">
      ${TABS.map(
        ([id, label]) =>
          html`<button
            role="tab"
            class=${`tab${tab === id ? ' active' : ''}`}
            aria-selected=${tab === id}
            onClick=${() => setTab(id)}
          >
            ${label}${badges[id] !== undefined && html`<span class="tab-count">${count(badges[id])}</span>`}
          </button>`,
      )}
    </div>
    <div class="panel-body" role="tabpanel" data-tab=${tab}>
      ${tab === 'overview' && html`<${Overview} detail=${data} onSelect=${onSelect} />`}
      ${tab === 'io' && html`<${InputsOutputs} detail=${data} />`} ${tab === 'logs' && html`<${Logs} detail=${data} />`}
      ${tab === 'attempts' && html`<${Attempts} detail=${data} />`}
    </div>
  </div>`;
}

/** Abort one queued or running action and its descendants (with a confirmation step); the run goes on. */
function AbortAction({ run, name }) {
  const loader = useContext(LoaderContext);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const abort = async () => {
    setBusy(true);
    setError(null);
    try {
      await postJson(runPath(run, `/actions/${encodeURIComponent(name)}/abort`), {
        reason: 'aborted from the flyte UI',
      });
      await loader.refresh();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      setConfirming(false);
    }
  };
  return html`<div class="run-actions panel-actions" data-testid="action-abort">
    ${
      confirming
        ? html`<span class="confirm">
            <span>Abort this action and its children?</span>
            <button class="btn btn-danger" onClick=${abort} disabled=${busy}>
              ${busy ? 'Aborting…' : 'Yes, abort'}
            </button>
            <button class="btn btn-ghost" onClick=${() => setConfirming(false)}>Cancel</button>
          </span>`
        : html`<button class="btn btn-danger-outline" onClick=${() => setConfirming(true)}>Abort action</button>`
    }
    ${error && html`<span class="action-error" role="alert">${error.message}</span>`}
  </div>`;
}

function Overview({ detail, onSelect }) {
  const a = detail.action;
  const lastSeenAt = useLastSeen();
  const phase = shownPhase(a.phase, lastSeenAt);
  const end = a.endedAt ?? (a.phase === 'running' ? openEnd(a.startedAt, lastSeenAt, serverNow()) : null);
  return html`<${Fragment}>
    <dl class="facts">
      <dt>Phase</dt><dd><${PhaseBadge} phase=${phase} small /></dd>
      <dt>Started</dt><dd title=${fullTime(a.startedAt)}>${time(a.startedAt)}</dd>
      ${
        phase === a.phase
          ? html`<dt>Ended</dt>
              <dd title=${fullTime(a.endedAt)}>${time(a.endedAt)}</dd>`
          : html`<dt>Last seen</dt>
              <dd title=${fullTime(lastSeenAt)}>${time(lastSeenAt)}</dd>`
      }
      <dt>Duration</dt><dd class="mono">${duration(a.startedAt === null || end === null ? null : end - a.startedAt)}</dd>
      <dt>Attempts</dt><dd>${a.attempts}</dd>
      <dt>Cache</dt><dd>${a.cacheHit ? 'hit: output reused' : 'miss'}</dd>
      <dt>Group</dt><dd class="mono">${a.group ?? '—'}</dd>
      <dt>Parent</dt>
      <dd class="mono">
        ${
          a.parentName === null
            ? '— (root)'
            : html`<a
                href="#"
                onClick=${(e) => {
                  e.preventDefault();
                  onSelect({ kind: 'action', name: a.parentName });
                }}
                >${a.parentName}</a
              >`
        }
      </dd>
      <dt>Task</dt><dd class="mono">${a.taskName}</dd>
    </dl>
    <${ErrorBox} error=${a.error} />
    <${ValueBlock} title="Outputs" value=${detail.outputs} empty=${outputsNote(a.phase)} compact />
  </${Fragment}>`;
}

function outputsNote(phase) {
  if (phase === 'succeeded') return 'No output recorded.';
  if (phase === 'running' || phase === 'queued') return 'Not finished yet.';
  return 'No output: the action did not succeed.';
}

function InputsOutputs({ detail }) {
  return html`<${Fragment}>
    <${ValueBlock} title="Inputs" value=${detail.inputs} empty="No inputs recorded." args />
    <${ValueBlock} title="Outputs" value=${detail.outputs} empty=${outputsNote(detail.action.phase)} />
  </${Fragment}>`;
}

/** A decoded value (or the note that it is offloaded, or could not be decoded). */
function ValueBlock({ title, value, empty, args = false, compact = false }) {
  return html`<section class=${`value-block${compact ? ' compact' : ''}`} data-testid=${`value-${title.toLowerCase()}`}>
    <h3>${title} ${value && html`<span class="muted">${bytes(value.bytes)}</span>`}</h3>
    ${
      value === null
        ? html`<p class="muted">${empty}</p>`
        : value.offloaded
          ? html`<p class="note">
              offloaded, ${count(value.bytes)} bytes (${bytes(value.bytes)}): stored as a file under the state directory
            </p>`
          : value.error !== undefined
            ? html`<p class="note note-error">could not be decoded: ${value.error}</p>`
            : args
              ? value.parts.length === 0
                ? html`<p class="muted">No arguments.</p>`
                : value.parts.map(
                    (text, i) =>
                      html`<div class="arg">
                        <span class="arg-label">arg ${i}</span>
                        <pre class="value">${text}</pre>
                      </div>`,
                  )
              : html`<pre class="value">${value.parts[0] ?? ''}</pre>`
    }
  </section>`;
}

function Logs({ detail }) {
  const { logs, logsOmitted, action } = detail;
  if (logs.length === 0)
    return html`<p class="muted">No log lines. What a task body writes through <code>console</code> shows here.</p>`;
  const base = action.startedAt ?? logs[0].at;
  const attempts = new Set(logs.map((l) => l.attempt)).size > 1;
  return html`<${Fragment}>
    ${logsOmitted > 0 && html`<p class="muted">${count(logsOmitted)} earlier lines not shown.</p>`}
    <pre class="logs" data-testid="logs">${logs.map(
      (l) =>
        html`<div class=${`log-line log-${l.stream}`}>
          <span class="log-time" title=${fullTime(l.at)}>${fmtOffset(l.at - base)}</span
          >${attempts && html`<span class="log-attempt">#${l.attempt}</span>`}<span class="log-text">${l.line}</span>
        </div>`,
    )}</pre>
  </${Fragment}>`;
}

function fmtOffset(ms) {
  return `+${(Math.max(0, ms) / 1000).toFixed(3)}s`;
}

function Attempts({ detail }) {
  const lastSeenAt = useLastSeen();
  if (detail.attempts.length === 0) return html`<p class="muted">No attempt started yet.</p>`;
  return html`<table class="attempts">
    <thead>
      <tr>
        <th>#</th>
        <th>Phase</th>
        <th>Started</th>
        <th class="num">Duration</th>
        <th title="the process (host:pid) that ran the attempt">Worker</th>
      </tr>
    </thead>
    <tbody>
      ${detail.attempts.map(
        (t) => html`<${Fragment} key=${t.attempt}>
          <tr>
            <td>${t.attempt}</td>
            <td><${PhaseBadge} phase=${shownPhase(t.phase, lastSeenAt)} small /></td>
            <td title=${fullTime(t.startedAt)}>${time(t.startedAt)}</td>
            <td class="num mono">${duration((t.endedAt ?? (t.phase === 'running' ? openEnd(t.startedAt, lastSeenAt, serverNow()) : t.startedAt)) - t.startedAt)}</td>
            <td class="mono attempt-worker">${t.worker ?? html`<span class="muted">unknown</span>`}</td>
          </tr>
          ${
            t.error &&
            html`<tr class="attempt-error">
              <td></td>
              <td colspan="4"><${ErrorBox} error=${t.error} title=${`Attempt ${t.attempt}`} /></td>
            </tr>`
          }
        </${Fragment}>`,
      )}
    </tbody>
  </table>`;
}

/** A group: its counts, span, and its first failed members. */
export function GroupPanel({ run, parent, group, onSelect }) {
  const lastSeenAt = useLastSeen();
  const { data } = useData(runPath(run, '/groups'));
  const g = data?.groups.find((x) => x.parentName === parent && x.group === group);
  const failures = useData(
    g !== undefined && g.counts.failed > 0
      ? runPath(run, `/actions${query({ parent, group, phase: 'failed', limit: 10 })}`)
      : null,
  );
  if (g === undefined) return html`<div class="panel-body muted">${data ? 'This group is gone.' : 'Loading…'}</div>`;
  const open = g.counts.running + g.counts.queued > 0;
  const orphaned = open && lastSeenAt !== null;
  return html`<div class="panel" data-testid="group-panel">
    <div class="panel-head">
      <div class="panel-title"><h2>${group}</h2><${Tag} kind="group">group</${Tag}></div>
      <div class="panel-sub mono">under ${parent} · ${count(g.counts.total)} actions</div>
    </div>
    <div class="panel-body">
      <${CountsBar} counts=${g.counts} wide />
      <p><${CountsText} counts=${g.counts} orphaned=${lastSeenAt !== null} /></p>
      <dl class="facts">
        <dt>First start</dt><dd title=${fullTime(g.startedAt)}>${time(g.startedAt)}</dd>
        ${
          orphaned
            ? html`<dt>Last seen</dt>
                <dd title=${fullTime(lastSeenAt)}>orphaned, last seen ${time(lastSeenAt)}</dd>`
            : html`<dt>Last end</dt>
                <dd title=${fullTime(g.endedAt)}>${open ? 'still running' : time(g.endedAt)}</dd>`
        }
        <dt>Span</dt><dd class="mono">${duration(g.startedAt === null ? null : (open ? openEnd(g.startedAt, lastSeenAt, serverNow()) : (g.endedAt ?? g.startedAt)) - g.startedAt)}</dd>
        <dt>Cache hits</dt><dd>${count(g.counts.cached)}</dd>
      </dl>
      ${
        failures.data?.actions.length > 0 &&
        html`<section class="value-block">
          <h3>Failed members</h3>
          <ul class="failures">
            ${failures.data.actions.map(
              (a) =>
                html`<li>
                  <a
                    href="#"
                    class="mono"
                    onClick=${(e) => {
                      e.preventDefault();
                      onSelect({ kind: 'action', name: a.name });
                    }}
                    >${a.name}</a
                  >
                  <span class="muted"> ${a.error?.message ?? ''}</span>
                </li>`,
            )}
          </ul>
        </section>`
      }
    </div>
  </div>`;
}
