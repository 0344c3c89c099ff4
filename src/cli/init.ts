/**
 * Configures flyte-ts for a command from its flags, the environment and the config file.
 * @module
 */
import * as flyte from '../index.js';
import { describeConfig, resolveCliConfig, toInitOptions, type ConfigFlags } from './config.js';
import { UsageError } from './errors.js';

/**
 * Calls `flyte.init` with the settings of `flags` > environment > config file.
 *
 * @throws UsageError when the configured store cannot be opened (an unknown `--store`, an unusable path).
 */
export function initFromFlags(flags: ConfigFlags, echoLogs = true): void {
  const config = resolveCliConfig(flags);
  try {
    flyte.init(toInitOptions(config, echoLogs));
  } catch (err) {
    if (err instanceof flyte.errors.InitializationError) {
      throw new UsageError(`cannot open the run store: ${err.message} (settings: ${describeConfig(config)})`);
    }
    throw err;
  }
}
