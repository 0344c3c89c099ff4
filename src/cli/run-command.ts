/**
 * `flyte run [--local|--remote] [--name N] [--follow] [--json] FILE TASK [args...]`: loads FILE, finds TASK,
 * binds the arguments, starts a run and follows it to its end.
 * @module
 */
import * as flyte from '../index.js';
import type { LogLine, RunRecord } from '../index.js';
import { runtime } from '../internal/runtime.js';
import type { TaskDefinition } from '../internal/task-definition.js';
import type { ConfigFlags } from './config.js';
import { initFromFlags } from './init.js';
import { CommandError, ExitCode, UsageError, type ExitCodeValue } from './errors.js';
import { errorText, formatDuration, jsonText, toJsonValue, userFrames } from './format.js';
import { printTaskLine, whenClosed, type CliIo } from './io.js';
import { entryPointGuard, findTask, listTasks, loadTaskModule } from './load.js';
import { bindArgs, signature, taskParams, typedTaskParams } from './params.js';
import { LOG_TAIL_LINES, LiveRunView, PlainRunView, type RunView } from './run-view.js';
import { StoreFeed } from './store-feed.js';
import { LiveIndex, StoreTreeSource, type LiveFeed } from './tree.js';

/** Options of `flyte run`. */
export interface RunCommandOptions extends ConfigFlags {
  readonly local?: boolean;
  readonly remote?: boolean;
  readonly name?: string;
  readonly follow?: boolean;
  readonly json?: boolean;
}

/**
 * Runs `flyte run`. Resolves to the exit code: 0 succeeded, 1 failed / timed out / aborted, 130 aborted by Ctrl-C.
 *
 * @throws UsageError (exit 2) for a missing file, an unknown task, bad arguments or conflicting options.
 */
export async function runCommand(
  file: string,
  taskName: string | undefined,
  tokens: readonly string[],
  options: RunCommandOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  if (options.local === true && options.remote === true) {
    throw new UsageError('--local and --remote exclude each other; choose one');
  }
  const json = options.json === true;
  await initFromFlags(options, echoesTaskConsole(io, json));
  if (options.remote === true && runtime().config.engine === undefined) {
    throw new UsageError(
      '--remote needs a distributed engine, and none is configured: pass --engine redis://HOST:PORT?prefix=NAME ' +
        "(or set FLYTE_ENGINE, or the config key 'engine'), with a Postgres store that the workers share " +
        '(--store postgres://…); start workers with `flyte worker --module FILE`',
    );
  }

  const mod = await loadTaskModule(file);
  if (mod.runsStarted.length > 0) {
    io.log.warn(
      `importing ${file} started ${mod.runsStarted.length === 1 ? 'a run' : 'runs'} ` +
        `of its own (${mod.runsStarted.join(', ')}), before this command's run; start runs in a task file only ` +
        `when it is the entry point: ${entryPointGuard()}`,
      { file, runs: mod.runsStarted },
    );
  }
  if (taskName === undefined) throw new UsageError(`missing TASK: which task of ${file} to run? ${listTasks(mod)}`);
  const { task, def, exportName } = findTask(mod, taskName, file);
  const { args } = bindArgs(def.shortName, typedTaskParams(def, exportName), tokens);
  await checkInputs(def, args);

  return startAndFollow(io, json, () => startRun(def, task, args, options));
}

/** Whether `flyte run` shows the redrawn live view: on a terminal, without `--json`, in the text log format. */
function showsLiveView(io: CliIo, json: boolean): boolean {
  return !json && io.stdout.isTTY === true && io.log.format === 'text';
}

/**
 * Whether task bodies' console lines also reach this process's console as they are written (`flyte.init`'s
 * `echoLogs`). They are always recorded; they are shown in plain mode only: the live view shows a tail, `--json`
 * keeps stdout for its one document, and the JSON log format prints them as JSON lines (see
 * {@link startAndFollow}) instead.
 */
export function echoesTaskConsole(io: CliIo, json: boolean): boolean {
  return !json && !showsLiveView(io, json) && io.log.format === 'text';
}

/**
 * Starts a run with `start` and follows it to its end: the live view on a terminal, plain lines elsewhere, or one
 * JSON document with `json`; then the outputs or the error. Ctrl-C aborts the run; a second Ctrl-C exits at once.
 * In the JSON log format, every line is a JSON log line instead: the run's start, its progress, the task bodies'
 * console lines (with their run and action) and its end. Resolves to the exit code.
 */
