/**
 * Finds the module that called into flyte-ts (the file that defined a task), from the call stack.
 * @module
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The root of flyte-ts's own code (`src/` or `dist/`), whose frames are skipped. */
const OWN_ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

const FRAME_LOCATION = /\(?((?:file:\/\/|\/|[A-Za-z]:\\)[^():]+(?::[^():]+)*?):\d+:\d+\)?\s*$/;

/**
 * The absolute path of the first module on the stack outside flyte-ts itself, or `null` (e.g. in a REPL).
 */
export function callerModule(): string | null {
  const stack = new Error().stack ?? '';
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME_LOCATION.exec(line);
    if (m === null) continue;
    const location = m[1] as string;
    const file = location.startsWith('file://') ? fileURLToPath(location) : location;
    if (file.startsWith(OWN_ROOT + path.sep) || file.startsWith('node:')) continue;
    return file;
  }
  return null;
}
