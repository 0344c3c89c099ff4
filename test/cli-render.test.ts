/**
 * The pieces of the CLI that need no process: tree folding, rendering, value formatting and configuration
 * precedence.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pc from 'picocolors';
import { readConfigFile, resolveCliConfig } from '../src/cli/config.js';
import { UsageError } from '../src/cli/errors.js';
import { etaText, formatDuration, jsonText, progressBar, toJsonValue } from '../src/cli/format.js';
import { renderTree, truncate, visibleLength } from '../src/cli/render.js';
import { buildTree, foldChildren, type FoldNode, type TreeSource } from '../src/cli/tree.js';
import { emptyCounts } from '../src/store/run-store.js';
import type { ActionPhase, ActionRecord } from '../src/types.js';
import { tempDir } from './support/cli.js';

const plain = pc.createColors(false);

function action(name: string, parentName: string | null, over: Partial<ActionRecord> = {}): ActionRecord {
  return {
    runName: 'r',
    name,
    parentName,
    taskName: 'env.task',
    shortName: 'task',
    group: null,
    itemIndex: null,
    phase: 'succeeded',
    cacheHit: false,
    attempts: 1,
    startedAt: 1000,
    endedAt: 1100,
    error: null,
    ...over,
  };
}

/** A tree source over a fixed list of actions. */
function source(actions: ActionRecord[]): TreeSource {
  return {
    root: async () => actions.find((a) => a.parentName === null),
    children: async (parent) => actions.filter((a) => a.parentName === parent),
    counts: async () => emptyCounts(),
    expected: async () => new Map(),
  };
}

describe('foldChildren', () => {
  it('folds each group into one node where its first member was, with counts by phase', () => {
    const phases: ActionPhase[] = ['succeeded', 'succeeded', 'running', 'failed', 'queued'];
    const children = [
      action('x', 'a0', { shortName: 'load' }),
      ...phases.map((phase, i) =>
        action(`m${i}`, 'a0', {
          group: 'env.item_map',
          phase,
          cacheHit: i === 0,
          attempts: i === 1 ? 2 : 1,
          endedAt: phase === 'running' || phase === 'queued' ? null : 1100 + i,
          error: phase === 'failed' ? { code: 'ValueError', kind: 'user', message: 'bad' } : null,
        }),
      ),
      action('y', 'a0', { shortName: 'report' }),
    ];
    const nodes = foldChildren('a0', children, 5);
    assert.deepEqual(
      nodes.map((n) => n.kind),
      ['action', 'fold', 'action'],
    );
    const fold = nodes[1];
    assert.ok(fold?.kind === 'fold');
    assert.equal(fold.label, 'env.item_map');
    assert.deepEqual(fold.counts, {
      ...emptyCounts(),
      total: 5,
      succeeded: 2,
      running: 1,
      failed: 1,
      queued: 1,
      cached: 1,
    });
    assert.equal(fold.retried, 1);
    assert.equal(fold.endedAt, null, 'a fold has ended only when all its members have');
    assert.deepEqual(fold.firstFailure, { name: 'm3', error: { code: 'ValueError', kind: 'user', message: 'bad' } });
  });

  it('folds many ungrouped calls of one task, not a few', () => {
    const many = Array.from({ length: 5 }, (_, i) =>
      action(`p${i}`, 'a0', { taskName: 'env.fetch', shortName: 'fetch' }),
    );
    const few = Array.from({ length: 4 }, (_, i) => action(`q${i}`, 'a0', { taskName: 'env.save', shortName: 'save' }));
    const nodes = foldChildren('a0', [...many, ...few], 5);
    assert.deepEqual(
      nodes.map((n) => (n.kind === 'fold' ? n.label : n.kind)),
      ['fetch ×5', 'action', 'action', 'action', 'action'],
    );
  });
});

