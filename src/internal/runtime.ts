/**
 * The composition root: turns `flyte.init` options into a store, a codec, a recorder and a controller.
 * Nothing else chooses concrete stores.
 * @module
 */
import os from 'node:os';
import path from 'node:path';
import { InitializationError } from '../errors.js';
import { openBlobStore, openStore, type BlobStore } from '../store/index.js';
import type { RunStore } from '../store/run-store.js';
import { describe } from './duration.js';
import type { Controller } from './controller.js';
import { LocalController } from './local-controller.js';
import { RemoteController } from './remote-controller.js';
import { openEngine } from '../engine/index.js';
import { installLogCapture, setLogEcho } from './log-capture.js';
import { driverGone } from './owner.js';
import { Recorder } from './recorder.js';
import { ThreadPool } from './thread-pool.js';
import { ValueCodec } from './serde.js';
import { flushSpans } from './tracing.js';

/** Options of `flyte.init`. */
export interface InitOptions {
  /** Local state directory (store, offloaded values). @default process.env.FLYTE_ROOT ?? '.flyte' */
  readonly root?: string;
  /**
   * Where runs are recorded: `'sqlite:PATH'`, `'memory:'` or `'postgres://...'`.
   * @default process.env.FLYTE_STORE ?? `sqlite:${root}/flyte.db`
   */
  readonly store?: string;
  /**
   * The distributed engine that dispatches the actions of remote runs to `flyte worker` processes:
   * `'redis://HOST:PORT[/DB]?prefix=NAME'` (BullMQ on Redis). With an engine, runs are `remote` by default, and
   * the store must be Postgres (the records every worker shares).
   * @default process.env.FLYTE_ENGINE (none: every run is local)
   */
  readonly engine?: string;
  /** Base URL of the web UI, for `run.url`. @default process.env.FLYTE_UI_URL ?? 'http://127.0.0.1:8080' */
  readonly uiUrl?: string;
  /** Whether console output of task bodies also reaches the real console (it is always recorded). @default true */
  readonly echoLogs?: boolean;
  /**
   * How many sync task bodies compute at once on the pool of worker threads. Bodies blocked on a child call do
   * not count: the pool grows for their children and shrinks again when idle.
   * @default process.env.FLYTE_THREADS ?? os.availableParallelism()
   */
  readonly threads?: number;
}

/** The resolved configuration. */
export interface FlyteConfig {
  readonly root: string;
  readonly store: string | undefined;
  readonly engine: string | undefined;
  readonly uiUrl: string;
  readonly echoLogs: boolean;
  readonly threads: number;
}

/** What a controller is built on: where it records and how it encodes values. */
export interface ControllerDeps {
  readonly recorder: Recorder;
  readonly codec: ValueCodec;
}

/**
 * The one place that chooses the controller of a configuration: the local controller (every action runs in this
 * process, sync bodies on a pool of `config.threads` threads), or, when the configuration names an engine, the
 * remote controller (actions handed to workers through the engine), which keeps a local one for local runs.
 */
export function createController(config: FlyteConfig, deps: ControllerDeps): Controller {
  const pool = new ThreadPool({ size: config.threads, echoLogs: config.echoLogs });
  const local = new LocalController(deps.recorder, deps.codec, pool);
  if (config.engine === undefined) return local;
  if (!isPostgresStore(config.store)) {
    throw new InitializationError(
      `init: an engine (${config.engine}) needs a Postgres store that every worker shares: ` +
        `store: 'postgres://…' or FLYTE_STORE; received ${config.store === undefined ? 'the default SQLite store' : `'${config.store}'`}`,
    );
  }
  return new RemoteController(deps.recorder, deps.codec, openEngine(config.engine), local, pool);
}

function isPostgresStore(store: string | undefined): boolean {
  return store !== undefined && /^postgres(ql)?:\/\//.test(store);
}

