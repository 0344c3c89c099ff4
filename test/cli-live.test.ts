/**
 * The live view of `flyte run`, exercised on a real pseudo-terminal: the built binary runs inside a tmux session
 * (its own tmux server per test file), and the screen is read with `tmux capture-pane`.
 *
 * tmux must be installed (Debian package `tmux`); without it these tests fail under CI=true and are skipped
 * elsewhere.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, FIXTURES, REPO, TASKS, cliEnv, ensureBuilt, tempDir } from './support/cli.js';
import { rootEnv } from './support/test-store.js';

const GATED = join(FIXTURES, 'gated.ts');

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const tmuxMissing = !hasTmux();
if (tmuxMissing && process.env.CI === 'true') {
  throw new Error('tmux is not installed: the live-view tests need it (apt-get install -y tmux)');
}

const SOCKET = `flyte-cli-test-${process.pid}`;
let root: string;
let sessions = 0;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], {
    encoding: 'utf8',
    env: cliEnv({ NO_COLOR: undefined, ...rootEnv(root) }),
  });
}

/** A shell word. */
function sh(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

interface Terminal {
  readonly session: string;
  screen(): string;
  keys(...keys: string[]): void;
  /** Waits until the screen matches, returning it. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Starts `flyte ...args` in a new 120×40 tmux session; the shell prints `[exit N]` when it ends. */
function startInTerminal(args: readonly string[]): Terminal {
  const session = `s${++sessions}`;
  const command = `cd ${sh(REPO)} && ${sh(process.execPath)} ${sh(BIN)} ${args.map(sh).join(' ')}; echo "[exit $?]"; sleep 60`;
  tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', command);
  const screen = (): string => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-');
  return {
    session,
    screen,
    keys: (...keys) => void tmux('send-keys', '-t', session, ...keys),
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

describe('flyte run: the live view on a terminal', { skip: tmuxMissing ? 'tmux is not installed' : false }, () => {
  before(() => {
    ensureBuilt();
    root = tempDir();
  });
  after(() => {
    try {
      tmux('kill-server');
    } catch {
      // No server was started (every test was skipped) or it is gone already.
    }
  });

  it('redraws the tree while a fan-out runs, folded into one line, and leaves the final frame and outputs', async () => {
    // Every item waits for the gate: the test sees the fan-out running, then lets it end.
    const gate = join(root, 'gate-fanout');
    const term = startInTerminal(['run', GATED, 'heldMap', '--gate', gate, '--n', '60', '--lines', '0']);
    // While it runs: one line for the whole map, with a spinner, no item done and every item running.
    const during = await term.waitFor(/cli_gated\.heldItem_map +\S+ +0\/60 done {2}60 running/);
    assert.match(during, /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] run \S+ {2}running/m);
    writeFileSync(gate, '');
    const screen = await term.waitFor(/\[exit \d+\]/);
    assert.match(screen, /\[exit 0\]/);
    const name = /^run (\S+)$/m.exec(screen)?.[1];
    assert.ok(name, screen);
    assert.match(screen, new RegExp(`^url http://127\\.0\\.0\\.1:8080/runs/${name}$`, 'm'));
    // The final frame, from the store.
    assert.match(
      screen,
      new RegExp(
        `^✓ run ${name} {2}succeeded {2}\\S+ {2}61 actions: 61/61 done {2}0 running {2}0 failed {2}0 cached$`,
        'm',
      ),
    );
    assert.match(screen, /^✓ heldMap a0 +\S+$/m);
    assert.match(
      screen,
      /^└─ ✓ cli_gated\.heldItem_map +█{20} {2}60\/60 done {2}0 running {2}0 failed {2}0 cached {2}\S+$/m,
    );
    assert.equal(screen.match(/heldItem_map/g)?.length, 1, 'the final frame is drawn once, not once per redraw');
    assert.match(screen, new RegExp(`^✓ ${name} succeeded in \\S+$`, 'm'));
    assert.match(screen, /^outputs: 70210$/m);
  });

  it("keeps the root's last log lines under the final frame, and says where the rest are", async () => {
    const gate = join(root, 'gate-logs');
    const term = startInTerminal(['run', GATED, 'heldMap', '--gate', gate, '--n', '2', '--lines', '25']);
    // While it runs, the footer shows the last five lines.
    const during = await term.waitFor(/a0 │ root line 25 of 25$/m);
    assert.match(during, /a0 │ root line 21 of 25$/m);
    assert.doesNotMatch(during, /root line 20 of 25/);
    writeFileSync(gate, '');
    const screen = await term.waitFor(/\[exit \d+\]/);
    assert.match(screen, /\[exit 0\]/);
    const name = /^run (\S+)$/m.exec(screen)?.[1];
    assert.ok(name, screen);
    // Under the final frame: the last 20 of the root's 26 lines (25 and 'root done'), then the pointer.
    const shown = Array.from({ length: 19 }, (_, i) => `  root line ${i + 7} of 25`);
    const block = [
      'logs of a0 (the last 20 of 26 lines):',
      ...shown,
      '  root done',
      `all of them: flyte get logs ${name} a0`,
    ];
    assert.ok(screen.includes(`\n${block.join('\n')}\n`), `no block of the root's logs in:\n${screen}`);
    assert.doesNotMatch(screen, /root line 6 of 25/);
  });

  it('shows groups, ungrouped fan-outs and single actions, each with its duration', async () => {
    const term = startInTerminal(['run', TASKS, 'pipeline', '4']);
    const screen = await term.waitFor(/\[exit \d+\]/);
    assert.match(screen, /\[exit 0\]/);
    assert.match(screen, /^✓ pipeline a0 +\d+ms$/m);
    assert.match(screen, /^├─ ✓ double [0-9a-z]+ +\d+ms$/m);
    assert.match(screen, /^├─ ✓ prepare +█{20} {2}3\/3 done/m);
    assert.match(screen, /^├─ ✓ cli_fixture\.square_map +█{20} {2}4\/4 done/m);
    assert.match(screen, /^└─ ✓ sleepy ×6 +█{20} {2}6\/6 done/m);
  });

  it('shows retries, and a failed run with the failing action; exit 1', async () => {
    const retried = startInTerminal(['run', TASKS, 'flaky', '2']);
    const ok = await retried.waitFor(/\[exit \d+\]/);
    assert.match(ok, /^✓ flaky a0 +\d+ms {2}attempt 3$/m);
    const failing = startInTerminal(['run', TASKS, 'boom', '--message', 'on screen']);
    const screen = await failing.waitFor(/\[exit \d+\]/);
    assert.match(screen, /\[exit 1\]/);
    assert.match(screen, /^✗ run \S+ {2}failed/m);
    assert.match(screen, /^└─ ✗ explode [0-9a-z]+ +\d+ms {2}ValueError: cannot handle on screen$/m);
    assert.match(screen, /^error in action [0-9a-z]+ \(explode\): ValueError: cannot handle on screen$/m);
  });

  it('Ctrl-C aborts the run (shown as aborted, exit 130)', async () => {
    const term = startInTerminal(['run', TASKS, 'sleepy', '--ms', '30000']);
    await term.waitFor(/^. run \S+ {2}running/m);
    term.keys('C-c');
    const screen = await term.waitFor(/\[exit \d+\]/);
    assert.match(screen, /\[exit 130\]/);
    assert.match(screen, /^⊘ run \S+ {2}aborted/m);
    assert.match(screen, /^⊘ sleepy a0 +\S+ {2}ActionAbortedError: run \S+ was aborted: interrupted \(Ctrl-C\)/m);
  });
});
