#!/usr/bin/env node
/**
 * The `flyte` command: run tasks from a file, follow runs live, inspect, abort and rerun them.
 *
 * ```sh
 * flyte run examples/map-concurrency.ts main --items '[1,2,3]'
 * flyte get runs
 * flyte get run brisk-otter-3f9a2c
 * ```
 * See `src/cli/README.md` for every command, the configuration precedence and the exit codes.
 * @module
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { shutdown } from '../index.js';
import { RUN_PHASES } from '../types.js';
import { currentFrame } from '../internal/frame.js';
import { logSettingsFromEnv, setLog, type Logger } from '../internal/log.js';
import { CommandError, ExitCode, UsageError, type ExitCodeValue } from './errors.js';
import { processIo, type CliIo } from './io.js';
import { registerUiCommand } from './ui-command.js';

// Each command's module is loaded when the command runs: `flyte --version` or `flyte get runs` need not load
// the TypeScript loader or the live view.
const runCommands = () => import('./run-command.js');
const getCommands = () => import('./get-command.js');

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Adds the configuration options (flags > environment > config file) to a command. */
function withConfigOptions(cmd: Command): Command {
  return cmd
    .option('--root <dir>', 'local state directory (env FLYTE_ROOT; default .flyte)')
    .option(
      '--store <spec>',
      "run store: 'sqlite:PATH', 'postgres://…' or 'memory:' (env FLYTE_STORE; default sqlite:<root>/flyte.db)",
    )
    .option('--engine <url>', "distributed engine: 'redis://HOST:PORT?prefix=NAME' (env FLYTE_ENGINE; default none)")
    .option(
      '--ui-url <url>',
      'web UI address for run links (env FLYTE_UI_URL; default: the flyte ui serving the store, else http://127.0.0.1:8080)',
    )
    .option('--config <file>', 'config file (env FLYTE_CONFIG; default ./flyte.config.json, else ./.flyte/config.json)')
    .option('--no-color', 'no colours (also: env NO_COLOR)');
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

const OUTPUT = (): Option =>
  new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table');

/**
 * The command tree. Each action stores its exit code in `state.code`.
 *
 * @example
 * ```ts
 * const state = { code: 0 };
 * await createProgram(processIo(), state).parseAsync(['node', 'flyte', 'get', 'runs']);
 * ```
 */
export function createProgram(io: CliIo, state: { code: ExitCodeValue }): Command {
  const program = new Command('flyte')
    .description(`flyte-ts ${pkg.version}: run Flyte 2 style tasks written in TypeScript, and inspect their runs.`)
    .version(pkg.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => writeErr(io, s),
      // Commander's own errors ("error: unknown option '--x'") read like ours: `flyte: error: ...`.
      outputError: (s, write) =>
        io.log.format === 'json'
          ? io.log.error(s.replace(/^error: /, '').trimEnd())
          : write(io.err.red(s.replace(/^error: /, 'flyte: error: '))),
    });
  withConfigOptions(program);
  program.addHelpText(
    'after',
    examples(
      'flyte run examples/map-concurrency.ts main --items "[1,2,3,4]"',
      'flyte get runs --phase failed',
      'flyte get run brisk-otter-3f9a2c',
      'flyte --root /tmp/state get runs --output json',
    ) +
      '\nSettings: flags > environment (FLYTE_ROOT, FLYTE_STORE, FLYTE_ENGINE, FLYTE_UI_URL) > flyte.config.json or .flyte/config.json.' +
      '\nExit codes: 0 ok, 1 failed run or not found, 2 bad usage, 130 interrupted (Ctrl-C).\n',
  );

  // flyte run
  withConfigOptions(
    program
      .command('run')
      .description('run a task of a .ts or .js file and follow it live until it ends')
      .argument('<file>', 'the file that defines and exports the task (.ts or .js; no build step)')
      .argument('[task]', 'the task: its export name, function name or fully qualified name (env.task)')
      .argument('[args...]', "the task's arguments: --param value (JSON where it parses, else a string) or positional")
      .option('--local', 'run in this process (the default without an engine)')
      .option('--remote', 'run on flyte worker processes through the engine (--engine; the default with one)')
      .option('--name <name>', 'name of the run (default: a short generated name)')
      .option('--follow', 'follow the run until it ends (always so for local runs: they live in this process)')
      .option(
        '--json',
        'print one JSON document at the end instead of the live view: { run, phase, outputs | error, counts }',
      )
      .passThroughOptions(),
  )
    .addHelpText(
      'after',
      '\nOptions of flyte run go before FILE; everything after TASK is for the task.' +
        examples(
          'flyte run examples/map-concurrency.ts main --items "[1,2,3,4,5]"',
          'flyte run pipeline.ts main "[1,2,3]" 5                  # positionally',
          'flyte run --name nightly-1 pipeline.ts etl.main --day 2026-11-25',
          'flyte run --json pipeline.ts main --items "[1,2]" | jq .outputs',
        ) +
        '\nOn a terminal the live view shows the action tree with fan-outs folded, their progress, durations and retries.' +
        '\nCtrl-C aborts the run (recorded as aborted, exit 130); a second Ctrl-C exits at once.\n',
    )
    .action(async (file: string, task: string | undefined, args: string[], _opts, cmd: Command) => {
      state.code = await (await runCommands()).runCommand(file, task, args, cmd.optsWithGlobals(), io);
    });

  // flyte get ...
  const get = withConfigOptions(
    program.command('get').description('show runs, actions, inputs/outputs and logs from the run store'),
  ).addHelpText(
    'after',
    examples('flyte get runs', 'flyte get run brisk-otter-3f9a2c', 'flyte get logs brisk-otter-3f9a2c a0'),
  );
  withConfigOptions(
    get
      .command('runs')
      .description('list recent runs, newest first')
      .option('-n, --limit <n>', 'at most this many runs', '20')
      .option('--phase <phase>', `only runs in this phase (${RUN_PHASES.join(', ')})`)
      .option('--task <name>', 'only runs of this root task (fully qualified name)')
      .addOption(OUTPUT()),
  )
    .addHelpText('after', examples('flyte get runs --limit 5', 'flyte get runs --phase failed --output json'))
    .action(async (_opts, cmd: Command) => (await getCommands()).getRuns(cmd.optsWithGlobals(), io));
  withConfigOptions(
    get
      .command('run')
      .description("a run's record and its action tree, with fan-outs and groups folded into one line each")
      .argument('<name>', 'the run name')
      .option('--max-nodes <n>', 'show at most this many tree lines', '200')
      .option('--failed', 'list the actions that failed or timed out (paged) instead of the tree')
      .option('--grep <text>', 'list the actions whose inputs or error message contain TEXT, ignoring case (paged)')
      .option('--limit <n>', 'with --failed or --grep: at most this many actions (default 50)')
      .option('--offset <n>', 'with --failed or --grep: skip this many matching actions first (default 0)')
      .addOption(OUTPUT()),
  )
    .addHelpText(
      'after',
      examples(
        'flyte get run brisk-otter-3f9a2c',
        'flyte get run brisk-otter-3f9a2c -o json',
        'flyte get run brisk-otter-3f9a2c --failed --limit 20',
        "flyte get run brisk-otter-3f9a2c --grep 'HTTP 503' --offset 50",
      ),
    )
    .action(async (name: string, _opts, cmd: Command) =>
      (await getCommands()).getRunCommand(name, cmd.optsWithGlobals(), io),
    );
  withConfigOptions(
    get
      .command('action')
      .description("one action's record, attempts and error")
      .argument('<run>', 'the run name')
      .argument('<action>', "the action name ('a0' is the root)")
      .addOption(OUTPUT()),
  )
    .addHelpText('after', examples('flyte get action brisk-otter-3f9a2c a0'))
    .action(async (run: string, action: string, _opts, cmd: Command) =>
      (await getCommands()).getActionCommand(run, action, cmd.optsWithGlobals(), io),
    );
  withConfigOptions(
    get
      .command('io')
      .description("an action's decoded inputs and outputs (the root's by default)")
      .argument('<run>', 'the run name')
      .argument('[action]', "the action name (default 'a0', the root)")
      .addOption(OUTPUT()),
  )
    .addHelpText(
      'after',
      examples('flyte get io brisk-otter-3f9a2c', 'flyte get io brisk-otter-3f9a2c 3f9a2c01 -o json'),
    )
    .action(async (run: string, action: string | undefined, _opts, cmd: Command) =>
      (await getCommands()).getIoCommand(run, action, cmd.optsWithGlobals(), io),
    );
  withConfigOptions(
    get
      .command('logs')
      .description('what task bodies wrote through console, for a run (every action, merged) or one action')
      .argument('<run>', 'the run name')
      .argument('[action]', 'only this action')
      .option('--all', "every action's lines, prefixed with its name ('task #i' for map items): what RUN alone shows")
      .option('-f, --follow', 'keep printing new lines until the run ends (run-wide; JSON Lines with -o json)')
      .addOption(OUTPUT()),
  )
    .addHelpText(
      'after',
      examples(
        'flyte get logs brisk-otter-3f9a2c --all',
        'flyte get logs brisk-otter-3f9a2c --follow',
        'flyte get logs brisk-otter-3f9a2c a0 -o json',
      ),
    )
    .action(async (run: string, action: string | undefined, _opts, cmd: Command) =>
      (await getCommands()).getLogsCommand(run, action, cmd.optsWithGlobals(), io),
    );

  // flyte abort run
  const abort = withConfigOptions(program.command('abort').description('abort a running run or action')).addHelpText(
    'after',
    examples('flyte abort run brisk-otter-3f9a2c', 'flyte abort action brisk-otter-3f9a2c a3f09c1d2e4b5a6c7'),
  );
  withConfigOptions(
    abort
      .command('run')
      .description('abort a run: its root and every running action end as aborted')
      .argument('<name>', 'the run name')
      .option('--reason <text>', 'why, recorded with the abort'),
  )
    .addHelpText('after', examples('flyte abort run brisk-otter-3f9a2c --reason "wrong input"'))
    .action(async (name: string, _opts, cmd: Command) =>
      (await import('./abort-command.js')).abortRunCommand(name, cmd.optsWithGlobals(), io),
    );
  // flyte abort action
  withConfigOptions(
    abort
      .command('action')
      .description('abort one action of a running run: it and its running descendants end as aborted')
      .argument('<run>', 'the run name')
      .argument('<action>', 'the action name (see `flyte get run RUN`)')
      .option('--reason <text>', 'why, recorded with the abort'),
  )
    .addHelpText('after', examples('flyte abort action brisk-otter-3f9a2c a3f09c1d2e4b5a6c7 --reason "stuck"'))
    .action(async (run: string, action: string, _opts, cmd: Command) =>
      (await import('./abort-command.js')).abortActionCommand(run, action, cmd.optsWithGlobals(), io),
    );

  // flyte rerun
  withConfigOptions(
    program
      .command('rerun')
      .description("run a past run's root task again with its recorded inputs, and follow it")
      .argument('<name>', 'the past run')
      .option('--recover', 'reuse the children that already succeeded instead of running them again')
      .option('--name <name>', 'name of the new run')
      .option('--json', 'print one JSON document at the end instead of the live view'),
  )
    .addHelpText('after', examples('flyte rerun brisk-otter-3f9a2c --recover'))
    .action(async (name: string, _opts, cmd: Command) => {
      state.code = await (await import('./rerun-command.js')).rerunCommand(name, cmd.optsWithGlobals(), io);
    });

  // flyte delete local-cache
  const del = withConfigOptions(program.command('delete').description('delete local state')).addHelpText(
    'after',
    examples('flyte delete local-cache'),
  );
  withConfigOptions(
    del.command('local-cache').description('delete every cached task output (runs and their records stay)'),
  )
    .addHelpText('after', examples('flyte delete local-cache'))
    .action(async (_opts, cmd: Command) =>
      (await import('./delete-command.js')).deleteLocalCacheCommand(cmd.optsWithGlobals(), io),
    );

  // flyte worker
  withConfigOptions(
    program
      .command('worker')
      .description('run the actions of remote runs, taken from the engine, for the tasks of the given modules')
      .option('--module <file...>', 'the modules (.ts or .js) that define the tasks this worker runs')
      .option('--env <name...>', 'only the queues of these task environments (default: all of the modules)')
      .option('--concurrency <n>', 'at most this many busy actions; a parent waiting on children does not count')
      .option(
        '--grace <ms>',
        'on SIGTERM / Ctrl-C, how long running actions get to finish before they are handed back',
        '30000',
      )
      .option(
        '--sweep-ms <ms>',
        'how often to look for unfinished actions whose job vanished from Redis, and enqueue them again ' +
          '(one worker sweeps at a time; Postgres store only; default 15000)',
      )
      .option(
        '--lock-ms <ms>',
        "how long a job's lock holds without renewal: a dead worker's actions are taken over after it; an event " +
          'loop blocked longer than it causes a false takeover',
        '30000',
      )
      .option(
        '--stalled-interval-ms <ms>',
        'how often expired locks are looked for (default: half of --lock-ms); takeover takes up to lock + this',
      )
      .option(
        '--max-takeovers <n>',
        'takeovers of one action (its worker died or lost its lock) after which it fails with WorkerLostError',
        '5',
      ),
  )
    .addHelpText(
      'after',
      examples(
        'flyte worker --module pipeline.ts --store postgres://127.0.0.1/flyte --engine redis://127.0.0.1:6379',
        'FLYTE_STORE=postgres://… FLYTE_ENGINE=redis://… flyte worker --module a.ts --module b.ts --concurrency 8',
      ) + '\nSIGTERM or Ctrl-C drains the worker (exit 0); a second signal exits at once.\n',
    )
    .action(async (_opts, cmd: Command) => {
      state.code = await (await import('./worker-command.js')).workerCommand(cmd.optsWithGlobals(), io);
    });

  // flyte ui
  registerUiCommand(program, io, withConfigOptions);

  return program;
}

