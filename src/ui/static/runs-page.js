/**
 * The run list: newest first, filtered by phase and root task, paged, updated live.
 */
/* global FormData */
import { useState } from 'preact/hooks';
import { query, useData, useEvents, serverNow } from './api.js';
import { CountsBar, CountsText, Empty, LoadError, PhaseBadge } from './components.js';
import { PHASE_LABELS, RUN_PHASES, ago, duration, fullTime, isTerminal, splitTaskName, time } from './format.js';
import { html } from './html.js';
import { Link, navigate, runHref } from './router.js';

const PAGE = 25;

export function RunsPage({ search }) {
  const phase = search.get('phase') ?? '';
  const task = search.get('task') ?? '';
  const offset = Math.max(0, Number(search.get('offset') ?? 0) || 0);
  const params = { phase, task, offset, limit: PAGE };
  const fetched = useData(`/api/runs${query(params)}`);
  const [live, setLive] = useState(null);
  const eventsPath = `/api/events${query(params)}`;
  useEvents(eventsPath, (data) => setLive({ path: eventsPath, data }));
  const page = live?.path === eventsPath ? live.data : fetched.data;

  const go = (changes) => navigate(`/${query({ ...params, limit: undefined, ...changes })}`);
  const now = serverNow();
  const tasks = [...new Set((page?.runs ?? []).map((r) => r.taskName))].sort();
  // The task input is not controlled (`defaultValue`, made again when the address changes): live updates
  // re-render the list while someone types in it, and must not reset what they typed.

  return html`<div class="page runs-page">
    <div class="page-head">
      <h1>Runs</h1>
      <form
        class="filters"
        onSubmit=${(e) => {
          e.preventDefault();
          go({ task: new FormData(e.currentTarget).get('task')?.toString().trim(), offset: 0 });
        }}
      >
        <label>
          <span>Phase</span>
          <select name="phase" value=${phase} onChange=${(e) => go({ phase: e.currentTarget.value, offset: 0 })}>
            <option value="">All phases</option>
            ${RUN_PHASES.map((p) => html`<option value=${p}>${PHASE_LABELS[p]}</option>`)}
          </select>
        </label>
        <label>
          <span>Task</span>
          <input
            key=${task}
            name="task"
            list="task-names"
            placeholder="env.task"
            defaultValue=${task}
            autocomplete="off"
          />
          <datalist id="task-names">${tasks.map((t) => html`<option value=${t}></option>`)}</datalist>
        </label>
        <button type="submit" class="btn">Filter</button>
        ${(phase || task) && html`<button type="button" class="btn btn-ghost" onClick=${() => navigate('/')}>Clear</button>`}
      </form>
    </div>
    <${LoadError} error=${fetched.error} />
    <div class="card">
      <table class="runs" data-testid="runs">
        <thead>
          <tr>
            <th>Run</th>
            <th>Task</th>
            <th>Phase</th>
            <th>Started</th>
            <th class="num">Duration</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          ${(page?.runs ?? []).map((run) => html`<${RunRow} key=${run.name} run=${run} now=${now} />`)}
        </tbody>
      </table>
      ${
        page &&
        page.runs.length === 0 &&
        html`<${Empty}>
        ${
          phase || task
            ? 'No runs match these filters.'
            : html`No runs yet. Start one with <code>flyte run file.ts task</code> or <code>flyte.run(task)</code>; it
                shows up here at once.`
        }
      </${Empty}>`
      }
      ${
        page &&
        (offset > 0 || page.hasMore) &&
        html`<div class="pager">
          <span class="muted">Runs ${offset + 1}–${offset + page.runs.length}</span>
          <button
            class="btn btn-small"
            disabled=${offset === 0}
            onClick=${() => go({ offset: Math.max(0, offset - PAGE) })}
          >
            ‹ Newer
          </button>
          <button class="btn btn-small" disabled=${!page.hasMore} onClick=${() => go({ offset: offset + PAGE })}>
            Older ›
          </button>
        </div>`
      }
    </div>
  </div>`;
}

function RunRow({ run, now }) {
  const [env, name] = splitTaskName(run.taskName);
  const durationMs =
    isTerminal(run.phase) || run.startedAt === null ? run.durationMs : Math.max(0, now - run.startedAt);
  return html`<tr data-run=${run.name}>
    <td><${Link} class="run-link mono" href=${runHref(run.name)}>${run.name}</${Link}></td>
    <td class="task"><span class="task-name">${name}</span>${env && html`<span class="muted"> ${env}</span>`}</td>
    <td><${PhaseBadge} phase=${run.phase} /></td>
    <td title=${fullTime(run.createdAt)}>${time(run.startedAt ?? run.createdAt)} <span class="muted">${ago(run.createdAt, now)}</span></td>
    <td class="num mono">${duration(durationMs)}</td>
    <td class="counts-cell">
      <${CountsBar} counts=${run.counts} />
      <${CountsText} counts=${run.counts} />
    </td>
  </tr>`;
}
