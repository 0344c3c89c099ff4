/**
 * Configures flyte-ts for a command from its flags, the environment and the config file.
 * @module
 */
import { join, resolve } from 'node:path';
import * as flyte from '../index.js';
import { runtime } from '../internal/runtime.js';
import { hideStorePassword, parseSqliteSpec } from '../store/index.js';
import { resolveCliConfig, toInitOptions, type CliConfig, type ConfigFlags, type ConfigSource } from './config.js';
import { UsageError } from './errors.js';
import { readUiAddress } from './ui-address.js';

/**
 * Calls `flyte.init` with the settings of `flags` > environment > config file, waits until the store is ready
 * (a Postgres store connects and migrates), and returns those settings.
 *
 * @throws UsageError when the configured store cannot be opened (an unknown `--store`, a file that is not a
 * database, a path that cannot be created, a Postgres server that cannot be reached): one line naming the store
 * and the setting it came from.
 */
export async function initFromFlags(flags: ConfigFlags, echoLogs = true): Promise<CliConfig> {
  const resolved = resolveCliConfig(flags);
  // Without a UI address of the user's, runs link to the `flyte ui` serving this store, if one is running.
  const served = resolved.sources.uiUrl === 'default' ? readUiAddress(storeDescription(resolved)) : undefined;
  const config = served === undefined ? resolved : { ...resolved, uiUrl: served };
  try {
    flyte.init(toInitOptions(config, echoLogs));
    await runtime().store.ready();
  } catch (err) {
    if (!(err instanceof flyte.errors.InitializationError)) throw err;
    // `init:` errors are about flyte.init's other options (FLYTE_THREADS); every other one is the store's.
    if (err.message.startsWith('init:')) throw new UsageError(err.message);
    const reason = err.cause instanceof Error ? err.cause.message : err.message;
    throw new UsageError(
      `cannot open the run store ${hideStorePassword(storeSpec(config))} (from ${storeOrigin(config)}): ${reason}`,
    );
  }
  return config;
}

/** The store the settings name: `--store` and the like as given, else the default under the root. */
export function storeSpec(config: CliConfig): string {
  return config.store ?? `sqlite:${join(resolve(config.root ?? '.flyte'), 'flyte.db')}`;
}

/** The store's description as the store gives it (`sqlite:` and an absolute path), to compare stores by. */
function storeDescription(config: CliConfig): string {
  const spec = storeSpec(config);
  if (!spec.startsWith('sqlite:')) return spec;
  const { path } = parseSqliteSpec(spec);
  return path === ':memory:' ? 'sqlite::memory:' : `sqlite:${resolve(path)}`;
}

/** Which setting chose the store: `--store`, `FLYTE_STORE`, the config file, or the root it defaults under. */
export function storeOrigin(config: CliConfig): string {
  const where = (source: ConfigSource, flag: string, env: string, key: string): string =>
    source === 'flag' ? flag : source === 'env' ? env : `"${key}" in ${config.file ?? 'the config file'}`;
  if (config.sources.store !== 'default') return where(config.sources.store, '--store', 'FLYTE_STORE', 'store');
  if (config.sources.root === 'default') return 'the default root .flyte';
  return `the default store under ${where(config.sources.root, '--root', 'FLYTE_ROOT', 'root')}`;
}
