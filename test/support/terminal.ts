/**
 * A real pseudo-terminal for the live-view tests: the built `flyte` runs inside a tmux session (one tmux server
 * per {@link Terminals}), and the screen is read with `tmux capture-pane`.
 *
 * tmux must be installed (Debian package `tmux`); without it the tests that need it fail under CI=true and are
 * skipped elsewhere ({@link tmuxSkip}).
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, REPO } from './cli.js';

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What to pass as `skip`: `false` with tmux, a message without it; under CI=true a missing tmux throws. */
export function tmuxSkip(): string | false {
  if (hasTmux()) return false;
  if (process.env.CI === 'true') {
    throw new Error('tmux is not installed: the live-view tests need it (apt-get install -y tmux)');
  }
  return 'tmux is not installed';
}

/** A shell word. */
function sh(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** One tmux session running one `flyte` command. */
export interface Terminal {
  readonly session: string;
  screen(): string;
  keys(...keys: string[]): void;
  /** Waits until the screen matches, returning it. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

let servers = 0;

/** The sessions of one tmux server, whose commands get the environment `env()`. */
export class Terminals {
  readonly #socket = `flyte-cli-test-${process.pid}-${++servers}`;
  #sessions = 0;

  constructor(readonly env: () => NodeJS.ProcessEnv) {}

  #tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.#socket, '-f', '/dev/null', ...args], {
      encoding: 'utf8',
      env: this.env(),
    });
  }

  /** Starts `flyte ...args` in a new 120×40 session; the shell prints `[exit N]` when it ends. */
  start(args: readonly string[]): Terminal {
    const session = `s${++this.#sessions}`;
    const command = `cd ${sh(REPO)} && ${sh(process.execPath)} ${sh(BIN)} ${args.map(sh).join(' ')}; echo "[exit $?]"; sleep 60`;
    this.#tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', command);
    const screen = (): string => this.#tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-');
    return {
      session,
      screen,
      keys: (...keys) => void this.#tmux('send-keys', '-t', session, ...keys),
      async waitFor(pattern, timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const text = screen();
          if (pattern.test(text)) return text;
          if (Date.now() > deadline) throw new Error(`the screen never matched ${String(pattern)}; it shows:\n${text}`);
          await sleep(50);
        }
      },
    };
  }

  /** Ends the server and every session. */
  close(): void {
    try {
      this.#tmux('kill-server');
    } catch {
      // No server was started (every test was skipped) or it is gone already.
    }
  }
}
