/**
 * The project root of a module: the nearest directory above it that holds a `package.json`. Module paths in
 * distributed jobs are relative to it, so that a submitter and workers in different checkouts of the same code
 * agree on them.
 * @module
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

const roots = new Map<string, string | null>();

/** The nearest directory at or above `dir` with a `package.json`, or `null` when there is none. */
export function projectRootOf(dir: string): string | null {
  const known = roots.get(dir);
  if (known !== undefined) return known;
  const parent = path.dirname(dir);
  const root = existsSync(path.join(dir, 'package.json')) ? dir : parent === dir ? null : projectRootOf(parent);
  roots.set(dir, root);
  return root;
}

/**
 * `module` (an absolute path or a `file:` URL) relative to its project root, with `/` separators; the absolute
 * path itself when no `package.json` is above it.
 *
 * @example
 * ```ts
 * projectRelative('/home/me/proj/src/tasks.ts'); // 'src/tasks.ts' when /home/me/proj/package.json exists
 * ```
 */
export function projectRelative(module: string): string {
  // Called for every child a remote parent enqueues: computed once per module.
  let relative = relatives.get(module);
  if (relative === undefined) relatives.set(module, (relative = relativeToRoot(module)));
  return relative;
}

const relatives = new Map<string, string>();

function relativeToRoot(module: string): string {
  const file = module.startsWith('file:') ? new URL(module).pathname : module;
  const root = projectRootOf(path.dirname(path.resolve(file)));
  if (root === null) return file;
  return path.relative(root, file).split(path.sep).join('/');
}
