/**
 * Captures what task bodies write through `console` as their action's log lines.
 *
 * The console methods are wrapped once per process; outside a task they behave as before. Inside a task the
 * formatted line is recorded for the action and, unless echo is off, also written where it would have gone.
 * Direct writes to `process.stdout` are not captured.
 * @module
 */
import { format } from 'node:util';
import { currentFrame } from './frame.js';

type ConsoleMethod = 'log' | 'info' | 'debug' | 'warn' | 'error' | 'trace';
const STREAMS: Readonly<Record<ConsoleMethod, 'stdout' | 'stderr'>> = {
  log: 'stdout',
  info: 'stdout',
  debug: 'stdout',
  warn: 'stderr',
  error: 'stderr',
  trace: 'stderr',
};

let installed = false;
let echo = true;

/** Sets whether captured lines also reach the real console. */
export function setLogEcho(value: boolean): void {
  echo = value;
}

/** Wraps the console methods (once). */
export function installLogCapture(): void {
  if (installed) return;
  installed = true;
  for (const method of Object.keys(STREAMS) as ConsoleMethod[]) {
    const original = console[method].bind(console) as (...args: unknown[]) => void;
    const stream = STREAMS[method];
    console[method] = (...args: unknown[]): void => {
      const frame = currentFrame();
      if (frame === undefined) {
        original(...args);
        return;
      }
      frame.run.log(frame, stream, format(...args));
      if (echo) original(...args);
    };
  }
}
