/**
 * The entry of a pool thread (see `thread-pool.ts`): imports the module that defined a sync task, finds the task
 * in this thread's registry and runs its body in a sync frame.
 *
 * The frame's controller is a {@link ThreadController}: a child call is posted to the main thread, which runs it
 * like any action; this thread blocks with `Atomics.wait` until the answer and reads it with
 * `receiveMessageOnPort`, so the body sees a plain blocking call.
 * @module
 */
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { ModuleLoadError, fromSerialized, serializeError } from '../errors.js';
import { lookupTask } from '../task-environment.js';
import type { Controller, StepHandle, StepReplay, SyncMapOptions } from './controller.js';
import { runInFrame, type Frame, type LiveAction, type RunScope } from './frame.js';
import { installLogCapture, setLogEcho } from './log-capture.js';
import type { PoolJob, Reply } from './thread-pool.js';
import { ValueCodec } from './serde.js';
import type { TaskDefinition } from './task-definition.js';

const { port, flag, echoLogs } = workerData as { port: MessagePort; flag: Int32Array; echoLogs: boolean };
const out = parentPort as NonNullable<typeof parentPort>;
/** Values cross between threads inline, never offloaded. */
const codec = new ValueCodec({ dataDir: undefined });

// A task module may also be a test file: importing it here must not run its tests a second time.
const NODE_TEST_STUB =
  'const noop = () => {}; const mock = new Proxy({}, { get: () => noop });' +
  'export { noop as test, noop as it, noop as describe, noop as suite, noop as before, noop as after,' +
  ' noop as beforeEach, noop as afterEach, noop as run, mock }; export default noop;';
const HOOKS =
  'export async function resolve(specifier, context, next) {' +
  " if (specifier === 'node:test' || specifier === 'test') return { url: 'data:text/javascript,' +" +
  ` encodeURIComponent(${JSON.stringify(NODE_TEST_STUB)}), shortCircuit: true };` +
  ' return next(specifier, context); }';
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);

/** tsx is active here only if the pool's bootstrap registered it (from source): `--import` does not reach workers. */
let tsxRegistered = import.meta.url.endsWith('.ts');

/** Sends a request to the main thread and blocks this thread until its answer. */
function request(message: Record<string, unknown>): unknown {
  Atomics.store(flag, 0, 0);
  out.postMessage(message);
  Atomics.wait(flag, 0, 0);
  const reply = receiveMessageOnPort(port)?.message as Reply | undefined;
  if (reply === undefined) throw new Error('flyte-ts: a pool thread was woken without an answer');
  if (!reply.ok) throw fromSerialized(reply.error);
  return codec.decode(reply.value);
}

/** What the main thread needs to find (and override) a task called from here. */
function taskRef(task: TaskDefinition): Record<string, unknown> {
  return {
    task: task.name,
    module: task.module,
    overrides: {
      shortName: task.shortName,
      retries: task.retries,
      timeoutMs: task.timeoutMs,
      queuedTimeoutMs: task.queuedTimeoutMs,
      maxInlineIoBytes: task.maxInlineIoBytes,
    },
  };
}

/** The controller of frames on a pool thread: every action is run by the main thread's controller. */
class ThreadController implements Controller {
  constructor(readonly mode: 'local' | 'remote') {}

  submitSync(frame: Frame, task: TaskDefinition, args: readonly unknown[]): unknown {
    const encoded = codec.encode(args, 'args', Number.POSITIVE_INFINITY).text;
    return request({ type: 'call', ...taskRef(task), args: encoded, group: frame.group, customContext: frame.customContext });
  }

