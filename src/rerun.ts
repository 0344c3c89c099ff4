/**
 * `flyte.rerun`: run a recorded run's root task again, as a new run or, with `recover`, under the same run.
 * @module
 */
import { pathToFileURL } from 'node:url';
import { ModuleLoadError } from './errors.js';
import { describe } from './internal/duration.js';
import { runtime } from './internal/runtime.js';
import { lookupTask } from './internal/task-registry.js';
import { Run } from './run.js';

/** Options of {@link rerun}. */
export interface RerunOptions {
  /**
   * Run the root again **under the same run**: children (and traces, durable time) that already succeeded
   * return their recorded outputs without running; failed or unfinished ones run again. For runs left
   * `running`/`orphaned` by a process that died, or runs that failed. @default false
   */
  readonly recover?: boolean;
  /** Name of the new run (not with `recover`). @default a generated name */
  readonly name?: string;
}

/**
 * Runs a past run's root task again with the same inputs. The module that defined the root task is imported if
 * this process has not loaded it.
 *
 * @example
 * ```ts
 * const again = await flyte.rerun('brisk-otter-3f9a2c');                    // a new run, same inputs
 * const recovered = await flyte.rerun('brisk-otter-3f9a2c', { recover: true }); // finish a crashed run
 * ```
 * @throws RangeError when there is no such run, or `recover` is asked for a run still driven by a live process or
 * for a remote run (not supported yet).
 * @throws ModuleLoadError when the root task's module cannot be loaded or does not define the task.
 */
export async function rerun(name: string, options: RerunOptions = {}): Promise<Run> {
  if (typeof name !== 'string' || name === '')
    throw new TypeError(`rerun: expected a run name; received ${describe(name)}`);
  const rt = runtime();
  await rt.reconcileOrphans();
  const record = await rt.store.getRun(name);
  if (record === undefined) throw new RangeError(`rerun: no run named ${name} in ${rt.store.description}`);
  if (options.recover === true && record.mode === 'remote') {
    // Workers take over the actions of a remote run whose worker died; recovering a remote run that ended (its
    // failed actions run again, on workers) is not supported yet, and a local recovery would mix the two modes.
    throw new RangeError(
      `rerun: run ${name} is a remote run; recovering remote runs is not supported yet: ` +
        `rerun it without recover to start a new run with the same inputs`,
    );
  }
  const inputs = await rt.store.getRunInputs(name);
  const task = lookupTask(record.taskName) ?? (await importTask(record.taskName, record.module));
  const args = (await rt.codec.load(inputs as string)) as unknown[];
  if (options.recover === true) {
    if (options.name !== undefined)
      throw new TypeError('rerun: `name` cannot be combined with `recover` (the run keeps its name)');
    // One run, one driver: the recovery claims the run on the epoch read above, so of two recoveries started
    // at once (two commands, a double click in the UI) exactly one goes on.
    const live = await rt.controller.recoverRun(record, task, args);
    return new Run(rt, live.name, live.phase, live);
  }
  const live = await rt.controller.startRun(task, args, options.name === undefined ? {} : { name: options.name });
  return new Run(rt, live.name, live.phase, live);
}

async function importTask(
  taskName: string,
  module: string | null,
): Promise<NonNullable<ReturnType<typeof lookupTask>>> {
  if (module === null) {
    throw new ModuleLoadError(`task ${taskName} is not loaded in this process and its run does not record its module`);
  }
  try {
    await import(pathToFileURL(module).href);
  } catch (err) {
    throw new ModuleLoadError(`could not load module ${module} to find task ${taskName}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const task = lookupTask(taskName);
  if (task === undefined) throw new ModuleLoadError(`module ${module} does not define task ${taskName}`);
  return task;
}
