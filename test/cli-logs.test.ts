/**
 * `flyte get logs RUN [--all] [--follow]`, end to end through the built binary: every action's lines of a run,
 * merged in write order and prefixed with the action's display name, as a table and as JSON, and followed live
 * while the run goes on in another process, until it ends.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import {
  collect,
  ensureBuilt,
  exits,
  FIXTURES,
  parseJson,
  runCli,
  spawnCli,
  tempDir,
  waitForOutput,
  type CliResult,
} from './support/cli.js';

const GATED = join(FIXTURES, 'gated.ts');

/** A line of `flyte get logs -o json`. */
interface JsonLine {
  seq: number;
  actionName: string;
  displayName: string;
  itemIndex: number | null;
  attempt: number;
  at: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

let root: string;
before(() => {
  ensureBuilt();
  root = tempDir();
});
const cli = (...args: string[]): Promise<CliResult> => runCli(args, { root });

describe('flyte get logs RUN --all', { concurrency: 2 }, () => {
  let name: string;
  before(async () => {
    const gate = join(root, 'gate-open');
    writeFileSync(gate, '');
    const r = await cli('run', GATED, 'loggedMap', '--gate', gate, '--n', '3');
    exits(r, 0);
    name = /^run (\S+)/m.exec(r.stdout)?.[1] ?? '';
    assert.ok(name, r.stdout);
  });

  it("prints every action's lines in write order, each prefixed with its display name and hash name", async () => {
    const all = await cli('get', 'logs', name, '--all');
    exits(all, 0);
    const lines = all.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 8, all.stdout);
    assert.match(lines[0] ?? '', /^\d\d:\d\d:\d\d\.\d{3} loggedMap +a0 +#1 root start$/);
    assert.match(lines[7] ?? '', /^\d\d:\d\d:\d\d\.\d{3} loggedMap +a0 +#1 root done$/);
    for (const i of [0, 1, 2]) {
      assert.match(all.stdout, new RegExp(`^\\S+ loggedItem #${i} +[0-9a-z]+ +#1 item ${i} waiting$`, 'm'));
      assert.match(all.stdout, new RegExp(`^\\S+ loggedItem #${i} +[0-9a-z]+ +#1 item ${i} done$`, 'm'));
    }
    // RUN alone shows the same (what it showed before --all existed: the whole run).
    const bare = await cli('get', 'logs', name);
    exits(bare, 0);
    assert.equal(bare.stdout, all.stdout);
  });

  it('--output json gives the lines as one array, with seq, displayName and itemIndex', async () => {
    const lines = parseJson<JsonLine[]>(await cli('get', 'logs', name, '--all', '-o', 'json'));
    assert.equal(lines.length, 8);
    assert.equal(lines[0]?.displayName, 'loggedMap');
    assert.equal(lines[7]?.displayName, 'loggedMap');
    // Each item's lines carry its index, in its display name too.
    for (const l of lines.slice(1, 7)) {
      const i = Number(/^item (\d)/.exec(l.line)?.[1]);
      assert.equal(l.itemIndex, i, l.line);
      assert.equal(l.displayName, `loggedItem #${i}`);
    }
    assert.ok(
      lines.every((l, i) => i === 0 || l.seq > (lines[i - 1]?.seq ?? Infinity)),
      'seq rises',
    );
    assert.equal(lines.filter((l) => l.stream === 'stderr').length, 3);
    assert.equal(lines[0]?.actionName, 'a0');
    assert.equal(lines[0]?.itemIndex, null);
  });

  it('refuses --all or --follow with an ACTION: exit 2 saying why', async () => {
    const [all, follow] = await Promise.all([
      cli('get', 'logs', name, 'a0', '--all'),
      cli('get', 'logs', name, 'a0', '--follow'),
    ]);
    exits(all, 2);
    assert.match(all.stderr, /--all: shows every action of the run, so takes no ACTION; received 'a0'/);
    exits(follow, 2);
    assert.match(follow.stderr, /--follow: follows the whole run .*received an ACTION too \('a0'\)/);
  });
});

describe('flyte get logs RUN --follow', () => {
  it('prints lines as a run in another process writes them, and exits when it ends', async () => {
    const gate = join(root, 'gate-follow');
    const run = spawnCli(['run', GATED, 'loggedMap', '--gate', gate, '--n', '3'], { root });
    const ran = collect(run);
    const [, name] = await waitForOutput(run, /^run (\S+)$/m);
    assert.ok(name);
    const follow = spawnCli(['get', 'logs', name, '--follow'], { root });
    const followed = collect(follow);
    const json = spawnCli(['get', 'logs', name, '--follow', '-o', 'json'], { root });
    const jsonFollowed = collect(json);
    try {
      // The three items are waiting: their first lines are there, the run still goes on.
      await Promise.all([
        waitForOutput(follow, /(item \d waiting[\s\S]*){3}/),
        waitForOutput(json, /("item \d waiting"[\s\S]*){3}/),
      ]);
      assert.equal(follow.exitCode, null, 'still following');
      assert.equal(json.exitCode, null, 'still following');
    } finally {
      writeFileSync(gate, ''); // the run ends, whatever happened: no process is left waiting
    }
    const [r, f, j] = await Promise.all([ran, followed, jsonFollowed]);
    exits(r, 0);
    exits(f, 0);
    const lines = f.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 8, f.stdout);
    assert.match(lines[0] ?? '', / root start$/);
    assert.match(lines[7] ?? '', / root done$/);
    for (const i of [0, 1, 2]) assert.equal(f.stdout.match(new RegExp(`item ${i} done`, 'g'))?.length, 1);
    // The same lines as the finished run shows.
    assert.equal(f.stdout, (await cli('get', 'logs', name)).stdout);
    // JSON Lines: one object per line, in seq order.
    exits(j, 0);
    const objects = j.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as JsonLine);
    assert.equal(objects.length, 8);
    assert.deepEqual(
      objects.map((o) => o.line),
      parseJson<JsonLine[]>(await cli('get', 'logs', name, '-o', 'json')).map((o) => o.line),
    );
  });

  it('a run that has ended: prints its lines and exits at once', async () => {
    const gate = join(root, 'gate-done');
    writeFileSync(gate, '');
    const r = await cli('run', GATED, 'loggedMap', '--gate', gate, '--n', '1');
    const name = /^run (\S+)/m.exec(r.stdout)?.[1] ?? '';
    const f = await cli('get', 'logs', name, '--follow');
    exits(f, 0);
    assert.equal(f.stdout.trimEnd().split('\n').length, 4);
  });
});
