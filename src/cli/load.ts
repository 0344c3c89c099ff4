/**
 * Loading the user's task file (`.ts` or `.js`, no build step) and finding a task in it.
 *
 * TypeScript is loaded through tsx's module hooks, registered for the whole process (not `tsImport`, which keys
 * the modules it loads by a namespace): the file's `import 'flyte-ts'` must resolve to this very copy of
 * flyte-ts, so that the file's tasks and this command share one runtime and one task context.
 * @module
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AnyTask } from '../index.js';
import { runtime } from '../internal/runtime.js';
import type { TaskDefinition } from '../internal/task-definition.js';
import { taskDefinition } from '../task.js';
import { CommandError, UsageError } from './errors.js';
import { userFrames } from './format.js';

/** A task exported by the loaded file. */
export interface ExportedTask {
  /** The export's name (`default` for a default export). */
  readonly exportName: string;
  readonly task: AnyTask;
  readonly def: TaskDefinition;
}

/** A loaded task file. */
export interface TaskModule {
  /** Absolute path of the file. */
  readonly path: string;
  readonly tasks: readonly ExportedTask[];
  /**
   * Runs that importing the file started in this process (a top-level `flyte.run` without the entry-point
   * guard): `flyte run` warns about them, since it then runs the task a second time.
   */
  readonly runsStarted: readonly string[];
}

let registered = false;

/** Lets `import()` load TypeScript, for the rest of this process. */
export async function registerTypeScript(): Promise<void> {
  if (registered) return;
  const { register } = await import('tsx/esm/api');
  register();
  registered = true;
}

/**
 * Imports `file` (relative to `cwd`) and lists the tasks it exports.
 *
 * @throws UsageError when the file does not exist or uses another copy of flyte-ts than this command;
 * CommandError when importing it throws.
 */
export async function loadTaskModule(file: string, cwd: string = process.cwd()): Promise<TaskModule> {
  const path = resolve(cwd, file);
  if (!existsSync(path)) throw new UsageError(`file not found: ${file} (looked for ${path})`);
  if (!statSync(path).isFile()) throw new UsageError(`not a file: ${file} (${path})`);
  checkSameFlyte(path);
  await registerTypeScript();
  let mod: Record<string, unknown>;
  const watch = watchRuns();
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    const detail =
      err instanceof Error ? [`${err.name}: ${err.message}`, ...userFrames(err.stack)].join('\n') : String(err);
    throw new CommandError(`cannot load ${file}: importing it threw ${detail}`);
  } finally {
    watch.stop();
  }
  const tasks: ExportedTask[] = [];
  for (const [exportName, value] of Object.entries(mod)) {
    const def = taskDefinition(value);
    if (def !== undefined) tasks.push({ exportName, task: value as AnyTask, def });
  }
  return { path, tasks, runsStarted: watch.started() };
}

/**
 * Notes the runs this process starts from now on: every run this process drives reports to its runtime's
 * recorder, and those still going are in its controller (also when the module called `flyte.init`, which makes
 * a new runtime).
 */
function watchRuns(): { stop(): void; started(): string[] } {
  const rt = runtime();
  const before = new Set(rt.controller.drivenRuns());
  const seen = new Set<string>();
  const onRun = (name: string): void => void seen.add(name);
  rt.recorder.on('run', onRun);
  return {
    stop: () => void rt.recorder.off('run', onRun),
    started: () => {
      for (const name of runtime().controller.drivenRuns()) seen.add(name);
      return [...seen].filter((name) => !before.has(name));
    },
  };
}

/**
 * The entry-point guard to suggest for a task file, for this Node: `import.meta.main` where Node has it (24.2 and
 * later), with the guard that also works on Node 20; else only that one.
 */
export function entryPointGuard(): string {
  const portable = 'if (import.meta.url === pathToFileURL(process.argv[1]).href) { ... }';
  // `main` is not in @types/node 20's ImportMeta (the types of the oldest Node supported).
  return typeof (import.meta as { main?: unknown }).main === 'boolean'
    ? `if (import.meta.main) { ... } (or, to run on Node 20 too, ${portable})`
    : portable;
}

/**
 * Finds a task of `mod` by export name, function (short) name or fully qualified name (`env.name`).
 *
 * @throws UsageError when no task matches (the message lists the tasks that exist) or several do.
 */
export function findTask(mod: TaskModule, query: string, file: string): ExportedTask {
  const exact = mod.tasks.find((t) => t.exportName === query || t.def.name === query);
  if (exact !== undefined) return exact;
  const matches = new Map<string, ExportedTask>();
  for (const t of mod.tasks) {
    const fnName = t.def.name.startsWith(`${t.def.envName}.`) ? t.def.name.slice(t.def.envName.length + 1) : t.def.name;
    if ((t.def.shortName === query || fnName === query) && !matches.has(t.def.name)) matches.set(t.def.name, t);
  }
  if (matches.size === 1) return [...matches.values()][0] as ExportedTask;
  if (matches.size > 1) {
    const names = [...matches.keys()].join(', ');
    throw new UsageError(`task '${query}' is ambiguous in ${file}: it names ${names}; use the fully qualified name`);
  }
  throw new UsageError(`no task '${query}' in ${file}; ${listTasks(mod)}`);
}

/** `tasks in this file: main (demo.main), double (demo.double)` or why there are none. */
export function listTasks(mod: TaskModule): string {
  if (mod.tasks.length === 0) {
    return 'it exports no tasks (define tasks with env.task(...) at top level and export them)';
  }
  const names = mod.tasks.map((t) => {
    const fnName = t.def.name.slice(t.def.envName.length + 1);
    return t.exportName === fnName ? t.def.name : `${t.exportName} (${t.def.name})`;
  });
  return `tasks in this file: ${names.join(', ')}`;
}

/**
 * Refuses a file whose `import 'flyte-ts'` would load another copy of flyte-ts than this command's (say, a
 * globally installed `flyte` and a project's own dependency): its tasks would run outside this runtime.
 */
function checkSameFlyte(path: string): void {
  let ours: string;
  let theirs: string;
  try {
    ours = realpathSync(fileURLToPath(new URL('../index.js', import.meta.url)));
    theirs = realpathSync(createRequire(path).resolve('flyte-ts'));
  } catch {
    // Either this command runs from source (no built index.js beside it), or flyte-ts is not resolvable from the
    // file (it gets its tasks some other way): there is nothing to compare.
    return;
  }
  if (theirs !== ours) {
    throw new UsageError(
      `${path} uses flyte-ts from ${theirs}, but this flyte command is from ${ours}; ` +
        `run the project's own command (npx flyte ...) so both use one copy`,
    );
  }
}