describe('buildTree and renderTree', () => {
  const actions = [
    action('a0', null, { shortName: 'main', startedAt: 0, endedAt: 2500 }),
    action('c1', 'a0', { shortName: 'load', startedAt: 0, endedAt: 120 }),
    ...Array.from({ length: 100 }, (_, i) =>
      action(`m${i}`, 'a0', { group: 'env.process_map', startedAt: 100, endedAt: 1900 }),
    ),
    action('c2', 'a0', {
      shortName: 'report',
      phase: 'failed',
      attempts: 3,
      error: { code: 'TypeError', kind: 'user', message: 'nope' },
    }),
    action('c3', 'c2', { shortName: 'inner', cacheHit: true, startedAt: 5, endedAt: 10 }),
  ];

  it('renders one line per action and per fold, with guides, durations, retries and cache hits', async () => {
    const tree = await buildTree(source(actions));
    assert.ok(tree);
    const lines = renderTree(tree, { colors: plain, now: 3000 });
    assert.deepEqual(lines, [
      '✓ main a0             2.5s',
      '├─ ✓ load c1          120ms',
      '├─ ✓ env.process_map  ████████████████████  100/100 done  0 running  0 failed  0 cached  1.8s',
      '└─ ✗ report c2        100ms  attempt 3  TypeError: nope',
      '   └─ ✓ inner c3      5ms  cached',
    ]);
  });

  it('stops at maxNodes with a "… N more" line', async () => {
    const tree = await buildTree(source(actions), { maxNodes: 2 });
    assert.ok(tree);
    const lines = renderTree(tree, { colors: plain, now: 3000 });
    assert.equal(lines.length, 4);
    assert.match(lines[3] as string, /^└─ … 1 more$/);
    // A middle child with children of its own: the guide goes on below it.
    const nested = await buildTree(source([...actions, action('c4', 'a0', { shortName: 'last' })]));
    assert.ok(nested);
    assert.deepEqual(renderTree(nested, { colors: plain, now: 3000 }).slice(3), [
      '├─ ✗ report c2        100ms  attempt 3  TypeError: nope',
      '│  └─ ✓ inner c3      5ms  cached',
      '└─ ✓ last c4          100ms',
    ]);
  });

  it("shows a running fold's ETA next to its counts when given one, never in an orphaned run", async () => {
    const running = [
      action('a0', null, { shortName: 'main', phase: 'running', startedAt: 0, endedAt: null }),
      ...Array.from({ length: 10 }, (_, i) =>
        action(`m${i}`, 'a0', {
          group: 'env.slow_map',
          phase: i < 4 ? 'succeeded' : 'running',
          startedAt: 0,
          endedAt: i < 4 ? 1000 : null,
        }),
      ),
    ];
    const tree = await buildTree(source(running));
    assert.ok(tree);
    const asked: string[] = [];
    const etaOf = (f: FoldNode): number | null => {
      asked.push(`${f.key} ${f.counts.succeeded}/${f.counts.total}`);
      return 11_200;
    };
    assert.equal(
      renderTree(tree, { colors: plain, now: 2000, etaOf })[1],
      '└─ ⠋ env.slow_map  ████████▒▒▒▒▒▒▒▒▒▒▒▒  4/10 done  6 running  0 failed  0 cached  ETA 12s  2.0s',
    );
    assert.deepEqual(asked, ['g\0env.slow_map 4/10']);
    assert.doesNotMatch(renderTree(tree, { colors: plain, now: 2000 }).join('\n'), /ETA/);
    assert.doesNotMatch(renderTree(tree, { colors: plain, now: 2000, etaOf: () => null }).join('\n'), /ETA/);
    assert.doesNotMatch(renderTree(tree, { colors: plain, now: 2000, etaOf, lastSeenAt: 1500 }).join('\n'), /ETA/);
  });

  it('cuts lines to the terminal width, colour codes and all', async () => {
    const tree = await buildTree(source(actions));
    assert.ok(tree);
    const colored = pc.createColors(true);
    for (const line of renderTree(tree, { colors: colored, now: 3000, width: 40 })) {
      assert.ok(visibleLength(line) <= 40, line);
    }
    assert.equal(truncate('\u001b[31mabcdef\u001b[39m', 4), '\u001b[31mabc…\u001b[0m');
    assert.equal(truncate('abc', 4), 'abc');
  });
});

