/**
 * The pool of worker threads that runs sync task bodies, so CPU-bound sync fan-out uses every core.
 *
 * The pool has a CPU budget (`size`, the cores by default): at most `size` bodies compute at once. A body that
 * calls a child blocks its thread (`Atomics.wait`) and gives its share of the budget back while it waits, so the
 * pool starts (or spawns) a thread for the child: a sync recursion deeper than the pool cannot deadlock. Threads
 * beyond `size` that stay idle are ended after a while. Idle threads do not keep the process alive.
 *
 * The pool knows nothing of runs and actions: the host given with each job answers the body's requests (child
 * calls, maps, steps) and records its console lines.
 * @module
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { RuntimeSystemError, fromSerialized, serializeError } from '../errors.js';
import {
  isRequest,
  type DoneNotice,
  type LogNotice,
  type PoolJob,
  type Reply,
  type RunMessage,
  type WorkerMessage,
  type WorkerNotice,
  type WorkerRequest,
} from './thread-protocol.js';

/** The notices of a body that its host handles (the pool handles logs and the end of the body). */
export type HostNotice = Exclude<WorkerNotice, LogNotice | DoneNotice>;

/** Answers the requests of one running body. */
export interface PoolHost {
  log(stream: 'stdout' | 'stderr', line: string): void;
  /** Answers a blocking request; should not reject (a rejection is sent as a system error). */
  request(message: WorkerRequest): Promise<Reply>;
  /** A message the body does not wait for an answer to (the end of a recorded step). */
  notify(message: HostNotice): void;
}

/** A job given to the pool: its encoded output, and a way to stop it at once. */
export interface PoolTask {
  readonly result: Promise<string>;
  /** Ends the job: its thread is terminated (even when the body spins) and replaced when needed. */
  cancel(): void;
}

/** Options of {@link ThreadPool}. */
export interface ThreadPoolOptions {
  /** Bodies that compute at once. */
  readonly size: number;
  /** Whether console lines of bodies are also printed. */
  readonly echoLogs: boolean;
  /** How long a thread beyond `size` may stay idle. @default 5000 */
  readonly idleMs?: number;
}

interface Pending {
  readonly job: PoolJob;
  readonly host: PoolHost;
  resolve(text: string): void;
  reject(err: unknown): void;
  thread: PoolThread | null;
  cancelled: boolean;
}

interface PoolThread {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly flag: Int32Array;
  current: Pending | null;
  blocked: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

/** The worker's entry module: `.ts` next to this file when running from source, `.js` when built. */
const ENTRY = new URL(`./worker-entry${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * The script a worker starts with. From source (`.ts`), it registers tsx first: loaders given with `--import` do
 * not load a worker's entry in Node 20.
 */
const BOOTSTRAP = ENTRY.pathname.endsWith('.ts')
  ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(ENTRY.href)}); });`
  : `import(${JSON.stringify(ENTRY.href)});`;

/** The flags a worker inherits: those that load modules the same way (conditions, loaders like tsx). */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  const withValue = new Set(['--conditions', '-C', '--import', '--require', '-r', '--loader', '--experimental-loader']);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const name = arg.split('=')[0] as string;
    if (!withValue.has(name)) continue;
    if (arg.includes('=')) out.push(arg);
    else if (i + 1 < args.length) out.push(arg, args[++i] as string);
  }
  return out;
}

/** Runs sync task bodies on worker threads. */
export class ThreadPool {
  readonly size: number;
  readonly #echo: boolean;
  readonly #idleMs: number;
  readonly #threads = new Set<PoolThread>();
  readonly #idle: PoolThread[] = [];
  readonly #queue: Pending[] = [];
  /** Threads that compute now (busy and not blocked on a child). */
  #running = 0;
  #closed = false;

