/**
 * The output streams of a command, with their colours.
 *
 * A reader that goes away (`flyte run … | head -2`) must not kill the command: a write to a pipe whose reader
 * closed fails with EPIPE, which Node reports as an `error` event that nobody handles. The process's streams
 * are guarded: such a stream is marked closed, nothing more is written to it, and whoever asked is told.
 * @module
 */
import pc from 'picocolors';
import { Logger, type LogSettings } from '../internal/log.js';
import type { LogLine } from '../types.js';
import { colorsFor, type Colors } from './format.js';

/** Where a command writes: results to stdout, diagnostics and errors to stderr. */
export interface CliIo {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  /** Colours for stdout. */
  readonly out: Colors;
  /** Colours for stderr. */
  readonly err: Colors;
  /** Writes a line to stdout. */
  print(text: string): void;
  /** Writes a line to stderr. */
  error(text: string): void;
  /** Diagnostics and notices, to stderr, in the format of `FLYTE_LOG_FORMAT` (see `src/internal/log.ts`). */
  readonly log: Logger;
  /**
   * Command results written as log lines (the JSON format's run header, progress and outcome of `flyte run`),
   * to stdout, never filtered by level.
   */
  readonly results: Logger;
}

/** The text format at level info: what the commands print by default. */
export const DEFAULT_LOG_SETTINGS: LogSettings = { format: 'text', level: 'info' };

/** The process's own streams, with loggers of `settings` (JSON lines are never coloured, nor anything else then). */
export function processIo(settings: LogSettings = DEFAULT_LOG_SETTINGS): CliIo {
  guard(process.stdout);
  guard(process.stderr);
  const json = settings.format === 'json';
  const print = (text: string): void => void (isClosed(process.stdout) || process.stdout.write(`${text}\n`));
  const error = (text: string): void => void (isClosed(process.stderr) || process.stderr.write(`${text}\n`));
  const err = json ? pc.createColors(false) : colorsFor(process.stderr);
  const log = new Logger({ ...settings, write: error, paint: err });
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    out: json ? err : colorsFor(process.stdout),
    err,
    print,
    error,
    log,
    results: log.to(print, { allLevels: true }),
  };
}

const guarded = new WeakSet<NodeJS.WritableStream>();
const closed = new WeakSet<NodeJS.WritableStream>();
const listeners = new Map<NodeJS.WritableStream, Set<() => void>>();

/** Whether the reader of `stream` went away. */
export function isClosed(stream: NodeJS.WritableStream): boolean {
  return closed.has(stream);
}

/**
 * Calls `listener` once when the reader of `stream` goes away (at once if it has already); returns a function
 * that stops listening. Only the streams of {@link processIo} are watched.
 *
 * @example
 * ```ts
 * const stop = whenClosed(io.stdout, () => io.error('stdout was closed'));
 * ```
 */
export function whenClosed(stream: NodeJS.WritableStream, listener: () => void): () => void {
  if (closed.has(stream)) {
    listener();
    return () => undefined;
  }
  let set = listeners.get(stream);
  if (set === undefined) listeners.set(stream, (set = new Set()));
  set.add(listener);
  return () => void set.delete(listener);
}

/** Marks `stream` closed on EPIPE (its reader went away) instead of letting the error kill the process. */
function guard(stream: NodeJS.WritableStream): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  stream.on('error', (err: NodeJS.ErrnoException) => {
    // Any other write error is as fatal as it was without this listener. (A write after EPIPE finds the stream
    // destroyed; Node does not emit that, but should it, it is the same closed reader.)
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    if (closed.has(stream)) return;
    closed.add(stream);
    const waiting = listeners.get(stream);
    listeners.delete(stream);
    for (const listener of waiting ?? []) listener();
  });
}

/**
 * A line a task body wrote, as a JSON log line of logger `task`, on the stream it was written to: level info for
 * stdout, warn for stderr (`console.warn` and `console.error` both write there; which one is not recorded).
 */
export function printTaskLine(io: CliIo, l: LogLine): void {
  const fields = { name: 'task', run: l.runName, action: l.actionName, attempt: l.attempt, stream: l.stream };
  if (l.stream === 'stderr') io.log.child(fields).warn(l.line, { time: l.at });
  else io.results.child(fields).info(l.line, { time: l.at });
}
