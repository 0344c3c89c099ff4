/**
 * `flyte ui`: the command registered on a commander program, its flags, and serving until stopped.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Command } from 'commander';
import pc from 'picocolors';
import * as flyte from 'flyte-ts';
import { UsageError } from '../src/cli/errors.js';
import type { CliIo } from '../src/cli/io.js';
import { Logger } from '../src/internal/log.js';
import { registerUiCommand, uiCommand } from '../src/cli/ui-command.js';
import { tempRoot } from './support/ui.js';
import { storeOfRoot, storeShown } from './support/test-store.js';

const env = new flyte.TaskEnvironment({ name: 'ui_command_test' });
const one = env.task(async function one() {
  return 1;
});

function captureIo(): CliIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  const colors = pc.createColors(false);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    out: colors,
    err: colors,
    print: (text) => void lines.push(text),
    error: (text) => void errors.push(text),
    log: new Logger({ write: (text) => void errors.push(text) }),
    results: new Logger({ write: (text) => void lines.push(text) }),
    lines,
    errors,
  };
}

describe('flyte ui', () => {
  const root = tempRoot();
  const where = { root: root.path, store: storeOfRoot(root.path) };
  after(async () => {
    await flyte.shutdown();
    root.dispose();
  });

  it('registers `ui` with its flags on a program', () => {
    const program = new Command('flyte');
    registerUiCommand(program, captureIo(), (cmd) => cmd.option('--root <dir>'));
    const ui = program.commands.find((c) => c.name() === 'ui');
    assert.ok(ui);
    assert.deepEqual(
      ui.options.map((o) => o.long),
      ['--port', '--host', '--token', '--root'],
    );
    assert.equal(ui.getOptionValue('port'), '8080');
    assert.equal(ui.getOptionValue('host'), '127.0.0.1');
  });

  /** Starts `flyte ui --port 0` over the test's root; resolves once it printed its address. */
  async function serve(): Promise<{ io: ReturnType<typeof captureIo>; url: string; stop: () => Promise<void> }> {
    const io = captureIo();
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const serving = uiCommand({ ...where, port: '0' }, io, stopped);
    while (io.lines.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    return { io, url: (io.lines[1] ?? '').trim(), stop: () => (stop(), serving) };
  }

  it('serves the store of --root until stopped, and prints its address', async () => {
    const { io, url, stop } = await serve();
    assert.match(io.lines[0] ?? '', new RegExp(`flyte ui: serving ${storeShown(root.path)}`));
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const reply = await fetch(`${url}/api/runs`);
    assert.equal(reply.status, 200);
    assert.deepEqual(((await reply.json()) as { runs: unknown[] }).runs, []);
    await stop();
    await assert.rejects(fetch(`${url}/api/runs`));
  });

  it('links the runs it starts (Rerun, Recover) to its own address, not the default port', async () => {
    const { url, stop } = await serve();
    const run = await flyte.run(one);
    assert.equal(run.url, `${url}/runs/${run.name}`);
    await run.wait();
    await stop();
  });

  it('refuses a bad port, and a host beyond loopback without a token', async () => {
    const saved = process.env.FLYTE_UI_TOKEN;
    delete process.env.FLYTE_UI_TOKEN;
    try {
      await assert.rejects(uiCommand({ ...where, port: 'http' }, captureIo(), Promise.resolve()), UsageError);
      await assert.rejects(uiCommand({ ...where, port: '70000' }, captureIo(), Promise.resolve()), UsageError);
      await assert.rejects(
        uiCommand({ ...where, port: '0', host: '0.0.0.0' }, captureIo(), Promise.resolve()),
        (err: Error) => err instanceof UsageError && /set a token with --token or FLYTE_UI_TOKEN/.test(err.message),
      );
    } finally {
      if (saved !== undefined) process.env.FLYTE_UI_TOKEN = saved;
    }
  });

  it('prints the address with the token when exposed', async () => {
    const io = captureIo();
    await uiCommand(
      { ...where, port: '0', host: '0.0.0.0', token: 'cli-token-0123456789abcdef' },
      io,
      Promise.resolve(),
    );
    assert.match(io.lines[1] ?? '', /http:\/\/127\.0\.0\.1:\d+\/\?token=cli-token-0123456789abcdef/);
    assert.match(io.lines.join('\n'), /listening on 0\.0\.0\.0:\d+; every request needs the token/);
  });
});
