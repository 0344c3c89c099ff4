/**
 * Finds the module that called into flyte-ts (the file that defined a task), from the call stack.
 *
 * It reads V8's structured call sites, not the text of `Error.stack`: with source maps on (tsx,
 * `node --enable-source-maps`) the text names the mapped source (`src/*.ts` for flyte-ts's own `dist/` frames, a
 * `.ts` file for a user's compiled module), while a call site's file name is the file that was loaded, which is
 * what a pool thread must import again and what marks flyte-ts's own frames.
 * @module
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The root of flyte-ts's own loaded code (`src/` or `dist/`), whose frames are skipped. */
const OWN_ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Frames read at most: flyte-ts's own frames between the user's call and here are a handful. */
const FRAMES = 32;

/** The call sites above `below` on the current stack, as V8 recorded them (before any source mapping). */
function callSites(below: (...args: never[]) => unknown): NodeJS.CallSite[] {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was, never called here
  const savedPrepare = Error.prepareStackTrace;
  const savedLimit = Error.stackTraceLimit;
  try {
    Error.prepareStackTrace = (_err, sites) => sites;
    Error.stackTraceLimit = FRAMES;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, below);
    // Read inside the `try`: V8 calls prepareStackTrace when `stack` is first read.
    const sites = holder.stack;
    return Array.isArray(sites) ? (sites as NodeJS.CallSite[]) : [];
  } finally {
    Error.prepareStackTrace = savedPrepare;
    Error.stackTraceLimit = savedLimit;
  }
}

/** The absolute path of a call site's loaded file, or `null` for Node's internals, `eval` and native frames. */
function sitePath(site: NodeJS.CallSite): string | null {
  const name = site.getFileName();
  if (typeof name !== 'string' || name === '') return null;
  if (name.startsWith('file://')) return fileURLToPath(name);
  return path.isAbsolute(name) ? name : null;
}

/**
 * The absolute path of the first module on the stack outside flyte-ts itself, or `null` (e.g. in a REPL).
 */
export function callerModule(): string | null {
  for (const site of callSites(callerModule)) {
    const file = sitePath(site);
    if (file === null || file.startsWith(OWN_ROOT + path.sep)) continue;
    return file;
  }
  return null;
}
