/**
 * Runs: `flyte.run`, `flyte.withRunContext`, `flyte.getRun` and the {@link Run} handle.
 * @module
 */
import { ActionAbortedError, InitializationError, fromSerialized } from './errors.js';
import { describe } from './internal/duration.js';
import type { DrivenRun } from './internal/controller.js';
import { ROOT_ACTION } from './internal/naming.js';
import { runtime, type Runtime } from './internal/runtime.js';
import type { RunContextOptions } from './options.js';
import { taskDefinition, type Task } from './task.js';
import { type ActionRecord, type AttemptRecord, type LogLine, type RunPhase, type RunRecord } from './types.js';

/**
 * One action of a run: its record, inputs, outputs, attempts and logs.
 *
 * @example
 * ```ts
 * const a = run.action('a0');
 * console.log((await a.record())?.phase, await a.inputs(), await a.logs());
 * ```
 */
export class ActionHandle {
  readonly #rt: Runtime;

  /** @internal Use `run.action(name)`. */
  constructor(
    /** The run the action belongs to. */
    readonly runName: string,
    /** The action's name (`'a0'` for the root). */
    readonly name: string,
    rt: Runtime,
  ) {
    this.#rt = rt;
  }

  /** The action's record, or `undefined` if the run has no such action. */
  record(): Promise<ActionRecord | undefined> {
    return this.#rt.store.getAction(this.runName, this.name);
  }

