/**
 * Exit codes of the `flyte` command and the errors that carry them.
 * @module
 */

/**
 * The exit codes of `flyte`:
 * - `0` the command did what was asked (for `run`: the run succeeded);
 * - `1` it could not (the run failed, timed out or was aborted; a run or action does not exist; the store failed);
 * - `2` bad usage: unknown command or option, missing or malformed argument, missing file, unknown task;
 * - `130` interrupted by Ctrl-C (the run was aborted first; a second Ctrl-C exits at once).
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  interrupted: 130,
} as const;

/** One of the {@link ExitCode} values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Thrown by a command when it was called wrongly: the message says what was expected and what was received.
 * `main` prints it with a pointer to `--help` and exits with code 2.
 *
 * @example
 * ```ts
 * throw new UsageError(`argument --items: expected JSON; received '[1,2'`);
 * ```
 */
export class UsageError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.usage;
  override get name(): string {
    return 'UsageError';
  }
}

/**
 * Thrown by a command that was called rightly but could not do its work (a run that does not exist, an abort the
 * store refused). `main` prints the message and exits with code 1.
 *
 * @example
 * ```ts
 * throw new CommandError(`no run named 'brisk-otter' in sqlite:.flyte/flyte.db`);
 * ```
 */
export class CommandError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.failed;
  override get name(): string {
    return 'CommandError';
  }
}
