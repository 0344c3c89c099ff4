/**
 * `flyte ui [--port 8080] [--host 127.0.0.1] [--token T]`: serves the web UI over the configured run store until
 * Ctrl-C.
 * @module
 */
import type { Command } from 'commander';
import * as flyte from '../index.js';
import { runtime } from '../internal/runtime.js';
import { CommandError, UsageError } from './errors.js';
import { toInitOptions, type ConfigFlags } from './config.js';
import { initFromFlags } from './init.js';
import { writeUiAddress } from './ui-address.js';
import { printTaskLine, type CliIo } from './io.js';
import { registerTypeScript } from './load.js';

/** Flags of `flyte ui`. */
export interface UiFlags extends ConfigFlags {
  readonly port?: string;
  readonly host?: string;
  readonly token?: string;
}

/**
 * Adds the `ui` command to `program`. `withConfigOptions` adds the shared `--root/--store/--ui-url/--config`
 * flags, as for every other command.
 *
 * @example
 * ```ts
 * registerUiCommand(program, io, withConfigOptions);
 * ```
 */
export function registerUiCommand(program: Command, io: CliIo, withConfigOptions: (cmd: Command) => Command): Command {
  return withConfigOptions(
    program
      .command('ui')
      .description('serve the web UI: runs, their action trees, timelines, inputs/outputs and logs, live')
      .option('-p, --port <port>', 'TCP port (0: any free port)', '8080')
      .option(
        '--host <address>',
        'address to bind; anything but 127.0.0.1, localhost or ::1 needs a token',
        '127.0.0.1',
      )
      .option('--token <token>', 'token every request must carry, at least 16 characters (env FLYTE_UI_TOKEN)'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ flyte ui\n  $ flyte ui --port 9000\n  $ FLYTE_UI_TOKEN=$(openssl rand -hex 16) flyte ui --host 0.0.0.0\n' +
        '\nWith a token, open the printed address once (it carries ?token=); the page keeps it in a cookie.' +
        '\nAPI clients send `Authorization: Bearer TOKEN`. Ctrl-C stops the server.\n',
    )
    .action(async (_opts, cmd: Command) => uiCommand(cmd.optsWithGlobals(), io));
}

/**
 * Starts the UI server and serves until SIGINT/SIGTERM.
 *
 * @throws UsageError for a bad port, or a non-loopback host without a token.
 * @throws CommandError when the port cannot be bound.
 */
export async function uiCommand(flags: UiFlags, io: CliIo, stop: Promise<unknown> = untilSignal()): Promise<void> {
  const port = Number(flags.port ?? '8080');
  if (!/^\d+$/.test(flags.port ?? '8080') || port > 65535) {
    throw new UsageError(`--port: expected a port number from 0 to 65535; received '${flags.port ?? ''}'`);
  }
  // The runs this server starts (Rerun, Recover) echo their tasks' console lines; as JSON lines in that format.
  const echo = io.log.format === 'text';
  const config = await initFromFlags(flags, echo);
  // Rerun and Recover import the run's module again, in this process: it may be TypeScript, as for `flyte rerun`.
  await registerTypeScript();
  // Loaded here: the other commands need not load the server.
  const { startUiServer } = await import('../ui/server.js');
  const token = flags.token ?? (process.env.FLYTE_UI_TOKEN || undefined);
  let ui;
  try {
    ui = await startUiServer({
      port,
      host: flags.host ?? '127.0.0.1',
      ...(token === undefined ? {} : { token }),
      // Its lines are errors (`flyte ui: ...`), which the JSON log format gives their level.
      log: (line) =>
        io.log.format === 'json'
          ? io.log.child({ name: 'flyte ui' }).error(line.replace(/^flyte ui: /, ''))
          : io.error(line),
    });
  } catch (err) {
    if (err instanceof flyte.errors.InitializationError) throw new UsageError(err.message);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new CommandError(`port ${port} is in use; choose another with --port`);
    if (code === 'EADDRNOTAVAIL')
      throw new CommandError(`cannot bind ${flags.host ?? ''}: no such address on this machine`);
    throw err;
  }
  // The runs this server starts (Rerun, Recover) link to it, and so do those of every command over this store,
  // unless the user set the UI's address (a proxy in front, say): then that is the address to give.
  const address = config.sources.uiUrl === 'default' ? ui.url : (config.uiUrl ?? ui.url);
  if (config.sources.uiUrl === 'default') flyte.init(toInitOptions({ ...config, uiUrl: ui.url }, echo));
  if (!echo) runtime().recorder.on('log', (line) => printTaskLine(io, line));
  const forget = writeUiAddress(runtime().store.description, address);
  if (io.log.format === 'json') {
    // The token is a secret: a log line gives the address without it, and says that one is needed.
    io.results.child({ name: 'flyte ui' }).info(`serving ${runtime().store.description} at ${ui.url}`, {
      store: runtime().store.description,
      url: ui.url,
      host: ui.host,
      port: ui.port,
      tokenRequired: token !== undefined,
    });
  } else printAddress(io, ui, token);
  try {
    await stop;
  } finally {
    forget();
  }
  await ui.close();
  // Runs started from the UI (rerun, recover) live in this process: stop them rather than wait for them.
  for (const name of runtime().controller.drivenRuns()) {
    await (await flyte.getRun(name)).abort('the flyte ui server stopped');
  }
}

/** The human lines of a serving `flyte ui`: the store, the address to open (with the token), how to stop. */
function printAddress(io: CliIo, ui: { url: string; host: string; port: number }, token: string | undefined): void {
  io.print(`flyte ui: serving ${runtime().store.description}`);
  io.print(`  ${io.out.bold(token === undefined ? ui.url : `${ui.url}/?token=${encodeURIComponent(token)}`)}`);
  if (ui.host !== '127.0.0.1' && ui.host !== 'localhost' && ui.host !== '::1') {
    io.print(`  listening on ${ui.host}:${ui.port}; every request needs the token`);
  }
  io.print('  Ctrl-C to stop');
}

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
