/**
 * Configures flyte-ts for a command from its flags, the environment and the config file.
 * @module
 */
import { join, resolve } from 'node:path';
import * as flyte from '../index.js';
import { resolveCliConfig, toInitOptions, type CliConfig, type ConfigFlags, type ConfigSource } from './config.js';
import { UsageError } from './errors.js';

/**
 * Calls `flyte.init` with the settings of `flags` > environment > config file, and returns those settings.
 *
 * @throws UsageError when the configured store cannot be opened (an unknown `--store`, a file that is not a
 * database, a path that cannot be created): one line naming the store and the setting it came from.
 */
export function initFromFlags(flags: ConfigFlags, echoLogs = true): CliConfig {
  const config = resolveCliConfig(flags);
  try {
    flyte.init(toInitOptions(config, echoLogs));
  } catch (err) {
    if (!(err instanceof flyte.errors.InitializationError)) throw err;
    // `init:` errors are about flyte.init's other options (FLYTE_THREADS); every other one is the store's.
    if (err.message.startsWith('init:')) throw new UsageError(err.message);
    const reason = err.cause instanceof Error ? err.cause.message : err.message;
    throw new UsageError(`cannot open the run store ${storeSpec(config)} (from ${storeOrigin(config)}): ${reason}`);
  }
  return config;
}

/** The store the settings name: `--store` and the like as given, else the default under the root. */
export function storeSpec(config: CliConfig): string {
  return config.store ?? `sqlite:${join(resolve(config.root ?? '.flyte'), 'flyte.db')}`;
}

/** Which setting chose the store: `--store`, `FLYTE_STORE`, the config file, or the root it defaults under. */
export function storeOrigin(config: CliConfig): string {
  const where = (source: ConfigSource, flag: string, env: string, key: string): string =>
    source === 'flag' ? flag : source === 'env' ? env : `"${key}" in ${config.file ?? 'the config file'}`;
  if (config.sources.store !== 'default') return where(config.sources.store, '--store', 'FLYTE_STORE', 'store');
  if (config.sources.root === 'default') return 'the default root .flyte';
  return `the default store under ${where(config.sources.root, '--root', 'FLYTE_ROOT', 'root')}`;
}
