/**
 * `flyte abort run NAME [--reason R]`: aborts a run through the public `run.abort`.
 * @module
 */
import * as flyte from '../index.js';
import { isTerminal } from '../types.js';
import type { ConfigFlags } from './config.js';
import { CommandError } from './errors.js';
import { initFromFlags } from './init.js';
import type { CliIo } from './io.js';

/**
 * Aborts the run `name`. A run that already ended is left as it is (exit 0, with a note).
 *
 * @throws CommandError when there is no such run or the abort was refused (e.g. the run is driven by another
 * process and this build cannot reach it).
 */
export async function abortRunCommand(
  name: string,
  options: ConfigFlags & { reason?: string },
  io: CliIo,
): Promise<void> {
  initFromFlags(options);
  let run: flyte.Run;
  try {
    run = await flyte.getRun(name);
  } catch (err) {
    if (err instanceof RangeError) throw new CommandError(err.message.replace(/^getRun: /, ''));
    throw err;
  }
  const before = await run.record();
  if (isTerminal(before.phase)) {
    io.print(`run ${name} already ended (${before.phase}); nothing to abort`);
    return;
  }
  try {
    await run.abort(options.reason ?? 'aborted from the flyte command');
  } catch (err) {
    throw new CommandError(`could not abort run ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const after = await run.record();
  io.print(`run ${name} ${after.phase === 'aborted' ? 'aborted' : `ended: ${after.phase}`}`);
}
