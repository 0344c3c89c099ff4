/**
 * The main-thread side of a sync task body running on the thread pool: hands the body to the pool and answers
 * what it asks for. A child call is run with `controller.submit` in the parent's frame, as any action: requests
 * arrive in the body's call order, so child names are derived in that order.
 * @module
 */
import { ModuleLoadError, fromSerialized, serializeError, type SerializedError } from '../errors.js';
import { collectMapItems } from '../map.js';
import { lookupTask } from '../task-environment.js';
import type { StepHandle } from './controller.js';
import { runInFrame, type Frame } from './frame.js';
import type { ValueCodec } from './serde.js';
import type { TaskDefinition } from './task-definition.js';
import type { Reply, ThreadPool, WorkerRequest } from './thread-pool.js';

/** No limit on values crossing between threads: the action boundary applies its own. */
const INLINE = Number.POSITIVE_INFINITY;

/** Finds the definition of a task called from a pool thread, importing its module when this thread lacks it. */
async function resolveTask(message: WorkerRequest): Promise<TaskDefinition> {
  const name = message.task as string;
  const module = message.module as string | null;
  let def = lookupTask(name);
  if (def === undefined && module !== null) {
    await import(new URL(`file://${module}`).href).catch(() => undefined); // a failure is reported just below
    def = lookupTask(name);
  }
  if (def === undefined) {
    throw new ModuleLoadError(`task ${name} is not defined in this process${module === null ? '' : ` (module ${module})`}`);
  }
  return { ...def, ...(message.overrides as Partial<TaskDefinition>) };
}

/** Runs the sync body of `task` for the action of `frame` on the pool. */
export function runOnPool(
  pool: ThreadPool,
  codec: ValueCodec,
  frame: Frame,
  task: TaskDefinition,
  args: readonly unknown[],
): { readonly result: Promise<unknown>; cancel(): void } {
  const controller = frame.run.controller;
  const steps = new Map<number, StepHandle>();
  let nextStep = 0;
  const encode = (value: unknown): Reply => ({ ok: true, value: codec.encode(value, 'output', INLINE).text });

  const answer = async (message: WorkerRequest): Promise<Reply> => {
    const childFrame: Frame = {
      ...frame,
      group: (message.group as string | null | undefined) ?? null,
      customContext: (message.customContext as Record<string, string> | undefined) ?? frame.customContext,
    };
    if (message.type === 'step') {
      const stepArgs = codec.decode(message.args as string) as unknown[];
      const step = controller.beginStep(childFrame, message.kind as 'trace' | 'durable', message.name as string, stepArgs);
      if (step.replayed) return encode({ replayed: true, value: step.value });
      const stepId = nextStep++;
      steps.set(stepId, step);
      return encode({ replayed: false, stepId });
    }
    // The name of a child is fixed synchronously in submit: resolve the task first only when it is not known.
    const known = lookupTask(message.task as string);
    const def = known === undefined ? await resolveTask(message) : { ...known, ...(message.overrides as Partial<TaskDefinition>) };
    if (message.type === 'call') {
      const callArgs = codec.decode(message.args as string) as unknown[];
      return encode(await controller.submit(childFrame, def, callArgs));
    }
    const { bound, argLists } = codec.decode(message.args as string) as { bound: unknown[]; argLists: unknown[][] };
    // Failed items are errors in place: the codec carries them as flyte errors.
    const results = await collectMapItems(childFrame, def, bound, argLists, {
      concurrency: message.concurrency as number,
      returnExceptions: message.returnExceptions as boolean,
      group: message.group as string,
    });
    return encode(results);
  };

  const job = pool.run(
    {
      module: task.module as string,
      taskName: task.name,
      shortName: task.shortName,
      args: codec.encode(args, 'args', INLINE).text,
      runName: frame.run.name,
      actionName: frame.action.name,
      attempt: frame.attempt,
      mode: frame.run.mode,
      customContext: frame.customContext,
    },
    {
      log: (stream, line) => frame.run.log(frame, stream, line),
      request: (message) =>
        answer(message).catch((err: unknown): Reply => ({ ok: false, error: serializeError(err) })),
      notify: (message) => {
        if (message.type !== 'step-end') return;
        const step = steps.get(message.stepId as number);
        steps.delete(message.stepId as number);
        if (step === undefined) return;
        runInFrame(step.frame, () =>
          message.ok === true
            ? step.succeed(codec.decode(message.value as string))
            : step.fail(fromSerialized(message.error as SerializedError)),
        );
      },
    },
  );
  return { result: job.result.then((text) => codec.decode(text)), cancel: () => job.cancel() };
}