  /** An async task called from a sync body: the call is made (blocking) when the promise is first resolved. */
  submit(frame: Frame, task: TaskDefinition, args: readonly unknown[]): Promise<unknown> {
    try {
      return Promise.resolve(this.submitSync(frame, task, args));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  mapSync(frame: Frame, task: TaskDefinition, bound: readonly unknown[], argLists: unknown[][], options: SyncMapOptions): unknown[] {
    const encoded = codec.encode({ bound, argLists }, 'args', Number.POSITIVE_INFINITY).text;
    return request({
      type: 'map',
      ...taskRef(task),
      args: encoded,
      customContext: frame.customContext,
      concurrency: options.concurrency,
      returnExceptions: options.returnExceptions,
      group: options.group,
    }) as unknown[];
  }

  beginStep(frame: Frame, kind: 'trace' | 'durable', name: string, args: readonly unknown[]): StepHandle | StepReplay {
    const encoded = codec.encode(args, 'args', Number.POSITIVE_INFINITY).text;
    const answer = request({ type: 'step', kind, name, args: encoded, group: frame.group }) as
      | { replayed: true; value: unknown }
      | { replayed: false; stepId: number };
    if (answer.replayed) return { replayed: true, value: answer.value };
    const end = (ok: boolean, value: unknown): void => {
      const payload = ok ? { value: codec.encode(value, 'output', Number.POSITIVE_INFINITY).text } : { error: serializeError(value) };
      out.postMessage({ type: 'step-end', stepId: answer.stepId, ok, ...payload });
    };
    return {
      replayed: false,
      frame: { ...frame, kind: 'trace' },
      succeed: (value) => end(true, value),
      fail: (err) => end(false, err),
    };
  }
}

/** The action as a sync body sees it. Its signal never fires: a sync body is stopped by ending its thread. */
function liveAction(job: PoolJob): LiveAction {
  return {
    runName: job.runName,
    name: job.actionName,
    taskName: job.taskName,
    shortName: job.shortName,
    parent: null,
    signal: new AbortController().signal,
    children: new Set(),
    sequencer: new Map(),
    abort: () => undefined,
  };
}

/**
 * Modules this thread has imported. `import()` of a loaded module still runs the loaders' resolve hooks (tsx's,
 * on Node's hooks thread), which cost more than a small body (about 300 µs a call): import each module once.
 */
const loaded = new Set<string>();

async function load(job: PoolJob): Promise<TaskDefinition> {
  const known = loaded.has(job.module) ? lookupTask(job.taskName) : undefined;
  if (known !== undefined) return known;
  if (!tsxRegistered && /\.[cm]?tsx?$/.test(job.module)) {
    const tsx = (await import('tsx/esm/api')) as { register: () => unknown };
    tsx.register();
    tsxRegistered = true;
  }
  try {
    await import(pathToFileURL(job.module).href);
  } catch (err) {
    throw new ModuleLoadError(
      `cannot load module ${job.module} to run task ${job.taskName}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  loaded.add(job.module);
  const def = lookupTask(job.taskName);
  if (def === undefined) {
    throw new ModuleLoadError(
      `module ${job.module} does not define task ${job.taskName} at its top level; define and export tasks at module top level`,
    );
  }
  return def;
}

async function runJob(job: PoolJob): Promise<string> {
  const def = await load(job);
  const args = codec.decode(job.args) as unknown[];
  const run: RunScope = {
    name: job.runName,
    mode: job.mode,
    controller: new ThreadController(job.mode),
    log: (_frame, stream, line) => out.postMessage({ type: 'log', stream, line }),
  };
  const frame: Frame = {
    run,
    action: liveAction(job),
    attempt: job.attempt,
    group: null,
    customContext: job.customContext,
    kind: 'task',
    sync: true,
  };
  const value: unknown = await runInFrame(frame, () => def.fn(...(args as never[])));
  return codec.encode(value, 'output', Number.POSITIVE_INFINITY).text;
}

installLogCapture();
setLogEcho(echoLogs);
out.on('message', (message: { type: 'run'; job: PoolJob }) => {
  runJob(message.job).then(
    (value) => out.postMessage({ type: 'done', ok: true, value }),
    (err: unknown) => out.postMessage({ type: 'done', ok: false, error: serializeError(err, message.job.actionName) }),
  );
});
