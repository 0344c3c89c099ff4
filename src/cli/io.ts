/**
 * The output streams of a command, with their colours.
 * @module
 */
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
}

/** The process's own streams. */
export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    out: colorsFor(process.stdout),
    err: colorsFor(process.stderr),
    print: (text) => void process.stdout.write(`${text}\n`),
    error: (text) => void process.stderr.write(`${text}\n`),
  };
}
