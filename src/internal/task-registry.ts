/**
 * The task registry: every task defined in this process, by fully qualified name (`env.name`). `env.task`
 * registers; the thread pool, recovery and `flyte.rerun` look tasks up here.
 * @module
 */
import type { TaskDefinition } from './task-definition.js';

const registry = new Map<string, TaskDefinition>();

/** The task definition registered under a fully qualified name, if any. */
export function lookupTask(fullName: string): TaskDefinition | undefined {
  return registry.get(fullName);
}

/** Every task registered in this process. */
export function registeredTasks(): TaskDefinition[] {
  return [...registry.values()];
}

/**
 * Checks that no task is registered under `fullName` yet.
 *
 * Thrown by it (a `TypeError`) when one is: task names are unique within an environment. `what` starts the
 * message (`'my_env.task'`).
 */
export function assertUnregistered(fullName: string, what: string): void {
  const existing = registry.get(fullName);
  if (existing !== undefined) {
    throw new TypeError(
      `${what}: a task named ${fullName} is already defined${existing.module ? ` in ${existing.module}` : ''}; task names must be unique within an environment`,
    );
  }
}

/** Registers `def` under its fully qualified name; the name was checked with {@link assertUnregistered}. */
export function registerTask(def: TaskDefinition): void {
  registry.set(def.name, def);
}
