/**
 * `flyte rerun NAME [--recover] [--name N] [--json]`: runs a past run's root task again with its recorded
 * inputs, through the public `flyte.rerun`, and follows it like `flyte run`. With `--recover` the run goes on
 * under its own name and the children that already succeeded are not run again.
 * @module
 */
import * as flyte from '../index.js';
import type { ConfigFlags } from './config.js';
import { CommandError, UsageError, type ExitCodeValue } from './errors.js';
import { initFromFlags } from './init.js';
import type { CliIo } from './io.js';
import { registerTypeScript } from './load.js';
import { echoesTaskConsole, startAndFollow } from './run-command.js';

/** Options of `flyte rerun`. */
export interface RerunCommandOptions extends ConfigFlags {
  readonly recover?: boolean;
  readonly name?: string;
  readonly json?: boolean;
}

/** Reruns `name` and follows the new run; resolves to the exit code of the run. */
export async function rerunCommand(name: string, options: RerunCommandOptions, io: CliIo): Promise<ExitCodeValue> {
  const json = options.json === true;
  await initFromFlags(options, echoesTaskConsole(io, json));
  // The root task's module is imported again to run it: it may be TypeScript.
  await registerTypeScript();
  return startAndFollow(io, json, async () => {
    try {
      return await flyte.rerun(name, {
        ...(options.recover === true ? { recover: true } : {}),
        ...(options.name === undefined ? {} : { name: options.name }),
      });
    } catch (err) {
      // A bad combination of options is bad usage; a missing run, a run still going on elsewhere or a module that
      // cannot be loaded again is a failure to do the work.
      if (err instanceof TypeError) throw new UsageError(err.message.replace(/^rerun: /, ''));
      if (err instanceof RangeError || err instanceof flyte.errors.BaseRuntimeError) {
        throw new CommandError(`cannot rerun ${name}: ${err.message.replace(/^rerun: /, '')}`);
      }
      throw err;
    }
  });
}