describe('format', () => {
  it('durations', () => {
    assert.equal(formatDuration(0), '0ms');
    assert.equal(formatDuration(999), '999ms');
    assert.equal(formatDuration(12_345), '12.3s');
    assert.equal(formatDuration(245_000), '4m05s');
    assert.equal(formatDuration(7_380_000), '2h03m');
    assert.equal(formatDuration(-1), '-');
  });

  it('ETAs: whole seconds up to a minute, then as durations', () => {
    assert.equal(etaText(120), 'ETA 1s');
    assert.equal(etaText(11_200), 'ETA 12s');
    assert.equal(etaText(59_999), 'ETA 60s');
    assert.equal(etaText(245_000), 'ETA 4m05s');
    assert.equal(etaText(7_380_000), 'ETA 2h03m');
  });

  it('progress bars fill in proportion', () => {
    const counts = { ...emptyCounts(), total: 10, succeeded: 5, running: 2, queued: 3 };
    assert.equal(progressBar(counts, 10, plain), '█████▒▒░░░');
    assert.equal(progressBar(emptyCounts(), 4, plain), '░░░░');
  });

  it('turns decoded values into JSON data', () => {
    assert.deepEqual(
      toJsonValue({
        d: new Date(0),
        b: 12n,
        n: [NaN, Infinity, -0],
        s: new Set([1]),
        m: new Map<unknown, unknown>([[1, 'a']]),
        u: undefined,
        t: new Uint8Array([1, 2]),
        e: Object.assign(new Error('boom'), { code: 'ValueError' }),
      }),
      {
        d: '1970-01-01T00:00:00.000Z',
        b: '12',
        n: ['NaN', 'Infinity', 0],
        s: [1],
        m: [[1, 'a']],
        u: null,
        t: [1, 2],
        e: { error: 'ValueError', message: 'boom' },
      },
    );
  });

  it('lays out JSON on one line when it fits, indented when not', () => {
    assert.equal(jsonText({ a: [1, 2], b: 'x' }), '{"a":[1,2],"b":"x"}');
    const long = jsonText({ items: Array.from({ length: 40 }, (_, i) => i * 1000) }, 60);
    assert.match(long, /^\{\n {2}"items": \[\n {4}0, 1000, 2000,/);
    for (const line of long.split('\n')) assert.ok(line.length <= 60, line);
    assert.deepEqual(JSON.parse(long), { items: Array.from({ length: 40 }, (_, i) => i * 1000) });
  });
});

describe('configuration precedence', () => {
  it('flags > environment > config file > defaults, with the source of each', () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, 'flyte.config.json'),
      JSON.stringify({ root: 'state', store: 'memory:', engine: 'redis://file:6379', uiUrl: 'http://file' }),
    );
    const fromFile = resolveCliConfig({}, {}, cwd);
    assert.deepEqual([fromFile.root, fromFile.store, fromFile.uiUrl], [join(cwd, 'state'), 'memory:', 'http://file']);
    assert.deepEqual(fromFile.sources, { root: 'file', store: 'file', engine: 'file', uiUrl: 'file' });
    assert.equal(fromFile.engine, 'redis://file:6379');
    const env = {
      FLYTE_ROOT: '/env/root',
      FLYTE_UI_URL: 'http://env',
      FLYTE_STORE: '',
      FLYTE_ENGINE: 'redis://env:6379',
    };
    const fromEnv = resolveCliConfig({}, env, cwd);
    assert.deepEqual([fromEnv.root, fromEnv.store, fromEnv.uiUrl], ['/env/root', 'memory:', 'http://env']);
    assert.deepEqual(fromEnv.sources, { root: 'env', store: 'file', engine: 'env', uiUrl: 'env' });
    assert.equal(fromEnv.engine, 'redis://env:6379');
    const fromFlags = resolveCliConfig(
      { root: '/flag/root', uiUrl: 'http://flag', engine: 'redis://flag:6379' },
      env,
      cwd,
    );
    assert.deepEqual(
      [fromFlags.root, fromFlags.uiUrl, fromFlags.engine],
      ['/flag/root', 'http://flag', 'redis://flag:6379'],
    );
    assert.deepEqual(resolveCliConfig({}, {}, tempDir()).sources, {
      root: 'default',
      store: 'default',
      engine: 'default',
      uiUrl: 'default',
    });
  });

  it('prefers flyte.config.json to .flyte/config.json, and --config / FLYTE_CONFIG to both', () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, '.flyte'));
    writeFileSync(join(cwd, '.flyte', 'config.json'), JSON.stringify({ uiUrl: 'http://hidden' }));
    assert.equal(resolveCliConfig({}, {}, cwd).uiUrl, 'http://hidden');
    writeFileSync(join(cwd, 'flyte.config.json'), JSON.stringify({ uiUrl: 'http://plain' }));
    assert.equal(resolveCliConfig({}, {}, cwd).uiUrl, 'http://plain');
    mkdirSync(join(cwd, 'conf'));
    writeFileSync(join(cwd, 'conf', 'x.json'), JSON.stringify({ uiUrl: 'http://named', root: 'r' }));
    const named = resolveCliConfig({}, { FLYTE_CONFIG: 'conf/x.json' }, cwd);
    assert.equal(named.uiUrl, 'http://named');
    assert.equal(named.root, join(cwd, 'conf', 'r'), 'a relative root is relative to the named file');
  });

  it('refuses config files that are not what they should be', () => {
    const dir = tempDir();
    const file = join(dir, 'c.json');
    const refuses = (text: string, pattern: RegExp): void => {
      writeFileSync(file, text);
      assert.throws(
        () => readConfigFile(file),
        (err: unknown) => err instanceof UsageError && pattern.test(err.message),
      );
    };
    refuses('[]', /expected a JSON object with keys root, store, engine, uiUrl/);
    refuses('{"root": 3}', /'root' must be a non-empty string; received 3/);
    refuses('{"colour": "red"}', /unknown key 'colour'/);
    refuses('{', /expected JSON/);
  });
});
