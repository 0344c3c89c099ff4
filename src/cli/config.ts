/**
 * Where the `flyte` command finds its settings, strongest first:
 * 1. flags: `--root`, `--store`, `--engine`, `--ui-url` (and `--config FILE` to choose the file of step 3);
 * 2. environment: `FLYTE_ROOT`, `FLYTE_STORE`, `FLYTE_ENGINE`, `FLYTE_UI_URL` (and `FLYTE_CONFIG`);
 * 3. a config file: `--config FILE`, else `FLYTE_CONFIG`, else `flyte.config.json` in the current directory, else
 *    `.flyte/config.json` in the current directory; a JSON object with the keys `root`, `store`, `engine`, `uiUrl`;
 * 4. the defaults of `flyte.init` (`.flyte/`, SQLite at `.flyte/flyte.db`, `http://127.0.0.1:8080`).
 *
 * A relative `root` in a config file is resolved against the project directory: the file's own directory for
 * `flyte.config.json` or `--config`, the directory that holds `.flyte/` for `.flyte/config.json`.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { InitOptions } from '../index.js';
import { UsageError } from './errors.js';

/** The settings a config file may hold. */
export interface FileConfig {
  readonly root?: string;
  readonly store?: string;
  readonly engine?: string;
  readonly uiUrl?: string;
}

/** The configuration flags of every command. */
export interface ConfigFlags {
  readonly root?: string | undefined;
  readonly store?: string | undefined;
  readonly engine?: string | undefined;
  readonly uiUrl?: string | undefined;
  readonly config?: string | undefined;
}

/** Where a setting came from. */
export type ConfigSource = 'flag' | 'env' | 'file' | 'default';

/** The settings after precedence, with where each came from. */
export interface CliConfig {
  /** `undefined`: `flyte.init`'s default. */
  readonly root: string | undefined;
  readonly store: string | undefined;
  /** The distributed engine (`redis://…`); `undefined`: none, every run is local. */
  readonly engine: string | undefined;
  readonly uiUrl: string | undefined;
  readonly sources: {
    readonly root: ConfigSource;
    readonly store: ConfigSource;
    readonly engine: ConfigSource;
    readonly uiUrl: ConfigSource;
  };
  /** The config file that was read, if any. */
  readonly file: string | undefined;
}

const KEYS: readonly (keyof FileConfig)[] = ['root', 'store', 'engine', 'uiUrl'];
const ENV: Readonly<Record<keyof FileConfig, string>> = {
  root: 'FLYTE_ROOT',
  store: 'FLYTE_STORE',
  engine: 'FLYTE_ENGINE',
  uiUrl: 'FLYTE_UI_URL',
};

/**
 * Applies the precedence flags > environment > config file > defaults.
 *
 * @example
 * ```ts
 * const config = resolveCliConfig({ root: '/tmp/state' }, process.env, process.cwd());
 * flyte.init(toInitOptions(config));
 * ```
 * @throws UsageError when a config file named by `--config`/`FLYTE_CONFIG` is missing, or a config file is not a
 * JSON object of the known keys with string values.
 */
export function resolveCliConfig(
  flags: ConfigFlags,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): CliConfig {
  const found = findConfigFile(flags.config ?? nonEmpty(env.FLYTE_CONFIG), cwd);
  const file = found === undefined ? {} : readConfigFile(found.path, found.projectDir);
  const pick = (key: keyof FileConfig): [string | undefined, ConfigSource] => {
    const flag = nonEmpty(flags[key]);
    if (flag !== undefined) return [flag, 'flag'];
    const fromEnv = nonEmpty(env[ENV[key]]);
    if (fromEnv !== undefined) return [fromEnv, 'env'];
    if (file[key] !== undefined) return [file[key], 'file'];
    return [undefined, 'default'];
  };
  const [root, rootSource] = pick('root');
  const [store, storeSource] = pick('store');
  const [engine, engineSource] = pick('engine');
  const [uiUrl, uiUrlSource] = pick('uiUrl');
  return {
    root,
    store,
    engine,
    uiUrl,
    sources: { root: rootSource, store: storeSource, engine: engineSource, uiUrl: uiUrlSource },
    file: found?.path,
  };
}

/** The `flyte.init` options for a resolved configuration. */
export function toInitOptions(config: CliConfig, echoLogs: boolean): InitOptions {
  return {
    ...(config.root === undefined ? {} : { root: config.root }),
    ...(config.store === undefined ? {} : { store: config.store }),
    ...(config.engine === undefined ? {} : { engine: config.engine }),
    ...(config.uiUrl === undefined ? {} : { uiUrl: config.uiUrl }),
    echoLogs,
  };
}

/** The config file to read: the named one (which must exist), else the first default that exists. */
function findConfigFile(named: string | undefined, cwd: string): { path: string; projectDir: string } | undefined {
  if (named !== undefined) {
    const path = resolve(cwd, named);
    if (!existsSync(path)) throw new UsageError(`config file not found: ${path}`);
    return { path, projectDir: dirname(path) };
  }
  const plain = join(cwd, 'flyte.config.json');
  if (existsSync(plain)) return { path: plain, projectDir: cwd };
  const hidden = join(cwd, '.flyte', 'config.json');
  if (existsSync(hidden)) return { path: hidden, projectDir: cwd };
  return undefined;
}

/** Reads and checks a config file; a relative `root` is made absolute against `projectDir`. */
export function readConfigFile(path: string, projectDir: string = dirname(path)): FileConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`config file ${path}: expected JSON; ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`config file ${path}: expected a JSON object with keys ${KEYS.join(', ')}`);
  }
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`config file ${path}: unknown key '${key}'; expected ${KEYS.join(', ')}`);
    }
    if (typeof value !== 'string' || value === '') {
      throw new UsageError(
        `config file ${path}: '${key}' must be a non-empty string; received ${JSON.stringify(value)}`,
      );
    }
    config[key] = key === 'root' ? resolve(projectDir, value) : value;
  }
  return config;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