/** What Commander writes to stderr (help after a usage error, its hint): as it is, or as one JSON line. */
function writeErr(io: CliIo, text: string): void {
  if (io.log.format === 'json') io.log.info(text.trimEnd());
  else io.stderr.write(text);
}

/**
 * Runs the command line `argv` (without `node` and the script) and resolves to the exit code. Errors are
 * printed here: usage errors with a pointer to `--help` (exit 2), command errors as they are (exit 1).
 * Without `io`, the process's streams in the log format of `FLYTE_LOG_FORMAT` and `FLYTE_LOG_LEVEL`; a value
 * of theirs that is neither is bad usage.
 */
export async function main(argv: readonly string[], io?: CliIo): Promise<ExitCodeValue> {
  if (io === undefined) {
    try {
      io = processIo(logSettingsFromEnv(process.env));
    } catch (err) {
      io = processIo();
      io.log.error((err as Error).message);
      return ExitCode.usage;
    }
    if (io.log.format === 'json') warningsAsLogLines(io.log);
  }
  setLog(io.log);
  const state: { code: ExitCodeValue } = { code: ExitCode.ok };
  const program = createProgram(io, state);
  try {
    if (argv.length === 0) {
      writeErr(io, program.helpInformation());
      return ExitCode.usage;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander printed its message (or the help / version) already.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof UsageError || err instanceof CommandError) {
      io.log.error(err.message);
      return err.exitCode;
    }
    if (io.log.format === 'json') {
      io.log.error(`unexpected error: ${err instanceof Error ? err.message : String(err)}`, {
        ...(err instanceof Error ? { stack: err.stack } : {}),
      });
    } else {
      io.error(
        `${io.err.red('flyte: unexpected error:')} ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    }
    return ExitCode.failed;
  } finally {
    // Commit what the command wrote and release the store; a failure here must not hide the command's result.
    await shutdown().catch((err: unknown) => io.log.error(`closing the run store failed: ${String(err)}`));
  }
}

/**
 * Process warnings (the engine's and the sweeper's, Node's own, a task's) as JSON log lines of level warn, with
 * the run and action of the task that warned, instead of Node's `(node:PID) Warning: ...` text: Node prints them
 * through a listener of its own, which is replaced.
 */
function warningsAsLogLines(log: Logger): void {
  for (const listener of process.listeners('warning')) process.off('warning', listener);
  process.on('warning', (w: Error & { code?: string }) => {
    // Emitted on a later tick of the code that warned: inside a task body, the frame says which action it was.
    const frame = currentFrame();
    log.warn(w.message, {
      ...(frame === undefined ? {} : { run: frame.action.runName, action: frame.action.name }),
      warning: w.name,
      ...(w.code === undefined ? {} : { code: w.code }),
    });
  });
}

/** Whether this module is the process's entry point (also through npm's `.bin/flyte` symlink). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    // The script path cannot be resolved (deleted, or not a file): this module was imported, not run.
    return false;
  }
}

if (isEntryPoint()) {
  const code = await main(process.argv.slice(2));
  // Exit now: the user's module may have left timers or handles behind, and every record is committed.
  process.exit(code);
}
