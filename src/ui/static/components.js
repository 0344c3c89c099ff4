/**
 * Small pieces shared by the pages: phase badges, progress bars of action counts, error boxes.
 */
import { html } from './html.js';
import { PHASE_LABELS, count, done } from './format.js';

/** A phase as a coloured pill. */
export function PhaseBadge({ phase, small = false }) {
  return html`<span class=${`badge phase-${phase}${small ? ' small' : ''}`} data-phase=${phase}>
    <span class="badge-dot"></span>${PHASE_LABELS[phase] ?? phase}
  </span>`;
}

/** A phase as a coloured dot (running ones pulse). */
export function PhaseDot({ phase }) {
  return html`<span class=${`dot phase-${phase}`} title=${PHASE_LABELS[phase] ?? phase}></span>`;
}

/** A small label: "cached", "trace", "retried ×3". */
export function Tag({ kind, children, title }) {
  return html`<span class=${`tag tag-${kind}`} title=${title}>${children}</span>`;
}

/** Segments of a count bar, in display order. */
const SEGMENTS = ['succeeded', 'failed', 'timed_out', 'aborted', 'running', 'queued'];

/** Action counts as one bar: a segment per phase, as wide as its share. */
export function CountsBar({ counts, wide = false }) {
  const total = Math.max(1, counts.total);
  return html`<div class=${`countsbar${wide ? ' wide' : ''}`} title=${countsTitle(counts)}>
    ${SEGMENTS.filter((p) => counts[p] > 0).map(
      (p) => html`<span class=${`seg phase-${p}`} style=${{ width: `${(100 * counts[p]) / total}%` }}></span>`,
    )}
  </div>`;
}

function countsTitle(c) {
  return SEGMENTS.filter((p) => c[p] > 0)
    .map((p) => `${count(c[p])} ${PHASE_LABELS[p].toLowerCase()}`)
    .concat(c.cached > 0 ? [`${count(c.cached)} cached`] : [])
    .join(', ');
}

/**
 * Action counts as short coloured numbers: "✓ 998  ● 2  ✗ 1  ⟲ 12 cached". With `orphaned` (the run's driver is
 * gone), the running ones show as orphaned: "? 2".
 */
export function CountsText({ counts, showDone = true, orphaned = false }) {
  const failed = counts.failed + counts.timed_out;
  return html`<span class="counts">
    ${showDone && html`<span class="count c-done" title="ended">${count(done(counts))}/${count(counts.total)}</span>`}
    ${counts.succeeded > 0 && html`<span class="count c-succeeded" title="succeeded">✓ ${count(counts.succeeded)}</span>`}
    ${
      counts.running > 0 &&
      (orphaned
        ? html`<span class="count c-orphaned" title="orphaned: running when the run was last seen"
            >? ${count(counts.running)} orphaned</span
          >`
        : html`<span class="count c-running" title="running">● ${count(counts.running)}</span>`)
    }
    ${counts.queued > 0 && html`<span class="count c-queued" title="queued">◌ ${count(counts.queued)}</span>`}
    ${failed > 0 && html`<span class="count c-failed" title="failed or timed out">✗ ${count(failed)}</span>`}
    ${counts.aborted > 0 && html`<span class="count c-aborted" title="aborted">⊘ ${count(counts.aborted)}</span>`}
    ${counts.cached > 0 && html`<span class="count c-cached" title="cache hits">⟲ ${count(counts.cached)} cached</span>`}
  </span>`;
}

/** A stored error: code, kind, message and (folded) stack. */
export function ErrorBox({ error, title = 'Error' }) {
  if (!error) return null;
  return html`<div class="errorbox" data-testid="error">
    <div class="errorbox-head">
      <strong>${title}</strong>
      <code>${error.code}</code>
      ${error.kind && html`<span class="muted">${error.kind} error</span>`}
    </div>
    <div class="errorbox-message">${error.message}</div>
    ${
      error.stack &&
      html`<details class="stack" open>
        <summary>Stack</summary>
        <pre>${error.stack}</pre>
      </details>`
    }
  </div>`;
}

/** A notice for an empty or failed list. */
export function Empty({ children }) {
  return html`<div class="empty">${children}</div>`;
}

/** A failed request, in words. */
export function LoadError({ error }) {
  if (!error) return null;
  return html`<div class="banner banner-error" role="alert">${error.message}</div>`;
}
