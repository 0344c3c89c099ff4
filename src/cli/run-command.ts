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
import { whenClosed, type CliIo } from './io.js';
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
  const liveView = !json && io.stdout.isTTY === true;
  // Task logs are always recorded; they reach the console only in plain mode (the live view shows a tail, and
  // --json keeps stdout for the one JSON document).
  await initFromFlags(options, !json && !liveView);
  if (options.remote === true && runtime().config.engine === undefined) {
    throw new UsageError(
      '--remote needs a distributed engine, and none is configured: pass --engine redis://HOST:PORT?prefix=NAME ' +
        "(or set FLYTE_ENGINE, or the config key 'engine'), with a Postgres store that the workers share " +
        '(--store postgres://…); start workers with `flyte worker --module FILE`',
    );
  }

  const mod = await loadTaskModule(file);
  if (mod.runsStarted.length > 0) {
    io.error(
      `${io.err.yellow('flyte: warning:')} importing ${file} started ${mod.runsStarted.length === 1 ? 'a run' : 'runs'} ` +
        `of its own (${mod.runsStarted.join(', ')}), before this command's run; start runs in a task file only ` +
        `when it is the entry point: ${entryPointGuard()}`,
    );
  }
  if (taskName === undefined) throw new UsageError(`missing TASK: which task of ${file} to run? ${listTasks(mod)}`);
  const { task, def, exportName } = findTask(mod, taskName, file);
  const { args } = bindArgs(def.shortName, typedTaskParams(def, exportName), tokens);
  await checkInputs(def, args);

  return startAndFollow(io, json, () => startRun(def, task, args, options));
}

/**
 * Starts a run with `start` and follows it to its end: the live view on a terminal, plain lines elsewhere, or one
 * JSON document with `json`; then the outputs or the error. Ctrl-C aborts the run; a second Ctrl-C exits at once.
 * Resolves to the exit code.
 */
export async function startAndFollow(
  io: CliIo,
  json: boolean,
  start: () => Promise<flyte.Run>,
): Promise<ExitCodeValue> {
  const liveView = !json && io.stdout.isTTY === true;
  const rt = runtime();
  // Listening before the run starts: its first records are written before `start` resolves.
  const index = new LiveIndex(rt.recorder, LOG_TAIL_LINES);
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
    fromStore.start();
  }

  let interrupts = 0;
  let view: RunView | undefined;
  // Ctrl-C (SIGINT) and SIGTERM abort the run cleanly (recorded as aborted); a second signal exits at once.
  const onSigint = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) {
      io.error('interrupted twice: exiting at once; the run stays as recorded so far');
      process.exit(ExitCode.interrupted);
    }
    if (view === undefined) io.error('interrupted: aborting the run (press Ctrl-C again to exit at once)');
    else view.interrupted();
    const reason = signal === 'SIGTERM' ? 'terminated (SIGTERM)' : 'interrupted (Ctrl-C)';
    run.abort(reason).catch((err: unknown) => io.error(`could not abort ${run.name}: ${String(err)}`));
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  // A reader that goes away (`| head -2`) does not end the run: it goes on to its end, recorded as usual, and
  // the exit code is the run's; only the printing stops.
  const stopWatching = whenClosed(io.stdout, () =>
    io.error(
      `flyte: stdout was closed: ${run.name} goes on to its end without printing more ` +
        `(then: flyte get run ${run.name}; Ctrl-C aborts it)`,
    ),
  );
  try {
    if (!json) {
      io.print(`run ${io.out.bold(run.name)}`);
      io.print(`url ${io.out.cyan(run.url)}`);
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
    stopWatching();
    live.close();
    restoreStdout();
  }
}

/** Writes task log lines where the task body wrote them, as the console of a local run does. */
function echoLogs(io: CliIo, lines: readonly LogLine[]): void {
  for (const l of lines) {
    if (l.stream === 'stderr') io.error(l.line);
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
  const took =
    record.startedAt === null || record.endedAt === null
      ? ''
      : ` in ${formatDuration(record.endedAt - record.startedAt)}`;
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
