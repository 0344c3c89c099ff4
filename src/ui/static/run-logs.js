/**
 * A run's logs (the run page's "Logs" view, `/runs/NAME?view=logs`): every action's lines in the store's write
 * order, each prefixed with its time and its action's display name (`task #i` for a map item, the hash name in
 * the tooltip); clicking a name selects that action. Lines are text nodes, never HTML.
 *
 * The page never holds a whole large run: it opens at the run's last lines (`before=end`), keeps at most
 * {@link WINDOW_LINES} of them, and pages older or newer ones in a page at a time, dropping as many at the other
 * end. While the window reaches the newest line and the run goes on, it follows: it reads the lines after its
 * cursor every {@link POLL_MS} (each line once), until a read made after the run ended finds nothing more.
 */
/* global setTimeout, clearTimeout */
import { Component } from 'preact';
import { useEffect, useLayoutEffect, useReducer, useRef } from 'preact/hooks';
import { getJson, query, runPath } from './api.js';
import { count, fullTime } from './format.js';
import { html } from './html.js';

/** Most lines kept on the page; older (or newer) ones are paged in on demand. */
export const WINDOW_LINES = 2000;
/** Lines read per request. */
const PAGE = 1000;
/** How often a following view asks for new lines. */
const POLL_MS = 500;

/**
 * A bounded window over a run's log lines, read through `GET /api/runs/NAME/logs`. Every read goes through one
 * queue, so following, paging and jumping never interleave. `onChange(kind)` is called after each change with
 * `open`, `append` or `prepend`.
 */
export class LogWindow {
  constructor(run, onChange, { windowLines = WINDOW_LINES, page = PAGE, pollMs = POLL_MS } = {}) {
    this.run = run;
    this.onChange = onChange;
    this.windowLines = windowLines;
    this.page = page;
    this.pollMs = pollMs;
    this.lines = [];
    /** Lines before the first one shown exist. */
    this.hasOlder = false;
    /** The window ends at the newest line read (so it follows); false once newer lines were dropped. */
    this.atEnd = true;
    /** The run had ended before the last read, which found no more lines: nothing will come. */
    this.ended = false;
    this.opened = false;
    this.error = null;
    this.version = 0;
    this.cursor = 0;
    this.closed = false;
    this.queue = Promise.resolve();
    this.timer = undefined;
    this.wake = undefined;
    this.following = false;
  }

  /** Opens at the run's last lines, then follows it while it runs. */
  start() {
    void this.#enqueue(async () => {
      const res = await this.#get({ before: 'end', limit: this.page });
      this.lines = res.lines;
      this.hasOlder = res.hasMore;
      this.cursor = res.next;
      this.atEnd = true;
      this.ended = res.terminal;
      this.opened = true;
      this.#changed('open');
    });
    void this.#follow();
  }

  /** Stops following; nothing is read any more. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.wake?.();
  }

  /** Reads the page of lines before the first one shown; drops as many at the end when the window is full. */
  older() {
    return this.#enqueue(async () => {
      const first = this.lines[0];
      if (first === undefined) return;
      const res = await this.#get({ before: first.seq, limit: this.page });
      const all = res.lines.concat(this.lines);
      this.hasOlder = res.hasMore;
      if (all.length > this.windowLines) {
        this.lines = all.slice(0, this.windowLines);
        this.cursor = this.lines[this.lines.length - 1].seq;
        this.atEnd = false;
      } else this.lines = all;
      this.#changed('prepend');
    });
  }

  /** Reads the page of lines after the last one shown; back at the end, follows again. */
  newer() {
    return this.#enqueue(async () => {
      await this.#readNewer();
      void this.#follow();
    });
  }

  /** Goes back to the run's last lines (and follows, while it runs). */
  latest() {
    this.start();
  }

  #enqueue(op) {
    const next = this.queue.then(async () => {
      if (this.closed) return;
      try {
        await op();
        if (this.error !== null) {
          this.error = null;
          this.#changed('error');
        }
      } catch (err) {
        this.error = err;
        this.#changed('error');
      }
    });
    this.queue = next;
    return next;
  }

  async #get(params) {
    return getJson(runPath(this.run, `/logs${query(params)}`));
  }

  /** One read after the cursor: appends, dropping the oldest lines past the window. */
  async #readNewer() {
    const res = await this.#get({ after: this.cursor, limit: this.page });
    const wasAtEnd = this.atEnd;
    this.cursor = res.next;
    if (res.lines.length > 0) {
      const all = this.lines.concat(res.lines);
      if (all.length > this.windowLines) {
        this.lines = all.slice(all.length - this.windowLines);
        this.hasOlder = true;
      } else this.lines = all;
    }
    this.atEnd = !res.hasMore;
    this.ended = res.terminal && !res.hasMore;
    if (res.lines.length > 0 || this.ended || this.atEnd !== wasAtEnd) this.#changed('append');
    return res;
  }

  /** While the window is at the end and the run goes on: read after the cursor, at once while there are more. */
  async #follow() {
    if (this.following) return;
    this.following = true;
    try {
      await this.queue;
      while (!this.closed && this.atEnd && !this.ended) {
        let more = false;
        await this.#enqueue(async () => {
          if (this.atEnd && !this.ended) more = (await this.#readNewer()).hasMore;
        });
        if (!more && !this.closed && !this.ended) await this.#sleep(this.pollMs);
      }
    } finally {
      this.following = false;
    }
  }

  #sleep(ms) {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  #changed(kind) {
    this.version++;
    this.onChange(kind);
  }
}

