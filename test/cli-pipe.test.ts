/**
 * `flyte run … | head -2`: the reader of stdout goes away while the run goes on. The built binary is spawned with
 * its stdout on a pipe that the test closes after two lines, while the run is held by a file gate; then the gate
 * opens and the run must end as recorded, with the run's exit code, instead of dying of EPIPE and leaving the
 * run orphaned.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { FIXTURES, ensureBuilt, parseJson, runCli, spawnCli, tempDir } from './support/cli.js';

const GATED = join(FIXTURES, 'gated.ts');

describe('flyte run with a stdout whose reader goes away', () => {
  let root: string;
  before(() => {
    ensureBuilt();
    root = tempDir();
  });

  it('goes on to the end of the run, recorded as succeeded, exit 0, with a note on stderr', async () => {
    const gate = join(root, 'gate-pipe');
    // The run logs a line every 20 ms until the gate opens: in a pipe, each goes to stdout.
    const child = spawnCli(['run', GATED, 'talkUntil', '--gate', gate], { root });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const noted = new Promise<void>((resolve) => {
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (stderr.includes('stdout was closed')) resolve();
      });
    });

    // Like `head -2`: read two lines, then close the pipe.
    let seen = '';
    await new Promise<void>((resolve) => {
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        seen += d;
        if (/^url .*$/m.test(seen)) resolve();
      });
    });
    child.stdout?.destroy();
    const name = /^run (\S+)$/m.exec(seen)?.[1];
    assert.ok(name, seen);
    // The next log line finds the pipe closed: the command says so (or, as it did, dies of EPIPE).
    await Promise.race([noted, exited]);
    writeFileSync(gate, '');

    const code = await exited;
    assert.equal(code, 0, `exit ${String(code)}; stderr:\n${stderr}`);
    assert.match(
      stderr,
      new RegExp(`^flyte: stdout was closed: ${name} goes on to its end without printing more`, 'm'),
    );
    assert.doesNotMatch(stderr, /EPIPE|unexpected error/);
    const record = parseJson<{ run: { phase: string } }>(await runCli(['get', 'run', name, '-o', 'json'], { root }));
    assert.equal(record.run.phase, 'succeeded');
    const io = parseJson<{ outputs: unknown }>(await runCli(['get', 'io', name, '-o', 'json'], { root }));
    assert.equal(typeof io.outputs, 'number');
  });
});