export async function startAndFollow(
  io: CliIo,
  json: boolean,
  start: () => Promise<flyte.Run>,
): Promise<ExitCodeValue> {
  const liveView = showsLiveView(io, json);
  const jsonLines = !json && io.log.format === 'json';
  const rt = runtime();
  // Listening before the run starts: its first records are written before `start` resolves.
  const index = new LiveIndex(rt.recorder, LOG_TAIL_LINES);
  // A local run's first lines may come before `start` resolves: they wait for the line that says it started.
  let early: LogLine[] | undefined = [];
  const onTaskLine = (line: LogLine): void => void (early === undefined ? printTaskLine(io, line) : early.push(line));
  if (jsonLines) rt.recorder.on('log', onTaskLine);
  const restoreStdout = json ? sendStdoutToStderr() : () => undefined;
  let run: flyte.Run;
  // A run this process does not drive (a remote run: workers run it and record it) sends no events here: the
  // views follow it in the store. (A local run that ended already is not driven either: the index has its events.)
  let remote: boolean;
  try {
    run = await start();
    remote = rt.controller.driven(run.name) === undefined && (await rt.store.getRun(run.name))?.mode === 'remote';
  } catch (err) {
    index.close();
    rt.recorder.off('log', onTaskLine);
    restoreStdout();
    throw err;
  }
  let live: LiveFeed = index;
  let fromStore: StoreFeed | undefined;
  if (remote) {
    // Plain output echoes the task logs written on the workers, as a local run's console does.
    index.close();
    const echo = !json && !liveView;
    live = fromStore = new StoreFeed(rt.store, run.name, {
      logLines: LOG_TAIL_LINES,
      ...(echo ? { onLogs: (lines) => echoLogs(io, lines) } : {}),
    });
    // (No worker writes to this process's recorder: the lines of a remote run come from the store only.)
    rt.recorder.off('log', onTaskLine);
    fromStore.start();
  }

  let interrupts = 0;
  let view: RunView | undefined;
  // Ctrl-C (SIGINT) and SIGTERM abort the run cleanly (recorded as aborted); a second signal exits at once.
  const onSigint = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) {
      io.log.warn('interrupted twice: exiting at once; the run stays as recorded so far', { run: run.name, signal });
      process.exit(ExitCode.interrupted);
    }
    if (view === undefined) {
      io.log.info('interrupted: aborting the run (press Ctrl-C again to exit at once)', { run: run.name, signal });
    } else view.interrupted();
    const reason = signal === 'SIGTERM' ? 'terminated (SIGTERM)' : 'interrupted (Ctrl-C)';
    run
      .abort(reason)
      .catch((err: unknown) => io.log.error(`could not abort ${run.name}: ${String(err)}`, { run: run.name }));
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  // A reader that goes away (`| head -2`) does not end the run: it goes on to its end, recorded as usual, and
  // the exit code is the run's; only the printing stops.
  const stopWatching = whenClosed(io.stdout, () =>
    io.log
      .child({ name: 'flyte', run: run.name })
      .info(
        `stdout was closed: ${run.name} goes on to its end without printing more ` +
          `(then: flyte get run ${run.name}; Ctrl-C aborts it)`,
      ),
  );
  try {
    if (jsonLines) {
      io.results.info(`run ${run.name} started`, { run: run.name, url: run.url });
      for (const line of early ?? []) printTaskLine(io, line);
      early = undefined;
    } else if (!json) {
      io.print(`run ${io.out.bold(run.name)}`);
      io.print(`url ${io.out.cyan(run.url)}`);
    }
    if (!json) {
      view = liveView ? new LiveRunView(io, run, live) : new PlainRunView(io, run, live);
      view.start();
    }
    const record = await run.wait();
    // The last log lines of a remote run, recorded before its end, are echoed before the result.
    await fromStore?.poll();
    fromStore?.close();
    await view?.finish(new StoreTreeSource(rt.store, run.name));
    restoreStdout();
    const code: ExitCodeValue =
      record.phase === 'succeeded' ? ExitCode.ok : interrupts > 0 ? ExitCode.interrupted : ExitCode.failed;
    const outputs = record.phase === 'succeeded' ? await run.action('a0').outputs() : undefined;
    if (json) io.print(JSON.stringify(await jsonResult(run, record, outputs), null, 2));
    else await printResult(io, run, record, outputs);
    return code;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    rt.recorder.off('log', onTaskLine);
    stopWatching();
    live.close();
    restoreStdout();
  }
}

/** Writes task log lines where the task body wrote them, as the console of a local run does. */
function echoLogs(io: CliIo, lines: readonly LogLine[]): void {
  for (const l of lines) {
    if (io.log.format === 'json') printTaskLine(io, l);
    else if (l.stream === 'stderr') io.error(l.line);
    else io.print(l.line);
  }
}

