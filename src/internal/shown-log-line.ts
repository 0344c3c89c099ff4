/**
 * A run-wide log line as people read it: the stored line ({@link RunLogLine}) with the display name of the
 * action that wrote it (`task #i` for a map item). What `flyte get logs RUN --all -o json` prints and what the
 * UI's `GET /api/runs/:name/logs` answers.
 * @module
 */
import type { RunLogLine } from '../store/run-store.js';
import { displayName } from './display-name.js';

/** A run-wide log line as the CLI and the UI show it. */
export interface ShownLogLine {
  readonly seq: number;
  readonly runName: string;
  readonly actionName: string;
  /** What the line is prefixed with: `task #i` for a map item, the task's short name otherwise. */
  readonly displayName: string;
  /** The item's position in its `flyte.map` call, `null` for an action that is not a map item. */
  readonly itemIndex: number | null;
  readonly attempt: number;
  readonly at: number;
  readonly stream: 'stdout' | 'stderr';
  readonly line: string;
}

/**
 * A stored line as shown: its display name (the hash name when its action is not recorded) and item index.
 *
 * @example
 * ```ts
 * shownLine(line).displayName; // 'fetch #7'
 * ```
 */
export function shownLine(l: RunLogLine): ShownLogLine {
  return {
    seq: l.seq,
    runName: l.runName,
    actionName: l.actionName,
    displayName: l.shortName === null ? l.actionName : displayName({ shortName: l.shortName, itemIndex: l.itemIndex }),
    itemIndex: l.itemIndex,
    attempt: l.attempt,
    at: l.at,
    stream: l.stream,
    line: l.line,
  };
}
