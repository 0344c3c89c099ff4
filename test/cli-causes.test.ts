/**
 * `flyte get run` on a fan-out with failures, through the built binary: the causes printed under the fan-out
 * (and in `--output json`), map members shown as `task #i`, and `--failed` / `--grep TEXT` listing the
 * matching members a page at a time.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ensureBuilt, exits, FIXTURES, parseJson, runCli, tempDir, type CliResult } from './support/cli.js';

const CAUSES = join(FIXTURES, 'causes.ts');

describe('flyte get run: causes and search', { timeout: 120_000 }, () => {
  let root: string;
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { root });
  const run = 'crawl-200';

  before(async () => {
    ensureBuilt();
    root = tempDir();
    // 200 items: 20 × HTTP 503, 8 × HTTP 404 (minus overlaps), 4 × a missing file.
    exits(await cli('run', '--name', run, CAUSES, 'crawl', '--n', '200'), 0);
  });

  it('prints the causes under the fan-out, largest first, with an example', async () => {
    const r = await cli('get', 'run', run);
    exits(r, 0);
    const lines = r.stdout.split('\n');
    const fold = lines.findIndex((l) => l.includes('causes_fixture.fetchItem_map'));
    assert.ok(fold >= 0, r.stdout);
    const under = lines.slice(fold + 1, fold + 4).map((l) => l.trim());
    assert.match(under[0] ?? '', /^20 × HTTP 503 for item <n>\s+Error\s+e\.g\. fetchItem #1 \S+$/);
    assert.match(under[1] ?? '', /^8 × HTTP 404 for item <n>\s+Error\s+e\.g\. fetchItem #2 \S+$/);
    assert.match(under[2] ?? '', /^4 × no such file <path>\s+TypeError\s+e\.g\. fetchItem #3 \S+$/);
    assert.doesNotMatch(r.stdout, /first failure/);
  });

  it('gives each fan-out its causes in --output json', async () => {
    const out = parseJson<{ tree: { children: { kind: string; label: string; causes: unknown[] }[] } }>(
      await cli('get', 'run', run, '-o', 'json'),
    );
    const fold = out.tree.children.find((n) => n.kind === 'fold');
    assert.ok(fold !== undefined);
    const causes = fold.causes as { code: string; pattern: string; count: number; example: string }[];
    assert.deepEqual(
      causes.map(({ code, pattern, count }) => [code, pattern, count]),
      [
        ['Error', 'HTTP 503 for item <n>', 20],
        ['Error', 'HTTP 404 for item <n>', 8],
        ['TypeError', 'no such file <path>', 4],
      ],
    );
    assert.deepEqual(Object.keys(causes[0] ?? {}), ['code', 'pattern', 'count', 'example']);
    const example = parseJson<{ action: { itemIndex: number; phase: string } }>(
      await cli('get', 'action', run, causes[0]?.example ?? '', '-o', 'json'),
    );
    assert.deepEqual([example.action.itemIndex, example.action.phase], [1, 'failed']);
  });

  it('--failed lists the failed members as task #i with their hash and error, paged', async () => {
    const first = await cli('get', 'run', run, '--failed', '--limit', '5');
    exits(first, 0);
    const rows = first.stdout.split('\n').filter((l) => l.startsWith('fetchItem #'));
    assert.equal(rows.length, 5);
    assert.match(rows[0] ?? '', /^fetchItem #1\s+\S+\s+failed\s+.*Error: HTTP 503 for item 1$/);
    assert.match(first.stdout, /actions 1–5 failed; next page: --offset 5/);
    const json = parseJson<{ actions: { itemIndex: number; displayName: string }[]; more: boolean }>(
      await cli('get', 'run', run, '--failed', '--offset', '30', '-o', 'json'),
    );
    assert.deepEqual(
      json.actions.map((a) => a.displayName),
      ['fetchItem #181', 'fetchItem #191'],
    );
    assert.equal(json.more, false);
  });

  it('--grep finds text in inputs or error messages, ignoring case; with --failed both must match', async () => {
    const byError = parseJson<{ actions: { itemIndex: number }[] }>(
      await cli('get', 'run', run, '--grep', 'http 404', '-o', 'json'),
    );
    assert.deepEqual(
      byError.actions.map((a) => a.itemIndex),
      [2, 27, 52, 77, 102, 127, 152, 177],
    );
    const byInput = parseJson<{ actions: { itemIndex: number | null }[] }>(
      await cli('get', 'run', run, '--grep', 'EXAMPLE.com', '--limit', '3', '-o', 'json'),
    );
    assert.deepEqual(
      byInput.actions.map((a) => a.itemIndex),
      [0, 1, 2],
    );
    const both = await cli('get', 'run', run, '--failed', '--grep', 'no such file');
    exits(both, 0);
    assert.deepEqual(
      both.stdout
        .split('\n')
        .filter((l) => l.startsWith('fetchItem #'))
        .map((l) => l.split(/\s{2,}/)[0]),
      ['fetchItem #3', 'fetchItem #53', 'fetchItem #103', 'fetchItem #153'],
    );
    const none = await cli('get', 'run', run, '--grep', 'nothing like this');
    exits(none, 0);
    assert.match(none.stdout, /no actions matching 'nothing like this' in run crawl-200/);
  });

  it('names a map item as task #i in flyte get action, and lists it after the run it failed', async () => {
    const strict = await cli('run', '--name', 'crawl-strict', CAUSES, 'crawlStrict', '--n', '5');
    assert.notEqual(strict.code, 0);
    const failed = parseJson<{ actions: { name: string; itemIndex: number | null; displayName: string }[] }>(
      await cli('get', 'run', 'crawl-strict', '--failed', '-o', 'json'),
    );
    assert.deepEqual(
      failed.actions.map((a) => [a.itemIndex, a.displayName]),
      [
        [null, 'crawlStrict'],
        [1, 'fetchItem #1'],
      ],
    );
    const action = await cli('get', 'action', 'crawl-strict', failed.actions[1]?.name ?? '');
    assert.match(action.stdout, /^item +#1 of its map \(fetchItem #1\)$/m);
  });

  it('refuses bad paging flags, saying what it expected', async () => {
    const bad = await cli('get', 'run', run, '--failed', '--limit', '0');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--limit: expected a positive integer; received '0'/);
    const alone = await cli('get', 'run', run, '--offset', '5');
    assert.notEqual(alone.code, 0);
    assert.match(alone.stderr, /--limit and --offset page the actions listed by --failed or --grep/);
  });
});