/** Starts the run; a bad run name or a taken one is bad usage. */
async function startRun(
  def: TaskDefinition,
  task: flyte.AnyTask,
  args: unknown[],
  o: RunCommandOptions,
): Promise<flyte.Run> {
  const mode = o.remote === true ? 'remote' : o.local === true ? 'local' : undefined;
  try {
    return await flyte
      .withRunContext({ ...(mode === undefined ? {} : { mode }), ...(o.name === undefined ? {} : { name: o.name }) })
      .run(task, ...args);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(`--name: ${err.message}`);
    if (err instanceof flyte.errors.BaseRuntimeError && err.code === 'RunAlreadyExistsError') {
      throw new UsageError(`--name: ${err.message}`);
    }
    if (err instanceof flyte.errors.BaseRuntimeError)
      throw new CommandError(`cannot start ${def.name}: ${err.message}`);
    throw err;
  }
}

/**
 * Checks the arguments against the task's `inputs` Standard Schema before the run starts, so that bad input is
 * a usage error naming the parameter. The runtime validates again at the action boundary.
 */
async function checkInputs(def: TaskDefinition, args: unknown[]): Promise<void> {
  if (def.inputs === undefined) return;
  const result = await def.inputs['~standard'].validate(args);
  if (result.issues === undefined) return;
  const params = taskParams(def.fn);
  const messages = result.issues.map((issue) => {
    const path = (issue.path ?? []).map((p) => (typeof p === 'object' ? p.key : p));
    const [first, ...rest] = path;
    const param = typeof first === 'number' ? params.find((p) => p.index === first) : undefined;
    const where =
      param === undefined
        ? 'arguments'
        : `argument --${param.name}${rest.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('')}`;
    return `${where}: ${issue.message}`;
  });
  throw new UsageError(`${messages.join('; ')} (the inputs schema of ${signature(def.shortName, params)})`);
}

/** Sends what is written to stdout to stderr instead, so that stdout carries only the JSON document. */
function sendStdoutToStderr(): () => void {
  const stdout = process.stdout;
  const own = Object.getOwnPropertyDescriptor(stdout, 'write');
  Object.defineProperty(stdout, 'write', {
    value: process.stderr.write.bind(process.stderr),
    configurable: true,
    writable: true,
  });
  return () => {
    if (own === undefined) delete (stdout as { write?: unknown }).write;
    else Object.defineProperty(stdout, 'write', own);
  };
}

/** The failing action of a run and its task, for the error line. */
async function failingAction(run: flyte.Run, record: RunRecord): Promise<{ name: string; task: string }> {
  const name = record.error?.actionName ?? 'a0';
  const action = await run.action(name).record();
  return { name, task: action?.shortName ?? record.taskName };
}

async function jsonResult(run: flyte.Run, record: RunRecord, outputs: unknown): Promise<Record<string, unknown>> {
  const counts = await runtime().store.countActions(run.name);
  const base = {
    run: run.name,
    url: run.url,
    task: record.taskName,
    phase: record.phase,
    durationMs: record.startedAt === null || record.endedAt === null ? null : record.endedAt - record.startedAt,
  };
  if (record.phase === 'succeeded') return { ...base, outputs: toJsonValue(outputs), counts };
  const failing = await failingAction(run, record);
  const error = record.error === null ? null : { ...record.error, actionName: failing.name, taskName: failing.task };
  return { ...base, error, counts };
}

async function printResult(io: CliIo, run: flyte.Run, record: RunRecord, outputs: unknown): Promise<void> {
  const durationMs = record.startedAt === null || record.endedAt === null ? null : record.endedAt - record.startedAt;
  const took = durationMs === null ? '' : ` in ${formatDuration(durationMs)}`;
  if (io.log.format === 'json') {
    const fields = { run: run.name, phase: record.phase, durationMs };
    if (record.phase === 'succeeded') {
      io.results.info(`${run.name} succeeded${took}`, { ...fields, outputs: toJsonValue(outputs) });
      return;
    }
    const failing = record.error === null ? undefined : await failingAction(run, record);
    io.log.error(`${run.name} ${record.phase.replace('_', ' ')}${took}`, {
      ...fields,
      ...(failing === undefined ? {} : { action: failing.name, task: failing.task, error: record.error }),
    });
    return;
  }
  if (record.phase === 'succeeded') {
    io.print(`${io.out.green('✓')} ${run.name} succeeded${took}`);
    io.print(`outputs: ${jsonText(outputs)}`);
    return;
  }
  const c = io.err;
  io.error(`${c.red('✗')} ${run.name} ${record.phase.replace('_', ' ')}${took}`);
  if (record.error !== null) {
    const failing = await failingAction(run, record);
    io.error(`error in action ${failing.name} (${failing.task}): ${errorText(record.error, c)}`);
    const stack = userFrames(record.error.stack).slice(0, 6).join('\n');
    if (stack !== '') io.error(c.dim(stack));
  }
  io.error(c.dim(`details: flyte get run ${run.name}  ·  logs: flyte get logs ${run.name}`));
}