  constructor(options: ThreadPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`threads: expected a positive integer; received ${String(options.size)}`);
    }
    this.size = options.size;
    this.#echo = options.echoLogs;
    this.#idleMs = options.idleMs ?? 5000;
  }

  /** Threads alive now, busy or idle. */
  get threads(): number {
    return this.#threads.size;
  }

  /** Queues a body; it starts as soon as the CPU budget allows. */
  run(job: PoolJob, host: PoolHost): PoolTask {
    let pending!: Pending;
    const result = new Promise<string>((resolve, reject) => {
      pending = { job, host, resolve, reject, thread: null, cancelled: false };
    });
    if (this.#closed) pending.reject(new RuntimeSystemError('PoolClosed', 'the sync task pool was shut down'));
    else {
      this.#queue.push(pending);
      this.#dispatch();
    }
    return { result, cancel: () => this.#cancel(pending) };
  }

  /** Terminates every thread. Jobs still queued or running fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.reject(new RuntimeSystemError('PoolClosed', 'the sync task pool was shut down'));
    const all = [...this.#threads];
    this.#threads.clear();
    this.#idle.length = 0;
    for (const t of all) {
      clearTimeout(t.idleTimer);
      t.current?.reject(new RuntimeSystemError('PoolClosed', 'the sync task pool was shut down'));
      t.current = null;
    }
    await Promise.allSettled(all.map((t) => t.worker.terminate()));
  }

  #dispatch(): void {
    while (this.#queue.length > 0 && this.#running < this.size) {
      const pending = this.#queue.shift() as Pending;
      if (pending.cancelled) continue;
      const thread = this.#idle.pop() ?? this.#spawn();
      clearTimeout(thread.idleTimer);
      thread.current = pending;
      thread.blocked = false;
      pending.thread = thread;
      this.#running++;
      thread.worker.ref();
      const run: RunMessage = { type: 'run', job: pending.job };
      thread.worker.postMessage(run);
    }
  }

  #spawn(): PoolThread {
    const { port1, port2 } = new MessageChannel();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    // Through `import()` from an eval'd script, so loaders registered by `--import` (tsx) load the entry too.
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      execArgv: workerExecArgv(),
      workerData: { port: port2, flag, echoLogs: this.#echo },
      transferList: [port2],
    });
    const thread: PoolThread = { worker, port: port1, flag, current: null, blocked: false, idleTimer: undefined };
    this.#threads.add(thread);
    worker.on('message', (message: WorkerMessage) => this.#onMessage(thread, message));
    worker.on('error', (err) => this.#lost(thread, err));
    worker.on('exit', (code) => this.#lost(thread, new Error(`the thread exited with code ${code}`)));
    return thread;
  }

  #onMessage(thread: PoolThread, message: WorkerMessage): void {
    const pending = thread.current;
    if (pending === null) return;
    if (isRequest(message)) {
      this.#request(thread, pending, message);
      return;
    }
    switch (message.type) {
      case 'log':
        pending.host.log(message.stream, message.line);
        return;
      case 'done':
        thread.current = null;
        this.#running--;
        if (message.ok) pending.resolve(message.value);
        else pending.reject(fromSerialized(message.error));
        this.#release(thread);
        this.#dispatch();
        return;
      default:
        pending.host.notify(message);
    }
  }

  /** The body blocks until the answer: its share of the CPU budget goes to others (e.g. its children). */
  #request(thread: PoolThread, pending: Pending, message: WorkerRequest): void {
    thread.blocked = true;
    this.#running--;
    this.#dispatch();
    pending.host
      .request(message)
      .catch((err: unknown): Reply => ({ type: 'error', error: serializeError(err) }))
      .then((reply) => {
        if (thread.current !== pending) return; // cancelled meanwhile: its thread is gone
        thread.blocked = false;
        this.#running++;
        thread.port.postMessage(reply);
        Atomics.store(thread.flag, 0, 1);
        Atomics.notify(thread.flag, 0);
      }, () => undefined);
  }

  /** An idle thread waits for the next job; beyond `size`, it ends after `idleMs`. */
  #release(thread: PoolThread): void {
    if (this.#closed || !this.#threads.has(thread)) return;
    thread.worker.unref();
    this.#idle.push(thread);
    if (this.#threads.size > this.size) {
      thread.idleTimer = setTimeout(() => {
        const i = this.#idle.indexOf(thread);
        if (i < 0 || this.#threads.size <= this.size) return;
        this.#idle.splice(i, 1);
        this.#threads.delete(thread);
        void thread.worker.terminate();
      }, this.#idleMs);
      thread.idleTimer.unref();
    }
  }

  #cancel(pending: Pending): void {
    if (pending.cancelled) return;
    pending.cancelled = true;
    const thread = pending.thread;
    if (thread === null || thread.current !== pending) return; // still queued (dropped at dispatch) or done
    this.#forget(thread);
    void thread.worker.terminate();
    this.#dispatch();
  }

  /** A thread died (crash, `process.exit` in a body, terminate): its job fails, the pool goes on without it. */
  #lost(thread: PoolThread, err: Error): void {
    const pending = thread.current;
    if (!this.#threads.has(thread)) return;
    this.#forget(thread);
    pending?.reject(new RuntimeSystemError('WorkerThreadLost', `the thread running ${pending.job.taskName} stopped: ${err.message}`, { cause: err }));
    this.#dispatch();
  }

  #forget(thread: PoolThread): void {
    if (thread.current !== null && !thread.blocked) this.#running--;
    thread.current = null;
    clearTimeout(thread.idleTimer);
    this.#threads.delete(thread);
    const i = this.#idle.indexOf(thread);
    if (i >= 0) this.#idle.splice(i, 1);
  }
}
