/**
 * `flyte abort run NAME` and `flyte abort action RUN ACTION` (`--reason R`): abort through the public API.
 * @module
 */
import * as flyte from '../index.js';
import { isAbortable, isTerminal } from '../types.js';
import type { ConfigFlags } from './config.js';
import { CommandError } from './errors.js';
import { initFromFlags } from './init.js';
import type { CliIo } from './io.js';

/** The run named `name`; an unknown run is a CommandError (exit 1). */
async function findRun(name: string): Promise<flyte.Run> {
  try {
    return await flyte.getRun(name);
  } catch (err) {
    if (err instanceof RangeError) throw new CommandError(err.message.replace(/^getRun: /, ''));
    throw err;
  }
}

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
  await initFromFlags(options);
  const run = await findRun(name);
  const before = await run.record();
  // An orphaned run has not ended: nobody drives it. Aborting it records it as aborted.
  if (!isAbortable(before.phase)) {
    io.results.info(`run ${name} already ended (${before.phase}); nothing to abort`, {
      run: name,
      phase: before.phase,
    });
    return;
  }
  try {
    await run.abort(options.reason ?? 'aborted from the flyte command');
  } catch (err) {
    throw new CommandError(`could not abort run ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const after = await run.record();
  io.results.info(`run ${name} ${after.phase === 'aborted' ? 'aborted' : `ended: ${after.phase}`}`, {
    run: name,
    phase: after.phase,
  });
}

/**
 * Aborts one action of the run `runName` and its running descendants, through `run.action(name).abort`, also
 * when another process drives the run. An action that already ended is left as it is (exit 0, with a note).
 *
 * @throws CommandError when there is no such run or action, or the abort was refused.
 */
export async function abortActionCommand(
  runName: string,
  actionName: string,
  options: ConfigFlags & { reason?: string },
  io: CliIo,
): Promise<void> {
  await initFromFlags(options);
  const action = (await findRun(runName)).action(actionName);
  const before = await action.record();
  if (before === undefined) throw new CommandError(`run ${runName} has no action ${actionName}`);
  if (isTerminal(before.phase)) {
    io.results.info(`action ${actionName} of run ${runName} already ended (${before.phase}); nothing to abort`, {
      run: runName,
      action: actionName,
      phase: before.phase,
    });
    return;
  }
  try {
    await action.abort(options.reason ?? 'aborted from the flyte command');
  } catch (err) {
    throw new CommandError(
      `could not abort action ${actionName} of run ${runName}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const after = await action.record();
  io.results.info(
    `action ${actionName} of run ${runName} ${after?.phase === 'aborted' ? 'aborted' : `ended: ${after?.phase}`}`,
    { run: runName, action: actionName, phase: after?.phase },
  );
}