/** One configured flyte-ts: a store and the controller that writes to it. */
export class Runtime {
  readonly store: RunStore;
  /** Where offloaded values and (for a shared store) file contents go; `undefined` for `memory:`. */
  readonly blobs: BlobStore | undefined;
  readonly recorder: Recorder;
  readonly codec: ValueCodec;
  readonly controller: Controller;
  readonly #onExit = (): void => {
    const flushSync = (this.store as { flushSync?: () => void }).flushSync;
    // At exit nothing can be awaited: commit what is pending synchronously, if the store can.
    flushSync?.call(this.store);
  };

  constructor(readonly config: FlyteConfig) {
    this.store = openStore(config.store, { root: config.root });
    this.blobs = openBlobStore(config.store, { root: config.root }, this.store);
    this.codec = new ValueCodec({ blobs: this.blobs });
    this.recorder = new Recorder(this.store);
    this.controller = createController(config, { recorder: this.recorder, codec: this.codec });
    installLogCapture();
    setLogEcho(config.echoLogs);
    process.on('exit', this.#onExit);
  }

  #reconciling: Promise<void> | undefined;
  #reconciledAt = Number.NEGATIVE_INFINITY;

  /**
   * Marks as `orphaned` the runs recorded as running whose driver is gone (its lease expired, or its process on
   * this host exited). A run driven by this process or by a live one is left alone. Readers (`getRun`, `rerun`,
   * the CLI's `get`, the UI) call it before they read; it scans at most once per {@link ORPHAN_CHECK_MS}, so a
   * long-lived reader (the UI) still sees a driver die.
   */
  reconcileOrphans(): Promise<void> {
    if (this.#reconciling !== undefined) return this.#reconciling;
    if (Date.now() - this.#reconciledAt < ORPHAN_CHECK_MS) return Promise.resolve();
    this.#reconciling = this.#markOrphans().finally(() => {
      this.#reconciledAt = Date.now();
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  async #markOrphans(): Promise<void> {
    // Collect first, then mark: marking while paging would move runs out of the pages still to read.
    const orphans: { name: string; epoch: number }[] = [];
    const page = 500;
    const now = Date.now();
    for (let offset = 0; ; offset += page) {
      const running = await this.store.listRuns({ phase: 'running', limit: page, offset });
      for (const run of running) {
        if (this.controller.driven(run.name) === undefined && driverGone(run, now)) orphans.push(run);
      }
      if (running.length < page) break;
    }
    // Each mark is conditional on the epoch read: a run claimed again meanwhile is left as it is.
    for (const { name, epoch } of orphans) await this.store.markOrphaned(name, epoch);
  }

  /** The UI address of a run. */
  runUrl(name: string): string {
    return `${this.config.uiUrl.replace(/\/+$/, '')}/runs/${encodeURIComponent(name)}`;
  }

  /** Waits for the runs of this process, then closes the store. */
  async close(): Promise<void> {
    await this.controller.close();
    await flushSpans();
    process.off('exit', this.#onExit);
    await this.codec.idle();
    await this.blobs?.close();
    await this.store.close();
  }
}

/** How often readers look for runs orphaned by a dead process, at most. */
const ORPHAN_CHECK_MS = 2_000;

let current: Runtime | undefined;

/** Resolves `init` options against the environment and defaults. */
export function resolveConfig(options: InitOptions = {}): FlyteConfig {
  if (typeof options !== 'object' || options === null) {
    throw new InitializationError(`init: expected an options object; received ${describe(options)}`);
  }
  const root = path.resolve(options.root ?? process.env.FLYTE_ROOT ?? '.flyte');
  const store = options.store ?? (process.env.FLYTE_STORE || undefined);
  const engine = options.engine ?? (process.env.FLYTE_ENGINE || undefined);
  const uiUrl = options.uiUrl ?? process.env.FLYTE_UI_URL ?? 'http://127.0.0.1:8080';
  const threads =
    options.threads ?? (process.env.FLYTE_THREADS ? Number(process.env.FLYTE_THREADS) : os.availableParallelism());
  if (!Number.isInteger(threads) || threads < 1) {
    throw new InitializationError(`init: threads: expected a positive integer; received ${describe(threads)}`);
  }
  return { root, store, engine, uiUrl, echoLogs: options.echoLogs ?? true, threads };
}

/**
 * Configures flyte-ts for this process. Optional: the first run uses the defaults (`.flyte/` in the current
 * directory, embedded SQLite). Calling it again closes the previous store once its runs have finished.
 *
 * @example
 * ```ts
 * flyte.init({ root: '/tmp/my-project-state' });
 * flyte.init({ store: 'memory:' }); // nothing on disk, for tests
 * ```
 * @throws {@link errors.InitializationError} for an unknown or unusable store.
 */
export function init(options: InitOptions = {}): void {
  const previous = current;
  current = new Runtime(resolveConfig(options));
  // The previous runtime's runs go on to their end; its store closes after them.
  if (previous !== undefined) void previous.close().catch(() => undefined);
}

/** The configured runtime, created with the defaults on first use. */
export function runtime(): Runtime {
  current ??= new Runtime(resolveConfig());
  return current;
}

/**
 * Waits for this process's runs to finish, flushes and closes the store. `init` or the next run opens it again.
 *
 * @example
 * ```ts
 * await flyte.shutdown();
 * ```
 */
export async function shutdown(): Promise<void> {
  const rt = current;
  current = undefined;
  await rt?.close();
}