  /** The decoded argument list the action was called with. */
  async inputs(): Promise<unknown[] | undefined> {
    const io = await this.#rt.store.getActionIO(this.runName, this.name);
    return io?.inputs == null ? undefined : ((await this.#rt.codec.load(io.inputs)) as unknown[]);
  }

  /** The decoded output of a succeeded action (`undefined` before it succeeded). */
  async outputs(): Promise<unknown> {
    const io = await this.#rt.store.getActionIO(this.runName, this.name);
    return io?.outputs == null ? undefined : this.#rt.codec.load(io.outputs);
  }

  /** Every attempt, first to last. */
  attempts(): Promise<AttemptRecord[]> {
    return this.#rt.store.listAttempts(this.runName, this.name);
  }

  /** The lines its body wrote through `console`. */
  logs(): Promise<LogLine[]> {
    return this.#rt.store.listLogs(this.runName, this.name);
  }

  /**
   * Aborts this action and its running descendants (phase `aborted`, their `ctx().signal` fires); the parent
   * sees an `ActionAbortedError`. Resolves once the action is recorded as ended. Does nothing if it has ended.
   *
   * When another live process drives the run, this leaves a request in the store that the process picks up
   * within a poll, and waits up to 10 s for the action to be recorded as ended.
   *
   * @throws RangeError when the run has no such action, or when the process that drove the run is gone (the
   * action will not end by itself: recover the run with `flyte.rerun(name, { recover: true })`, or abort it).
   * @throws Error when the driving process has not recorded the action's end in time (the abort may still
   * take effect).
   */
  abort(reason = ''): Promise<void> {
    return this.#rt.controller.abortAction(this.runName, this.name, reason);
  }
}

/**
 * A handle to a run, live in this process or recorded by another.
 *
 * @example
 * ```ts
 * const run = await flyte.run(main, [1, 2, 3]);
 * console.log(run.name, run.url);
 * await run.wait();
 * console.log(run.phase, await run.outputs());
 * ```
 */
export class Run<R = unknown> {
  readonly #rt: Runtime;
  #live: DrivenRun | undefined;
  #phase: RunPhase;

  /** @internal Use {@link run} or {@link getRun}. */
  constructor(
    rt: Runtime,
    /** The run's name. */
    readonly name: string,
    phase: RunPhase,
    live?: DrivenRun,
  ) {
    this.#rt = rt;
    this.#phase = phase;
    this.#live = live;
  }

  /** The run's page in the web UI. */
  get url(): string {
    return this.#rt.runUrl(this.name);
  }

  /** The latest known phase (live for runs of this process; as of the last `wait`/`record` otherwise). */
  get phase(): RunPhase {
    return this.#live?.phase ?? this.#phase;
  }

  /** The run's record as stored now. */
  async record(): Promise<RunRecord> {
    const rec = await this.#rt.store.getRun(this.name);
    if (rec === undefined) throw new RangeError(`run ${this.name} is not in ${this.#rt.store.description}`);
    if (this.#live === undefined) this.#phase = rec.phase;
    return rec;
  }

  /** Resolves with the run's record once it reached a terminal phase. Never rejects because the run failed. */
  async wait(): Promise<RunRecord> {
    const rec = await this.#rt.controller.waitRun(this.name);
    this.#phase = rec.phase;
    this.#live = undefined;
    return rec;
  }

  /** The root task's output; rejects with the run's error (rebuilt as a flyte error) if it did not succeed. */
  async outputs(): Promise<R> {
    const rec = await this.wait();
    if (rec.phase === 'succeeded') return (await this.action(ROOT_ACTION).outputs()) as R;
    if (rec.error !== null) throw fromSerialized(rec.error);
    throw new ActionAbortedError(`run ${this.name} ended in phase ${rec.phase} without an error record`);
  }

  /**
   * Aborts the run: the root and every running descendant end in phase `aborted`, their `ctx().signal` fires.
   * Resolves once the run is recorded as aborted. Aborting a finished run does nothing.
   *
   * A run driven by another live process gets a request in the store, which that process applies within a
   * poll; this waits up to 30 s for the run's end. A run whose driver is gone (`orphaned`, or its lease expired)
   * is taken over (an atomic claim, like a recovery) and recorded as aborted here, with its unfinished actions.
   *
   * @throws Error when the driving process has not recorded the run's end in time (the abort may still take
   * effect).
   */
  async abort(reason = ''): Promise<void> {
    await this.#rt.controller.abortRun(this.name, reason);
    if (this.#live === undefined) await this.record();
  }

  /**
   * Every action of the run, in creation order: `await` it for one array, or iterate it with `for await` to read
   * the store a page at a time (a run of a million actions is then never held whole).
   *
   * @example
   * ```ts
   * const all = await run.actions();
   * for await (const a of run.actions()) if (a.phase === 'failed') console.log(a.name);
   * ```
   */
  actions(): RunActions {
    return new RunActions(this.name, this.#rt);
  }

  /** One action of the run by name (`'a0'` is the root). */
  action(name: string): ActionHandle {
    return new ActionHandle(this.name, name, this.#rt);
  }
}

/** How many actions one read of the store returns while a run's actions are iterated. */
export const ACTIONS_PAGE = 1000;

/**
 * The actions of a run, in creation order, as {@link Run.actions} returns them. It is awaitable (one array: the
 * SPEC's `await run.actions()`) and async-iterable (a page of the store at a time, after a cursor, so that memory
 * stays flat whatever the size of the run).
 *
 * @example
 * ```ts
 * let failed = 0;
 * for await (const page of run.actions().pages(5000)) failed += page.filter((a) => a.phase === 'failed').length;
 * ```
 */
export class RunActions implements PromiseLike<ActionRecord[]>, AsyncIterable<ActionRecord> {
  readonly #rt: Runtime;

  /** @internal Use `run.actions()`. */
  constructor(
    /** The run whose actions these are. */
    readonly runName: string,
    rt: Runtime,
  ) {
    this.#rt = rt;
  }

  /** Reads every action into one array (awaitable on purpose: `await run.actions()` is the SPEC's form). */
  then<A = ActionRecord[], B = never>(
    onFulfilled?: ((actions: ActionRecord[]) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#rt.store.listActions(this.runName).then(onFulfilled, onRejected);
  }

  /**
   * The actions a page at a time: each page one read of the store, after the last action of the page before.
   *
   * @param size - actions per page, an integer from 1 to 10 000.
   * @throws RangeError when `size` is not such an integer.
   */
  pages(size: number = ACTIONS_PAGE): AsyncIterable<ActionRecord[]> {
    if (!Number.isSafeInteger(size) || size < 1 || size > 10_000) {
      throw new RangeError(`pages: expected a page size from 1 to 10000, received ${describe(size)}`);
    }
    const { runName } = this;
    const store = this.#rt.store;
    return {
      async *[Symbol.asyncIterator]() {
        let after: string | undefined;
        for (;;) {
          const page = await store.listActions(runName, after === undefined ? { limit: size } : { after, limit: size });
          if (page.length > 0) yield page;
          if (page.length < size) return;
          after = page[page.length - 1]!.name;
        }
      },
    };
  }

  /** The actions one at a time, read from the store a page at a time. */
  async *[Symbol.asyncIterator](): AsyncIterator<ActionRecord> {
    for await (const page of this.pages()) yield* page;
  }
}

/**
 * Runs `task` with `args` under the given run options.
 */
async function startRun<Args extends unknown[], R>(
  options: RunContextOptions,
  task: Task<Args, R>,
  args: Args,
): Promise<Run<Awaited<R>>> {
  const def = taskDefinition(task);
  if (def === undefined) {
    throw new TypeError(`run: expected a task (made with env.task); received ${describe(task)}`);
  }
  const rt = runtime();
  const mode = options.mode ?? (rt.config.engine === undefined ? 'local' : 'remote');
  if (mode === 'remote' && rt.config.engine === undefined) {
    throw new InitializationError(
      `run: mode 'remote' needs an engine that dispatches actions to workers: ` +
        `flyte.init({ engine: 'redis://127.0.0.1:6379', store: 'postgres://…' }) or FLYTE_ENGINE`,
    );
  }
  const live = await rt.controller.startRun(def, args, { ...options, mode });
  return new Run<Awaited<R>>(rt, live.name, live.phase, live);
}

/**
 * Starts a run of `task` with `args`. Resolves once the run is recorded and started; the run goes on in the
 * background (`await run.wait()` or `await run.outputs()`).
 *
 * @example
 * ```ts
 * const run = await flyte.run(main, [1, 2, 3]);
 * console.log(await run.outputs());
 * ```
 * @throws TypeError when `task` is not a task; RuntimeDataValidationError when `args` cannot be serialized.
 */
export function run<Args extends unknown[], R>(task: Task<Args, R>, ...args: Args): Promise<Run<Awaited<R>>> {
  return startRun({}, task, args);
}

/** A run configuration, from {@link withRunContext}. */
export interface RunContext {
  /** Starts a run of `task` with these options. */
  run<Args extends unknown[], R>(task: Task<Args, R>, ...args: Args): Promise<Run<Awaited<R>>>;
}

/**
 * Run options for the next run: mode, name, cache switches, concurrency, labels, custom context.
 *
 * @example
 * ```ts
 * const run = await flyte.withRunContext({ name: 'nightly-1', maxActionConcurrency: 8 }).run(main, items);
 * ```
 */
export function withRunContext(options: RunContextOptions): RunContext {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`withRunContext: expected an options object; received ${describe(options)}`);
  }
  const frozen = { ...options };
  return { run: (task, ...args) => startRun(frozen, task, args) };
}

/**
 * A handle to a recorded run, from this process or an earlier one.
 *
 * @example
 * ```ts
 * const past = await flyte.getRun('brisk-otter-3f9a2c');
 * console.log(past.phase, await past.actions());
 * ```
 * @throws RangeError when the store has no run of that name.
 */
export async function getRun(name: string): Promise<Run> {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`getRun: expected a run name; received ${describe(name)}`);
  }
  const rt = runtime();
  const live = rt.controller.driven(name);
  if (live !== undefined) return new Run(rt, name, live.phase, live);
  await rt.reconcileOrphans();
  const rec = await rt.store.getRun(name);
  if (rec === undefined) throw new RangeError(`getRun: no run named ${name} in ${rt.store.description}`);
  return new Run(rt, name, rec.phase);
}
