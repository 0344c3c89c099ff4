/**
 * Run-wide logs for `flyte get logs RUN [--all] [--follow]`: every action's lines in the store's write order,
 * read in pages after a cursor ({@link RunStore.listRunLogs}), so that a big run is never read whole and a
 * follower reads each line once.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunStore } from '../store/run-store.js';
import { shownLine, type ShownLogLine } from '../internal/shown-log-line.js';
import { isTerminal } from '../types.js';
import { formatTime, type Colors } from './format.js';

export type { ShownLogLine } from '../internal/shown-log-line.js';

/** How many lines one read of the store returns. */
export const LOG_PAGE = 1000;

/** How often `--follow` asks the store for new lines while the run goes on. */
export const FOLLOW_POLL_MS = 250;

/** Options of {@link readRunLogs}. */
export interface ReadRunLogsOptions {
  /** Keep reading until the run ends (is terminal, orphaned included), then read what is left and stop. */
  readonly follow: boolean;
  /** Called with each page of lines, oldest first; the next read waits for it. */
  readonly onPage: (lines: readonly ShownLogLine[]) => void | Promise<void>;
  /** Called before each poll while following (the CLI marks runs whose driver is gone as orphaned). */
  readonly beforePoll?: () => Promise<void>;
  /** @default {@link FOLLOW_POLL_MS} */
  readonly pollMs?: number;
  /** @default {@link LOG_PAGE} */
  readonly pageSize?: number;
}

/**
 * Reads the run's log lines page by page from the start, handing each page to `onPage`. With `follow`, polls
 * for new lines after the last one read until the run ends: the run's phase is read before the pages, so the
 * pages read after seeing it ended hold every line it wrote (a run ends after its lines are durable).
 * Resolves to how many lines were read.
 *
 * @example
 * ```ts
 * await readRunLogs(store, 'brisk-otter-3f9a2c', { follow: true, onPage: (lines) => print(lines) });
 * ```
 */
export async function readRunLogs(store: RunStore, runName: string, options: ReadRunLogsOptions): Promise<number> {
  const limit = options.pageSize ?? LOG_PAGE;
  let afterSeq = 0;
  let count = 0;
  for (;;) {
    if (options.follow) await options.beforePoll?.();
    const run = options.follow ? await store.getRun(runName) : undefined;
    const ended = run === undefined || isTerminal(run.phase);
    for (;;) {
      const page = await store.listRunLogs(runName, { afterSeq, limit });
      if (page.length === 0) break;
      afterSeq = page[page.length - 1]?.seq ?? afterSeq;
      count += page.length;
      await options.onPage(page.map(shownLine));
      if (page.length < limit) break;
    }
    if (ended) return count;
    await sleep(options.pollMs ?? FOLLOW_POLL_MS);
  }
}

/** Column widths that only grow, so that followed lines stay aligned as wider names appear. */
export class LogColumns {
  #name = 0;
  #action = 0;

  /** Widens the columns for `lines`. */
  fit(lines: readonly ShownLogLine[]): void {
    for (const l of lines) {
      this.#name = Math.max(this.#name, l.displayName.length);
      this.#action = Math.max(this.#action, l.actionName.length);
    }
  }

  /**
   * One line of text: the time (to the ms), the display name, the action's hash name and attempt (dimmed), the
   * text (stderr in red), e.g. `12:00:01.123 square #3  8f2a1c0b #1 squaring 3`.
   */
  format(l: ShownLogLine, c: Colors): string {
    const text = l.stream === 'stderr' ? c.red(l.line) : l.line;
    return `${c.dim(clockMs(l.at))} ${c.cyan(l.displayName.padEnd(this.#name))} ${c.dim(`${l.actionName.padEnd(this.#action)} #${l.attempt}`)} ${text}`;
  }
}

/** `HH:MM:SS.mmm` of a time in ms since the epoch, in the local time zone. */
export function clockMs(at: number): string {
  return `${formatTime(at).slice(11)}.${String(new Date(at).getMilliseconds()).padStart(3, '0')}`;
}
