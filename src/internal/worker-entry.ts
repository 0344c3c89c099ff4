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
import { ModuleLoadError, RuntimeSystemError, fromSerialized, serializeError } from '../errors.js';
import type { StepHandle, StepReplay, SyncActionController, SyncMapOptions } from './controller.js';
import { runInFrame, type Frame, type LiveAction, type RunScope } from './frame.js';
import { installLogCapture, setLogEcho } from './log-capture.js';
import { Fifo } from './fifo.js';
import { ValueCodec } from './serde.js';
import type { TaskDefinition } from './task-definition.js';
import { lookupTask } from './task-registry.js';
import { toTaskRef } from './task-ref.js';
import {
  REPLY_TYPES,
  type MapResultsReply,
  type MapSettings,
  type PoolJob,
  type RepliesTo,
  type Reply,
  type RunMessage,
  type WorkerNotice,
  type WorkerRequest,
} from './thread-protocol.js';

const { port, flag, echoLogs } = workerData as { port: MessagePort; flag: Int32Array; echoLogs: boolean };
const out = parentPort as NonNullable<typeof parentPort>;
/** Values cross between threads inline, never offloaded. */
const codec = new ValueCodec({ blobs: undefined });

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

function post(message: WorkerRequest | WorkerNotice): void {
  out.postMessage(message);
}

/** Whether `reply` is one that a request of type `type` may get. */
function answers<R extends WorkerRequest>(message: R, reply: Reply): reply is RepliesTo[R['type']] {
  return (REPLY_TYPES[message.type] as readonly string[]).includes(reply.type);
}

/**
 * Sends a request to the main thread and blocks this thread until its answer.
 * @throws the request's error, rebuilt as a flyte error
 */
function request<R extends WorkerRequest>(message: R): RepliesTo[R['type']] {
  Atomics.store(flag, 0, 0);
  post(message);
  Atomics.wait(flag, 0, 0);
  const reply = receiveMessageOnPort(port)?.message as Reply | undefined;
  if (reply === undefined) throw new RuntimeSystemError('ThreadProtocol', 'a pool thread was woken without an answer');
  if (reply.type === 'error') throw fromSerialized(reply.error);
  const got = reply.type;
  if (answers(message, reply)) return reply;
  throw new RuntimeSystemError('ThreadProtocol', `a ${message.type} request was answered with a ${got} reply`);
}

function encodeArgs(args: readonly unknown[]): string {
  return codec.encode(args, 'args', Number.POSITIVE_INFINITY).text;
}

/**
 * How many items an unbounded sync map (`concurrency: 0`) keeps fed but not consumed: it runs at most this many
 * at once.
 */
const UNBOUNDED_MAP_WINDOW = 256;
let nextMapId = 0;

function mapSettings(frame: Frame, task: TaskDefinition, bound: readonly unknown[], options: SyncMapOptions): MapSettings {
  const { concurrency, returnExceptions, group, total, budget } = options;
  const customContext = frame.customContext;
  return { task: toTaskRef(task), bound: encodeArgs(bound), concurrency, returnExceptions, group, total, budget, customContext };
}

/** The controller of frames on a pool thread: every action is run by the main thread's controller. */
class ThreadController implements SyncActionController {
  constructor(readonly mode: 'local' | 'remote') {}

  submitSync(frame: Frame, task: TaskDefinition, args: readonly unknown[]): unknown {
    const encoded = encodeArgs(args);
    const reply = request({ type: 'call', task: toTaskRef(task), args: encoded, group: frame.group, customContext: frame.customContext });
    return codec.decode(reply.value);
  }

  /** An async task called from a sync body: the call is made (blocking) when the promise is first resolved. */
  submit(frame: Frame, task: TaskDefinition, args: readonly unknown[]): Promise<unknown> {
    try {
      return Promise.resolve(this.submitSync(frame, task, args));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Streams the map (see `MapStartRequest`): before each result it hands the body, it pulls items until `window`
   * are fed but not consumed, and feeds the new ones; when it has no result left, it blocks for the next ones.
   * The message after which the input is exhausted says `last`; when every result was consumed before the main
   * thread heard it, and a failure budget's ratio waits for it (an input of unknown size), one more request
   * tells it, and throws if the budget broke.
   */
  *mapSync(
    frame: Frame,
    task: TaskDefinition,
    bound: readonly unknown[],
    items: Iterator<unknown[]>,
    options: SyncMapOptions,
  ): Generator<unknown, void, undefined> {
    const mapId = nextMapId++;
    const window = options.concurrency === 0 ? UNBOUNDED_MAP_WINDOW : options.concurrency;
    const results = new Fifo<unknown>();
    let fed = 0;
    let consumed = 0;
    let exhausted = false;
    let started = false;
    /** The main thread heard that the input is exhausted. */
    let told = false;
    const endMatters = options.budget?.minSuccessRatio != null && options.total === null;
    try {
      for (;;) {
        const batch: unknown[][] = [];
        while (!exhausted && fed + batch.length - consumed < window) {
          const next = items.next();
          if (next.done === true) exhausted = true;
          else batch.push(next.value);
        }
        fed += batch.length;
        const encoded = batch.length === 0 ? null : encodeArgs(batch);
        const last: true | undefined = exhausted && !told ? true : undefined;
        if (results.length === 0) {
          if (exhausted && fed === consumed) {
            if (started && last === true && endMatters) request({ type: 'map-next', mapId, items: null, last });
            return;
          }
          let reply: MapResultsReply;
          if (started) reply = request({ type: 'map-next', mapId, items: encoded, last });
          else {
            started = true; // before the request: a map that failed at once is closed too
            const settings = mapSettings(frame, task, bound, options);
            reply = request({ type: 'map-start', mapId, settings, items: encoded ?? encodeArgs([]), last });
          }
          told ||= last === true;
          for (const result of codec.decode(reply.results) as unknown[]) results.push(result);
        } else if (encoded !== null || last === true) {
          post({ type: 'map-feed', mapId, items: encoded ?? encodeArgs([]), last });
          told ||= last === true;
        }
        consumed++;
        yield results.shift();
      }
    } finally {
      if (started) post({ type: 'map-close', mapId });
      items.return?.();
    }
  }

  beginStep(frame: Frame, kind: 'trace' | 'durable', name: string, args: readonly unknown[]): StepHandle | StepReplay {
    const encoded = encodeArgs(args);
    const answer = request({ type: 'step', kind, name, args: encoded, group: frame.group });
    if (answer.type === 'step-replayed') return { replayed: true, value: codec.decode(answer.value) };
    const { stepId } = answer;
    return {
      replayed: false,
      frame: { ...frame, kind: 'trace' },
      succeed: (value) =>
        post({ type: 'step-end', stepId, ok: true, value: codec.encode(value, 'output', Number.POSITIVE_INFINITY).text }),
      fail: (err) => post({ type: 'step-end', stepId, ok: false, error: serializeError(err) }),
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
    log: (_frame, stream, line) => post({ type: 'log', stream, line }),
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
out.on('message', (message: RunMessage) => {
  runJob(message.job).then(
    (value) => post({ type: 'done', ok: true, value }),
    (err: unknown) => post({ type: 'done', ok: false, error: serializeError(err, message.job.actionName) }),
  );
});