/** `HH:MM:SS.mmm` in the browser's time zone. */
function clock(ms) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** The lines, re-rendered only when the window or the selection changes (not on every tick of the page). */
class LogLines extends Component {
  shouldComponentUpdate(next) {
    return next.version !== this.props.version || next.selected !== this.props.selected;
  }

  render({ lines, selected, onSelect }) {
    return lines.map(
      (l) =>
        html`<div
          key=${l.seq}
          data-seq=${l.seq}
          class=${`log-line log-${l.stream}${l.actionName === selected ? ' log-selected' : ''}`}
          data-stream=${l.stream}
        >
          <span class="log-time" title=${fullTime(l.at)}>${clock(l.at)}</span>
          <button
            class="log-who"
            title=${`${l.actionName} · attempt ${l.attempt}${l.stream === 'stderr' ? ' · stderr' : ''}`}
            data-action=${l.actionName}
            onClick=${() => onSelect({ kind: 'action', name: l.actionName })}
          >
            ${l.displayName}</button
          ><span class="log-text">${l.line}</span>
        </div>`,
    );
  }
}

/** The run-wide log view: a bounded, live window over every action's lines. */
export function RunLogs({ run, selected, onSelect }) {
  const [, rerender] = useReducer((n) => n + 1, 0);
  const last = useRef('open');
  const win = useRef(null);
  if (win.current === null || win.current.run !== run) {
    win.current = new LogWindow(run, (kind) => {
      last.current = kind;
      rerender();
    });
  }
  const w = win.current;
  useEffect(() => {
    w.start();
    return () => w.close();
  }, [w]);

  // Keep the reader where they were: at the bottom while following (new lines scroll in), and on the same line
  // when older ones are put above it.
  const scroller = useRef(null);
  const stuck = useRef(true);
  const anchor = useRef(null);
  const onScroll = () => {
    const el = scroller.current;
    if (el !== null) stuck.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  };
  const loadOlder = () => {
    const el = scroller.current;
    const first = el?.querySelector('.log-line');
    anchor.current = first ? { seq: first.dataset.seq, offset: first.offsetTop - el.scrollTop } : null;
    void w.older();
  };
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el === null) return;
    const kept = last.current === 'prepend' && anchor.current !== null;
    const line = kept ? el.querySelector(`.log-line[data-seq="${anchor.current.seq}"]`) : null;
    if (line !== null) el.scrollTop = line.offsetTop - anchor.current.offset;
    else if (last.current === 'open' || stuck.current) el.scrollTop = el.scrollHeight;
    onScroll();
  }, [w.version]);

  const state = !w.opened ? 'loading' : !w.atEnd ? 'paused' : w.ended ? 'ended' : 'following';
  const width = Math.min(32, Math.max(6, ...w.lines.map((l) => l.displayName.length)));
  return html`<div class="run-logs" data-testid="run-logs" data-state=${state}>
    <div class="run-logs-bar">
      <span data-testid="run-logs-status">
        ${state === 'loading' && 'Loading the logs…'}
        ${state === 'following' && html`<span class="live on">live</span> following the run`}
        ${state === 'ended' && 'The run ended: no more lines will come.'}
        ${state === 'paused' && 'Showing older lines: newer ones are not on the page.'}
      </span>
      <span class="muted"> ${count(w.lines.length)} lines shown</span>
      ${w.error && html`<span class="action-error" role="alert"> ${w.error.message}</span>`}
    </div>
    ${
      w.hasOlder &&
      html`<div class="run-logs-note" data-testid="run-logs-older">
        <span class="muted">Older lines are paged: at most ${count(WINDOW_LINES)} lines are kept on the page.</span>
        <button class="btn btn-small" onClick=${loadOlder}>Load older</button>
      </div>`
    }
    <div class="run-logs-body logs" ref=${scroller} onScroll=${onScroll} style=${{ '--who': `${width}ch` }}>
      ${
        w.opened && w.lines.length === 0
          ? html`<p class="muted">
              ${w.ended ? 'This run wrote no log lines.' : 'No log lines yet.'} What task bodies write through
              <code>console</code> shows here.
            </p>`
          : html`<div data-testid="run-log-lines">
              <${LogLines} lines=${w.lines} version=${w.version} selected=${selected} onSelect=${onSelect} />
            </div>`
      }
    </div>
    ${
      !w.atEnd &&
      html`<div class="run-logs-note" data-testid="run-logs-newer">
        <span class="muted">Newer lines are paged.</span>
        <button class="btn btn-small" onClick=${() => void w.newer()}>Load newer</button>
        <button class="btn btn-small" onClick=${() => w.latest()}>Latest</button>
      </div>`
    }
  </div>`;
}
