/**
 * `flyte worker --module FILE... [--env NAME...] [--concurrency N] [--grace MS] [--lock-ms MS]
 * [--stalled-interval-ms MS] [--max-takeovers N]`: runs the actions of remote runs
 * whose tasks the modules define, taken from the engine's queues of their environments, until SIGTERM or Ctrl-C
 * drains it.
 * @module
 */
import os from 'node:os';
import { registeredTasks } from '../internal/task-registry.js';
import { runtime } from '../internal/runtime.js';
import { DEFAULT_MAX_TAKEOVERS, RemoteController, type WorkerHandle } from '../internal/remote-controller.js';
import { OWNER } from '../internal/owner.js';
import { CommandError, ExitCode, UsageError, type ExitCodeValue } from './errors.js';
import { initFromFlags } from './init.js';
import { printTaskLine, type CliIo } from './io.js';
import { loadTaskModule } from './load.js';
import type { ConfigFlags } from './config.js';
import type { Logger } from '../internal/log.js';
import type { Recorder } from '../internal/recorder.js';
import { isTerminal } from '../types.js';

/** The options of `flyte worker`. */
export interface WorkerCommandOptions extends ConfigFlags {
  readonly module?: readonly string[];
  readonly env?: readonly string[];
  readonly concurrency?: string;
  readonly grace?: string;
  /** How long a job's lock holds without renewal, in ms. */
  readonly lockMs?: string;
  /** How often the worker tries to sweep for actions whose job vanished, in ms (short in tests). */
  readonly sweepMs?: string;
  /** How often expired locks are looked for, in ms. */
  readonly stalledIntervalMs?: string;
  /** Takeovers of one action after which it fails. */
  readonly maxTakeovers?: string;
}

/** Default grace of a drain: running actions get this long to finish before they are handed back. */
const DEFAULT_GRACE_MS = 30_000;
/** Default lock of a job: a dead worker's actions are taken over this long after (plus a stalled check). */
export const DEFAULT_LOCK_MS = 30_000;

/** Runs the worker until a signal drains it; resolves to the exit code. */
export async function workerCommand(options: WorkerCommandOptions, io: CliIo): Promise<ExitCodeValue> {
  const modules = options.module ?? [];
  if (modules.length === 0) {
    throw new UsageError('flyte worker: expected at least one --module FILE (the modules that define its tasks)');
  }
  const concurrency = positiveInt('--concurrency', options.concurrency, os.availableParallelism());
  const graceMs = nonNegativeInt('--grace', options.grace, DEFAULT_GRACE_MS);
  const lockMs = positiveInt('--lock-ms', options.lockMs, DEFAULT_LOCK_MS);
  const stalledIntervalMs = positiveInt('--stalled-interval-ms', options.stalledIntervalMs, Math.ceil(lockMs / 2));
  const maxTakeovers = nonNegativeInt('--max-takeovers', options.maxTakeovers, DEFAULT_MAX_TAKEOVERS);
  const sweepIntervalMs = options.sweepMs === undefined ? undefined : positiveInt('--sweep-ms', options.sweepMs, 0);
  // In the JSON log format the task bodies' console lines are printed from the recorder, as JSON lines with
  // their run and action, instead of reaching the console as they are.
  const jsonLines = io.log.format === 'json';
  const config = await initFromFlags(options, !jsonLines);
  if (config.engine === undefined) {
    throw new UsageError(
      'flyte worker: expected an engine to take actions from: --engine redis://HOST:PORT?prefix=NAME or FLYTE_ENGINE',
    );
  }
  const rt = runtime();
  const controller = rt.controller;
  if (!(controller instanceof RemoteController)) throw new CommandError('flyte worker: the engine is not configured');

  const loaded = [];
  for (const file of modules) loaded.push(await loadTaskModule(file));
  const paths = new Set(loaded.map((m) => m.path));
  const defined = [
    ...new Set(
      registeredTasks()
        .filter((t) => t.module !== null && paths.has(t.module))
        .map((t) => t.envName),
    ),
  ];
  const wanted = options.env ?? [];
  for (const env of wanted) {
    if (!defined.includes(env)) {
      throw new UsageError(
        `--env ${env}: no task of the modules is in an environment of that name; they define ${defined.join(', ') || 'none'}`,
      );
    }
  }
  const environments = wanted.length > 0 ? [...wanted] : defined;
  if (environments.length === 0)
    throw new UsageError(`flyte worker: the modules define no tasks (${modules.join(', ')})`);

  const log = io.log.child({ name: 'flyte worker', worker: OWNER });
  if (jsonLines) rt.recorder.on('log', (line) => printTaskLine(io, line));
  if (log.enabled('debug')) logActionPhases(rt.recorder, log);
  const worker: WorkerHandle = controller.startWorker({
    environments,
    concurrency,
    lockMs,
    stalledIntervalMs,
    maxTakeovers,
    sweepIntervalMs,
  });
  // The line that says the worker is up (test helpers wait for it), on stdout.
  io.results.info(
    `flyte worker ${OWNER}: environments ${environments.join(', ')}; queues ${worker.queues.join(', ')}; ` +
      `concurrency ${concurrency}; store ${rt.store.description}; engine ${controller.engine.description}`,
    {
      worker: OWNER,
      environments,
      queues: worker.queues,
      concurrency,
      store: rt.store.description,
      engine: controller.engine.description,
    },
  );

  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        log.warn(`${signal} again: exiting at once; its jobs come back to the queues after their locks`, { signal });
        process.exit(ExitCode.interrupted);
      }
      log.info(`${signal}: draining (no new jobs; ${worker.held} held, handed back after ${graceMs} ms)`, {
        signal,
        held: worker.held,
        graceMs,
      });
      worker.drain(graceMs).then(resolve, (err: unknown) => {
        log.error(`drain failed: ${String(err)}`);
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  log.info('drained');
  return ExitCode.ok;
}

/**
 * Debug lines (`FLYTE_LOG_LEVEL=debug`) of the actions this worker runs: one when an action starts running, and
 * one when it ends, with its phase. (The recorder is listened to only then: at other levels this costs nothing.)
 */
function logActionPhases(recorder: Recorder, log: Logger): void {
  recorder.on('action', (a) => {
    if (a.phase !== 'running' && !isTerminal(a.phase)) return;
    const fields = { run: a.runName, action: a.name, task: a.taskName, phase: a.phase };
    if (a.phase === 'running') log.debug(`${a.runName}/${a.name} (${a.taskName}): running`, fields);
    else log.debug(`${a.runName}/${a.name} (${a.taskName}): ${a.phase}`, { ...fields, error: a.error?.code });
  });
}

function positiveInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag}: expected a positive integer; received '${raw}'`);
  return n;
}

function nonNegativeInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${flag}: expected a non-negative integer; received '${raw}'`);
  return n;
}
