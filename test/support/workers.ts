/**
 * `flyte worker` processes for the distributed tests: spawned from the sources (`src/cli/main.ts` under tsx),
 * each on the test's own schema and key prefix, with short locks.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BIN, REPO } from './cli.js';

/** A running worker process and what it printed. */
export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code once the process exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process exited, sending nothing (after a signal sent by hand). */
  exited(): Promise<number | null>;
}

/** Options of {@link startWorker}. */
export interface StartWorkerOptions {
  readonly modules: readonly string[];
  readonly store: string;
  readonly engine: string;
  readonly concurrency?: number;
  readonly lockMs?: number;
  readonly grace?: number;
  readonly extraArgs?: readonly string[];
  /** Extra environment variables of the worker process. */
  readonly env?: Readonly<Record<string, string>>;
  /** Flags for `node` itself, before the script (`--cpu-prof`, ...). */
  readonly nodeArgs?: readonly string[];
  /** Run the built bin (`dist/cli/main.js`, what `npx flyte worker` runs) instead of the sources under tsx. */
  readonly fromBin?: boolean;
}

/** Starts one worker and resolves once it printed its status line (it consumes its queues from then on). */
export async function startWorker(options: StartWorkerOptions): Promise<WorkerProcess> {
  const args = [
    ...(options.nodeArgs ?? []),
    ...(options.fromBin === true
      ? [BIN]
      : ['--conditions=flyte-source', '--import', 'tsx', join(REPO, 'src', 'cli', 'main.ts')]),
    'worker',
    ...options.modules.flatMap((m) => ['--module', m]),
    '--store',
    options.store,
    '--engine',
    options.engine,
    '--concurrency',
    String(options.concurrency ?? 4),
    '--lock-ms',
    String(options.lockMs ?? 2_000),
    '--grace',
    String(options.grace ?? 5_000),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    env: { ...process.env, NO_COLOR: '1', FLYTE_STORE: undefined, FLYTE_ENGINE: undefined, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the worker printed no status line in 30 s:\n${text}`)), 30_000);
    const check = (): void => {
      if (/flyte worker \S+: environments/.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited (${code}) before its status line:\n${text}`));
    });
  });
  return {
    child,
    pid: child.pid as number,
    output: () => text,
    exited: () => exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Stops every worker with SIGTERM (they drain) and resolves to a check that each exited 0, to call once the test
 * has cleaned up after itself: it throws with the workers' output otherwise.
 */
export async function stopWorkers(workers: readonly WorkerProcess[]): Promise<() => void> {
  const codes = await Promise.all(workers.map((w) => w.stop('SIGTERM')));
  return () =>
    assert.deepEqual(
      codes,
      workers.map(() => 0),
      `workers drain and exit 0:\n${workers.map((w) => w.output()).join('\n')}`,
    );
}
