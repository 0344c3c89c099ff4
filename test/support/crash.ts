/**
 * Crash tests: a fixture script run in a child process (under tsx, with this repository's flyte-ts), which prints
 * `run: NAME` once its run is recorded, and is then killed or stopped by the test at a point it chooses.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** A running fixture whose run has a name. */
export interface FixtureRun {
  readonly child: ChildProcess;
  readonly name: string;
  /** Settles when the process is gone, with how it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `node --import tsx FIXTURE ...args` with `env` added, and resolves once it printed its run's name and
 * `ready()` holds (checked every 2 ms), so the caller can kill it right there. Rejects if it exits first.
 */
export function spawnRun(
  fixture: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  ready: () => boolean,
): Promise<FixtureRun> {
  const child = spawn(process.execPath, ['--conditions=flyte-source', '--import', 'tsx', fixture, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let name = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      name = /run: (\S+)/.exec(out)?.[1] ?? name;
    });
    const poll = setInterval(() => {
      if (name !== '' && ready()) {
        clearInterval(poll);
        resolve({ child, name, exited });
      }
    }, 2);
    void exited.then(({ code }) => {
      clearInterval(poll);
      reject(new Error(`the fixture ended by itself (code ${code}) before it was ready:\n${out}`));
    });
  });
}

/** {@link spawnRun}, then SIGKILL at once; resolves with the run's name once the process is gone. */
export async function runAndKill(
  fixture: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  ready: () => boolean,
): Promise<string> {
  const { child, name, exited } = await spawnRun(fixture, args, env, ready);
  child.kill('SIGKILL');
  await exited;
  return name;
}
