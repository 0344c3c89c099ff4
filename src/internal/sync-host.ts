/**
 * The main-thread side of a sync task body running on the thread pool: hands the body to the pool and answers
 * what it asks for. A child call is run with `controller.submit` in the parent's frame, as any action: requests
 * arrive in the body's call order, so child names are derived in that order.
 * @module
 */
import { ModuleLoadError, RuntimeSystemError, fromSerialized, serializeError } from '../errors.js';
import type { RunningAction } from './action-lifecycle.js';
import type { StepHandle } from './controller.js';
import { runInFrame, type Frame } from './frame.js';
import type { ValueCodec } from './serde.js';
import type { TaskDefinition } from './task-definition.js';
import { lookupTask } from './task-registry.js';
import { fromTaskRef, type TaskRef } from './task-ref.js';
import { SyncMapRun } from './map-run.js';
import type { HostNotice, ThreadPool } from './thread-pool.js';
import type { Reply, WorkerRequest } from './thread-protocol.js';

/** No limit on values crossing between threads: the action boundary applies its own. */
const INLINE = Number.POSITIVE_INFINITY;

/** Finds the definition of a task called from a pool thread, importing its module when this thread lacks it. */
async function importTask(ref: TaskRef): Promise<TaskDefinition> {
  const { name, module } = ref;
  let def = lookupTask(name);
  if (def === undefined && module !== null) {
    await import(new URL(`file://${module}`).href).catch(() => undefined); // a failure is reported just below
    def = lookupTask(name);
  }
  if (def === undefined) {
    throw new ModuleLoadError(`task ${name} is not defined in this process${module === null ? '' : ` (module ${module})`}`);
  }
  return fromTaskRef(ref, def);
}

/**
 * The definition a reference stands for. The name of a child is fixed synchronously in submit: the module is
 * imported (asynchronously) only when the task is not known yet.
 */
function resolveTask(ref: TaskRef): TaskDefinition | Promise<TaskDefinition> {
  const known = lookupTask(ref.name);
  return known === undefined ? importTask(ref) : fromTaskRef(ref, known);
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
  const encode = (value: unknown): string => codec.encode(value, 'output', INLINE).text;
  const inFrame = (group: string | null, customContext = frame.customContext): Frame => ({ ...frame, group, customContext });

  const answer = async (message: WorkerRequest): Promise<Reply> => {
    switch (message.type) {
      case 'step': {
        const stepArgs = codec.decode(message.args) as unknown[];
        const step = controller.beginStep(inFrame(message.group), message.kind, message.name, stepArgs);
        if (step.replayed) return { type: 'step-replayed', value: encode(step.value) };
        const stepId = nextStep++;
        steps.set(stepId, step);
        return { type: 'step-started', stepId };
      }
      case 'call': {
        const found = resolveTask(message.task);
        const def = found instanceof Promise ? await found : found;
        const callArgs = codec.decode(message.args) as unknown[];
        return { type: 'value', value: encode(await controller.submit(inFrame(message.group, message.customContext), def, callArgs)) };
      }
      case 'map-start': {
        const { settings } = message;
        const found = resolveTask(settings.task);
        const def = found instanceof Promise ? await found : found;
        const bound = codec.decode(settings.bound) as unknown[];
        const map = new SyncMapRun(inFrame(settings.group, settings.customContext), def, bound, settings);
        maps.set(message.mapId, map);
        return mapResults(map, message.items, message.last === true);
      }
      case 'map-next':
        return mapResults(mapOf(message.mapId), message.items, message.last === true);
    }
  };

  /** Sync maps of the body, by the id its thread gave them. */
  const maps = new Map<number, SyncMapRun>();
  const mapOf = (mapId: number): SyncMapRun => {
    const map = maps.get(mapId);
    if (map === undefined) throw new RuntimeSystemError('ThreadProtocol', `the body has no open sync map ${mapId}`);
    return map;
  };
  // Failed items are errors in place: the codec carries them as flyte errors.
  const mapResults = async (map: SyncMapRun, items: string | null, last: boolean): Promise<Reply> => {
    map.feed(items === null ? [] : (codec.decode(items) as unknown[][]), last);
    return { type: 'map-results', results: encode(await map.take()) };
  };
  const closeMaps = (): void => {
    for (const map of maps.values()) map.close();
    maps.clear();
  };

  const notify = (message: HostNotice): void => {
    switch (message.type) {
      case 'map-feed':
        // Only a map closed by the end of the body is missing here: its items are not wanted any more.
        maps.get(message.mapId)?.feed(codec.decode(message.items) as unknown[][], message.last === true);
        return;
      case 'map-close':
        maps.get(message.mapId)?.close();
        maps.delete(message.mapId);
        return;
      case 'step-end': {
        const step = steps.get(message.stepId);
        steps.delete(message.stepId);
        if (step === undefined) return;
        runInFrame(step.frame, () => (message.ok ? step.succeed(codec.decode(message.value)) : step.fail(fromSerialized(message.error))));
      }
    }
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
      request: (message) => answer(message).catch((err: unknown): Reply => ({ type: 'error', error: serializeError(err) })),
      notify,
    },
  );
  // A body that ends (or is ended) with maps still open leaves nothing running behind it.
  const result = job.result.finally(closeMaps).then((text) => codec.decode(text));
  return {
    result,
    cancel: () => {
      job.cancel();
      closeMaps();
    },
  };
}

/**
 * Runs the body of `action` in this process, the placement that the local controller and a worker share: a
 * sync body of a task whose module is known runs on a pool thread (an interrupt ends that thread, even when the
 * body spins); any other body runs inline in `frame`.
 */
export function startBodyHere(
  pool: ThreadPool | undefined,
  codec: ValueCodec,
  action: RunningAction,
  frame: Frame,
): unknown {
  const { task, args } = action;
  if (!task.isAsync && task.module !== null && pool !== undefined) {
    const job = runOnPool(pool, codec, frame, task, args);
    action.cancelBody = () => job.cancel();
    return job.result;
  }
  return runInFrame(frame, () => task.fn(...(args as never[])));
}
