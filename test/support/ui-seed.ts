/**
 * Runs for the UI tests and the screenshot script: a pipeline in the shape of the seed examples (a group of a
 * few calls, a 1 000-item `flyte.map` with some failures and retries, a trace, logs), a run gated by the test so it
 * can be watched while it runs, and a run whose output is hostile HTML.
 *
 * Tasks must be defined at module top level and exported; the gates live in this module so that a test in the
 * same process can open them.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as flyte from 'flyte-ts';
import { Gates } from './gates.js';

const env = new flyte.TaskEnvironment({ name: 'ui_demo' });

/** Gates the gated tasks wait on, by key. */
export const uiGates = new Gates();

export const clean = env.task({ cache: 'auto' }, async function clean(text: string) {
  console.log(`cleaning ${JSON.stringify(text)}`);
  return text.trim().toLowerCase();
});

export const score = env.task(
  { retries: 1 },
  async function score(item: { id: number; text: string; delayMs?: number }) {
    if (item.delayMs !== undefined) await sleep(item.delayMs);
    if (item.id % 97 === 13) {
      console.error(`item ${item.id}: no model score for ${JSON.stringify(item.text)}`);
      throw new RangeError(`item ${item.id} has no score: text too short`);
    }
    return { id: item.id, score: (item.id * 37) % 100, text: item.text };
  },
);

const summarize = flyte.trace(async function summarize(scores: number[]) {
  const total = scores.reduce((a, b) => a + b, 0);
  return { count: scores.length, mean: scores.length === 0 ? 0 : total / scores.length };
});

/**
 * The seed-like pipeline: group (cached) → map of `n` items (about 1% fail) → trace. With `delayMs`, items take
 * from `delayMs` to twice as long, so the timeline has something to show.
 */
export const pipeline = env.task(async function pipeline(texts: string[], n: number, delayMs = 0) {
  console.log(`pipeline over ${n} items`);
  const cleaned = await flyte.group('preprocess', () => Promise.all(texts.map((t) => clean(t))));
  const items = Array.from({ length: n }, (_, id) => ({
    id,
    text: cleaned[id % cleaned.length] ?? '',
    ...(delayMs > 0 ? { delayMs: delayMs + ((id * 37) % delayMs) } : {}),
  }));
  const results = await flyte.map(score, items, { concurrency: 64 });
  const ok = results.filter((r): r is { id: number; score: number; text: string } => !(r instanceof Error));
  console.log(`${ok.length} scored, ${results.length - ok.length} failed`);
  const summary = await summarize(ok.map((r) => r.score));
  return {
    summary,
    failed: results.length - ok.length,
    sample: ok.slice(0, 3),
    at: new Date(0),
    tags: new Set(['ui']),
  };
});

/** A leaf that waits for its gate. */
export const step = env.task(async function step(key: string, i: number) {
  console.log(`step ${i} waiting`);
  await Promise.race([
    uiGates.wait(`${key}:${i}`),
    new Promise((_, reject) => flyte.ctx()?.signal.addEventListener('abort', () => reject(new Error('aborted')))),
  ]);
  console.log(`step ${i} done`);
  return i;
});

/** A run that stays running until the test opens the gates `${key}:0` … `${key}:${n - 1}`. */
export const gated = env.task(async function gated(key: string, n: number) {
  const done = await flyte.map(
    partialStep(key),
    Array.from({ length: n }, (_, i) => i),
    { concurrency: n, returnExceptions: false },
  );
  return done.length;
});

/** Like {@link gated}, but ends `succeeded` when some steps fail or are aborted (their results are `null`). */
export const gatedTolerant = env.task(async function gatedTolerant(key: string, n: number) {
  const done = await flyte.map(
    partialStep(key),
    Array.from({ length: n }, (_, i) => i),
    { concurrency: n, returnExceptions: true },
  );
  return done.map((r) => (r instanceof Error ? null : r));
});

function partialStep(key: string) {
  return flyte.partial(step, key);
}

/** A run whose inputs, logs and output are HTML that must show as text. */
export const hostile = env.task(async function hostile(html: string) {
  console.log(html);
  return { html, note: `<img src=x onerror="document.body.dataset.xss='1'">` };
});

/** A map of `n` fast items in one group, for the size tests. */
export const wide = env.task(async function wide(n: number) {
  const out = await flyte.map(
    square,
    Array.from({ length: n }, (_, i) => i),
    { concurrency: 256 },
  );
  return out.length;
});

export const square = env.task(async function square(x: number) {
  return x * x;
});

/** Default texts of the pipeline. */
export const TEXTS = ['  Alpha', 'BETA ', ' Gamma ', 'delta'];

/** Returns a value too large to keep inline: it is offloaded to a file. */
export const big = env.task({ maxInlineIoBytes: 1024 }, async function big(n: number) {
  return 'x'.repeat(n);
});

/** The failures of {@link flaky}: 500 × HTTP 503, 200 × HTTP 404, 100 × a missing file, of 10 000 items. */
export const FLAKY_CAUSES = [
  { code: 'Error', pattern: 'HTTP 503 for item <n>', count: 500 },
  { code: 'Error', pattern: 'HTTP 404 for item <n>', count: 200 },
  { code: 'TypeError', pattern: 'no such file <path>', count: 100 },
] as const;

/** Fetches item `i`: fails with one of three causes for some items (see {@link FLAKY_CAUSES}). */
export const fetchItem = env.task(async function fetchItem(i: number) {
  if (i % 20 === 1) throw new Error(`HTTP 503 for item ${i}`);
  if (i % 50 === 2) throw new Error(`HTTP 404 for item ${i}`);
  if (i % 100 === 3) throw new TypeError(`no such file /data/in/${i}.csv`);
  return i;
});

/** A map of `n` items of which some fail, of three causes; ends `succeeded` (the failures are in place). */
export const flaky = env.task(async function flaky(n: number) {
  const out = await flyte.map(
    fetchItem,
    Array.from({ length: n }, (_, i) => i),
    { concurrency: 256 },
  );
  return out.filter((r) => r instanceof Error).length;
});

/** An item that logs a line, waits for its gate `${key}:${i}`, then logs another (odd items on stderr). */
export const chatter = env.task(async function chatter(key: string, i: number) {
  console.log(`item ${i} waiting`);
  await uiGates.wait(`${key}:${i}`);
  if (i % 2 === 1) console.error(`item ${i} done`);
  else console.log(`item ${i} done`);
  return i;
});

/** A run whose `n` map items log while it runs, each finishing when the test opens its gate. */
export const chatty = env.task(async function chatty(key: string, n: number) {
  console.log(`chatty over ${n} items`);
  const out = await flyte.map(
    flyte.partial(chatter, key),
    Array.from({ length: n }, (_, i) => i),
    { concurrency: n },
  );
  console.log(`chatty done: ${out.length}`);
  return out.length;
});

/** A run that writes `n` log lines `line 0` … `line ${n - 1}`, for paging through many lines. */
export const loud = env.task(async function loud(n: number) {
  for (let i = 0; i < n; i++) console.log(`line ${i}`);
  return n;
});
