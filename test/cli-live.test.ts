/**
 * The live view of `flyte run`, exercised on a real pseudo-terminal: the built binary runs inside a tmux session
 * (its own tmux server per test file), and the screen is read with `tmux capture-pane` (`support/terminal.ts`).
 *
 * tmux must be installed (Debian package `tmux`); without it these tests fail under CI=true and are skipped
 * elsewhere.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FIXTURES, TASKS, cliEnv, ensureBuilt, tempDir } from './support/cli.js';
import { Terminals, tmuxSkip, type Terminal } from './support/terminal.js';
import { rootEnv } from './support/test-store.js';

const GATED = join(FIXTURES, 'gated.ts');

const skip = tmuxSkip();
let root: string;
const terminals = new Terminals(() => cliEnv({ NO_COLOR: undefined, ...rootEnv(root) }));
const startInTerminal = (args: readonly string[]): Terminal => terminals.start(args);

describe('flyte run: the live view on a terminal', { skip }, () => {
  before(() => {
    ensureBuilt();
    root = tempDir();
  });
  after(() => terminals.close());

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

  it("shows a running fan-out's ETA from its completion rate, growing while it stalls; none in the final frame", async () => {
    // 4 of 10 items end at once, the other 6 wait for the gate: 4 done in the fold's time so far, 6 to go.
    const gate = join(root, 'gate-eta');
    const term = startInTerminal(['run', GATED, 'stagedMap', '--gate', gate, '--n', '10', '--free', '4']);
    const line =
      /cli_gated\.stagedItem_map +\S+ {2}4\/10 done {2}6 running {2}0 failed {2}0 cached {2}ETA (\d+)s {2}(\d+\.\d)s$/m;
    const shown = (screen: string): { eta: number; elapsedS: number } => {
      const m = line.exec(screen) ?? assert.fail(`no fan-out line with an ETA in:\n${screen}`);
      return { eta: Number(m[1]), elapsedS: Number(m[2]) };
    };
    // No ETA in the first second (too little is known); then one.
    const first = shown(await term.waitFor(line));
    assert.ok(first.elapsedS >= 1, `an ETA after ${first.elapsedS}s`);
    // At the rate so far (4 in the time shown), 6 items take 1.5 times as long: the ETA rounds up to a second.
    assert.ok(Math.abs(first.eta - 1.5 * first.elapsedS) <= 1.1, `ETA ${first.eta}s after ${first.elapsedS}s`);
    // Nothing completes while the gate is shut: the estimate grows, it does not freeze.
    const later = shown(await term.waitFor(new RegExp(`ETA (?!${first.eta}s)\\d+s`)));
    assert.ok(later.eta > first.eta, `ETA ${later.eta}s after ${first.eta}s`);
    writeFileSync(gate, '');
    const screen = await term.waitFor(/\[exit \d+\]/);
    assert.match(screen, /\[exit 0\]/);
    assert.match(
      screen,
      /^└─ ✓ cli_gated\.stagedItem_map +█{20} {2}10\/10 done {2}0 running {2}0 failed {2}0 cached {2}\S+$/m,
    );
    assert.doesNotMatch(screen, /ETA/, 'the final frame has no ETA');
    assert.match(screen, /^outputs: 10$/m);
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
