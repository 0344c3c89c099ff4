/**
 * Helpers for the CLI tests: the built `flyte` binary, spawned on fixture files with a fresh state directory.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, existsSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rootEnv } from './test-store.js';

/** The repository root. */
export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The built binary the tests run: what `npx flyte` runs. */
export const BIN = join(REPO, 'dist', 'cli', 'main.js');
/** The fixture file with the tasks. */
export const TASKS = join(REPO, 'test', 'fixtures', 'cli', 'tasks.ts');
/** Fixture folder. */
export const FIXTURES = join(REPO, 'test', 'fixtures', 'cli');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Builds `dist/` when it is missing or older than `src/` (CI builds it in `npm ci`; a developer may have edited
 * `src/` since). Test files run in parallel processes: a lock directory lets one build while the others wait.
 */
export function ensureBuilt(): void {
  const fresh = (): boolean => existsSync(BIN) && statSync(BIN).mtimeMs >= newestMtime(join(REPO, 'src'));
  if (fresh()) return;
  const lock = join(tmpdir(), `flyte-ts-build-${Buffer.from(REPO).toString('hex').slice(-32)}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`waited 120 s for the build lock ${lock}; remove it if stale`);
      sleepSync(100);
    }
  }
  try {
    if (fresh()) return;
    try {
      execFileSync(
        process.execPath,
        [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: REPO,
          stdio: 'pipe',
        },
      );
    } catch (err) {
      // tsc still writes dist/ when it reports type errors; the typecheck step reports them, the tests go on.
      if (!existsSync(BIN)) throw err;
    }
    // As `npm run build` does: tsc writes the bin without its executable bit, and `npx flyte` needs it.
    chmodSync(BIN, 0o755);
  } finally {
    rmdirSync(lock);
  }
}

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory, removed when the test process exits. */
export function tempDir(prefix = 'flyte-cli-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** The environment of a spawned `flyte`: no flyte settings of the developer's, no colours unless asked. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['FLYTE_ROOT', 'FLYTE_STORE', 'FLYTE_UI_URL', 'FLYTE_CONFIG', 'FORCE_COLOR', 'NODE_OPTIONS'])
    delete env[key];
  env.NO_COLOR = '1';
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** What a finished `flyte` process left. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCli}. */
export interface RunCliOptions {
  /**
   * The state directory (`FLYTE_ROOT`); `undefined` leaves it unset. Under `FLYTE_TEST_STORE=postgres` the
   * process also gets the directory's schema as `FLYTE_STORE` (`storeOfRoot`), unless `env` sets `FLYTE_STORE`.
   */
  readonly root?: string;
  readonly env?: Record<string, string | undefined>;
  /** @default the repository root */
  readonly cwd?: string;
  /** Kill the process after this long. @default 60 000 */
  readonly timeoutMs?: number;
}

/** Starts `node dist/cli/main.js ...args` with pipes for stdio. */
export function spawnCli(args: readonly string[], options: RunCliOptions = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO,
    env: cliEnv({ ...rootEnv(options.root), ...options.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Collects the output of a spawned `flyte` until it exits. */
export function collect(child: ChildProcess, timeoutMs = 60_000): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`flyte did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** Runs `flyte ...args` to its end. */
export function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<CliResult> {
  return collect(spawnCli(args, options), options.timeoutMs);
}

/** Resolves once `child` wrote text matching `pattern` to stdout. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${String(pattern)} within ${timeoutMs} ms; saw:\n${seen}`)),
      timeoutMs,
    );
    const onData = (d: Buffer | string): void => {
      seen += d.toString();
      const match = seen.match(pattern);
      if (match !== null) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolvePromise(match);
      }
    };
    child.stdout?.on('data', onData);
  });
}

/** Parses the one JSON document a `--json` / `--output json` command printed. */
export function parseJson<T = Record<string, unknown>>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch (err) {
    throw new Error(`stdout is not one JSON document (${String(err)}):\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

/** Asserts a CLI run's exit code, showing its output when it differs. */
export function exits(result: CliResult, code: number): void {
  assert.equal(
    result.code,
    code,
    `exit code ${String(result.code)}, expected ${code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
  );
}
