/**
 * Finding the members of a fan-out that matter: its causes of failure listed under its node (`212 × HTTP 503 for
 * item <n>`, largest first, from `/api/runs/:name/causes`), and a search box over its members (an item index
 * `#7` or `7`, else text in the inputs or the error message). Both set the members' filter that the group's
 * member list (tree.js `GroupMembers`) sends with its page queries, so the members stay paged.
 */
import { useState } from 'preact/hooks';
import { query, runPath, useData } from './api.js';
import { count } from './format.js';
import { html } from './html.js';

/** At most this many causes are listed under a fan-out, the largest; the rest in one line. */
const MAX_CAUSES = 8;

/**
 * A members' filter is one of `{ cause: { code, pattern }, count }` (a cause picked, with how many members it has),
 * `{ item }` (an index) or `{ text }`. No filter: every member.
 */
export const NO_FILTER = Object.freeze({});

/** Whether two filters ask for the same cause. */
function sameCause(filter, cause) {
  return filter.cause !== undefined && filter.cause.code === cause.code && filter.cause.pattern === cause.pattern;
}

/**
 * The query parameters of a member filter for `/api/runs/:name/actions`: `code` and `pattern` for a cause,
 * `item` for an index, `text` for text.
 */
export function filterParams(filter) {
  return {
    code: filter.cause?.code,
    pattern: filter.cause?.pattern,
    item: filter.item,
    text: filter.text,
  };
}

/** What a search box's text asks for: `#7` or `7` is the item of index 7, anything else is text. */
export function parseSearch(text) {
  const t = text.trim();
  if (t === '') return NO_FILTER;
  const item = /^#?(\d{1,15})$/.exec(t);
  return item === null ? { text: t } : { item: Number(item[1]) };
}

/** A short label of a filter, for the member list's range line. */
export function filterLabel(filter) {
  if (filter.cause !== undefined) return filter.cause.pattern || filter.cause.code;
  if (filter.item !== undefined) return `#${filter.item}`;
  if (filter.text !== undefined) return `“${filter.text}”`;
  return '';
}

/**
 * The causes of failure of one fan-out (`group` of the tree), each a button: clicking one filters the members to
 * it (`onPick(filter)`), clicking it again shows every member.
 */
export function CauseList({ run, group, filter, onPick, depth }) {
  const failed = group.counts.failed + group.counts.timed_out;
  const { data, error } = useData(
    failed === 0 ? null : runPath(run, `/causes${query({ parent: group.parentName, group: group.group })}`),
  );
  if (failed === 0) return null;
  if (data === undefined) {
    return error ? html`<div class="row row-note" style=${{ '--depth': depth }}>${error.message}</div>` : null;
  }
  const shown = data.slice(0, MAX_CAUSES);
  const hidden = data.length - shown.length;
  return html`<div class="row row-causes" style=${{ '--depth': depth }} data-testid="cause-list">
    <ul class="causes" aria-label="Causes of failure">
      ${shown.map((c) => {
        const active = sameCause(filter, c);
        return html`<li key=${`${c.code}\u0000${c.pattern}`}>
          <button
            class=${`cause${active ? ' active' : ''}`}
            data-testid="cause"
            aria-pressed=${active}
            title=${`${c.code}: ${c.pattern} (e.g. ${c.example}); click to show only these members`}
            onClick=${(e) => {
              e.stopPropagation();
              onPick(active ? NO_FILTER : { cause: { code: c.code, pattern: c.pattern }, count: c.count });
            }}
          >
            <span class="cause-count">${count(c.count)} ×</span>
            <span class="cause-pattern">${c.pattern || c.code}</span>
            <span class="cause-code">${c.code}</span>
          </button>
        </li>`;
      })}
      ${hidden > 0 && html`<li class="muted">… ${hidden} more ${hidden === 1 ? 'cause' : 'causes'}</li>`}
    </ul>
  </div>`;
}

/**
 * The search box of a fan-out's members: submitting it filters them (`onSearch(filter)`) by item index (`#7`) or
 * by text in their inputs or error message; clearing it shows them all.
 */
export function MemberSearch({ filter, onSearch }) {
  const [text, setText] = useState(filter.text ?? (filter.item === undefined ? '' : `#${filter.item}`));
  const submit = (e) => {
    e.preventDefault();
    onSearch(parseSearch(text));
  };
  return html`<form class="member-search" role="search" onSubmit=${submit}>
    <input
      type="search"
      class="input input-small"
      data-testid="member-search"
      aria-label="Search members by item index (#7) or by text in inputs or errors"
      placeholder="#index or text in inputs / errors"
      value=${text}
      onInput=${(e) => {
        setText(e.currentTarget.value);
        if (e.currentTarget.value === '' && filter !== NO_FILTER) onSearch(NO_FILTER);
      }}
    />
  </form>`;
}
