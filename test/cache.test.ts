/**
 * The cache through the public API: hits across runs, processes and `shutdown`/`init`; what the key depends on
 * (inputs minus ignored ones, task name, source version or `versionOverride`, salt, file content) and what it does
 * not (custom context, file path); `'override'`, `disableRunCache`, `overwriteCache`; environment defaults and
 * `.override({ cache })`.
 *
 * Task bodies count their executions, so "answered from the cache" means: the action says `cacheHit: true` and
 * the body did not run. Version changes on body edits need a second definition of the same task, so those tests
 * write a small task module into a temporary directory inside the repository (where it can import 'flyte-ts')
 * and run it in child processes; the directory is removed at the end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { initOptions, useFlyteRoot } from './support/flyte-root.js';
import { rootEnv } from './support/test-store.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

const env = new flyte.TaskEnvironment({ name: 'cachetest' });
const cachedEnv = new flyte.TaskEnvironment({ name: 'cachetest_auto', cache: 'auto' });

/** Executions of each task body, by short name. */
const calls = new Map<string, number>();
function count(name: string): number {
  const n = (calls.get(name) ?? 0) + 1;
  calls.set(name, n);
  return n;
}
const called = (name: string): number => calls.get(name) ?? 0;

export const square = env.task({ cache: 'auto' }, async function square(x: number) {
  count('square');
  return x * x;
});

/** Same body as `square` under another name: the task name is part of the key. */
export const squareTwin = env.task({ cache: 'auto' }, async function squareTwin(x: number) {
  count('squareTwin');
  return x * x;
});

/** Returns which execution produced the value, so a rewritten cache entry is visible. */
export const stamped = env.task({ cache: 'auto' }, async function stamped(key: string) {
  return `${key}#${count(`stamped:${key}`)}`;
});

export const scaled = env.task(
  { cache: new flyte.Cache({ ignoredInputs: ['verbose'] }) },
  async function scaled(x: number, verbose: boolean) {
    count('scaled');
    if (verbose) console.log('scaling', x);
    return x * 10;
  },
);

/** A destructured parameter is named by position (`arg0`); a rest parameter by its name. */
export const positional = env.task(
  { cache: new flyte.Cache({ ignoredInputs: ['arg0', 'notes'] }) },
  async function positional({ id }: { id: number; label: string }, ...notes: string[]) {
    count('positional');
    return { id, notes: notes.length };
  },
);

export const uncached = env.task(async function uncached(x: number) {
  count('uncached');
  return x + 1;
});

export const inheritsAuto = cachedEnv.task(async function inheritsAuto(x: number) {
  count('inheritsAuto');
  return x - 1;
});

export const optsOut = cachedEnv.task({ cache: 'disable' }, async function optsOut(x: number) {
  count('optsOut');
  return x - 2;
});

export const parentOfSquares = env.task(async function parentOfSquares(xs: number[]) {
  count('parentOfSquares');
  return Promise.all(xs.map((x) => square(x)));
});

export const readsContext = env.task({ cache: 'auto' }, async function readsContext(x: number) {
  count('readsContext');
  return `${x}:${flyte.ctx()?.customContext.tenant ?? '-'}`;
});

export const callsInContext = env.task(async function callsInContext(tenant: string) {
  return flyte.customContext({ tenant }, () => readsContext(5));
});

let failNext = false;
export const flaky = env.task({ cache: 'auto' }, async function flaky(x: number) {
  count('flaky');
  if (failNext) throw new Error('not this time');
  return x;
});

export const reads = env.task({ cache: 'auto' }, async function reads(f: flyte.io.File) {
  count('reads');
  return (await f.text()).toUpperCase();
});

async function rootRecord(run: flyte.Run): Promise<flyte.ActionRecord> {
  await run.wait();
  return (await run.actions()).find((a) => a.name === 'a0') ?? assert.fail('the run has a root action');
}

/** Runs `task` to its end and returns its output and whether the root was a cache hit. */
async function runOnce<Args extends unknown[], R>(
  task: flyte.Task<Args, R>,
  ...args: Args
): Promise<{ output: Awaited<R>; cacheHit: boolean; run: flyte.Run<Awaited<R>> }> {
  const run = await flyte.run(task, ...args);
  const output = await run.outputs();
  return { output, cacheHit: (await rootRecord(run)).cacheHit, run };
}

describe('cache', () => {
  const root = useFlyteRoot('flyte-cache-');
  beforeEach(() => {
    calls.clear();
    failNext = false;
  });

  it('answers a second run with the same inputs from the cache, without running the body', async () => {
    const first = await runOnce(square, 3);
    assert.deepEqual([first.output, first.cacheHit, called('square')], [9, false, 1]);

    const second = await runOnce(square, 3);
    assert.deepEqual([second.output, second.cacheHit, called('square')], [9, true, 1]);
    const rec = await rootRecord(second.run);
    assert.equal(rec.phase, 'succeeded');
    assert.equal(rec.attempts, 0, 'no attempt ran');
    assert.equal(await second.run.action('a0').outputs(), 9, 'the cached output is recorded on the action');

    const other = await runOnce(square, 4);
    assert.deepEqual([other.output, other.cacheHit, called('square')], [16, false, 2]);
  });

  it('answers child actions from the cache, and marks them cacheHit', async () => {
    await runOnce(square, 6); // cached as a root
    const run = await flyte.run(parentOfSquares, [6, 7]);
    assert.deepEqual(await run.outputs(), [36, 49]);
    const children = (await run.actions()).filter((a) => a.taskName === 'cachetest.square');
    const byInput = new Map<number, flyte.ActionRecord>();
    for (const c of children) byInput.set(((await run.action(c.name).inputs()) as [number])[0], c);
    assert.equal(byInput.get(6)?.cacheHit, true);
    assert.equal(byInput.get(7)?.cacheHit, false);
    assert.equal(called('square'), 2, 'square ran for 6 (first run) and 7, not again for 6');

    const again = await flyte.run(parentOfSquares, [6, 7]);
    assert.deepEqual(await again.outputs(), [36, 49]);
    const hits = (await again.actions()).filter((a) => a.taskName === 'cachetest.square' && a.cacheHit);
    assert.equal(hits.length, 2);
    assert.equal(called('parentOfSquares'), 2, 'the uncached parent ran both times');
    assert.equal(called('square'), 2);
  });

  it('keys on the task name: the same body under another name does not hit', async () => {
    await runOnce(square, 11);
    const twin = await runOnce(squareTwin, 11);
    assert.equal(twin.cacheHit, false);
    assert.equal(called('squareTwin'), 1);
  });

  it('leaves ignored inputs out of the key', async () => {
    const a = await runOnce(scaled, 1, false);
    const b = await runOnce(scaled, 1, true);
    assert.deepEqual([a.cacheHit, b.cacheHit, b.output, called('scaled')], [false, true, 10, 1]);
    const c = await runOnce(scaled, 2, true);
    assert.deepEqual([c.cacheHit, called('scaled')], [false, 2]);
  });

  it('names destructured parameters by position and rest parameters by name for ignoredInputs', async () => {
    const a = await runOnce(positional, { id: 1, label: 'x' }, 'n1');
    const b = await runOnce(positional, { id: 2, label: 'y' }, 'n1', 'n2');
    assert.deepEqual([a.cacheHit, b.cacheHit, called('positional')], [false, true, 1]);
    assert.deepEqual(b.output, { id: 1, notes: 1 }, 'the cached output of the first call');
  });

  it('rejects unknown ignoredInputs when the task is defined', () => {
    assert.throws(
      () =>
        env.task(
          { cache: new flyte.Cache({ ignoredInputs: ['verbos'] }) },
          async function typo(x: number, verbose: boolean) {
            return verbose ? x : -x;
          },
        ),
      (err: unknown) => err instanceof TypeError && /verbos/.test(err.message) && /x, verbose/.test(err.message),
    );
  });

  it('validates Cache options at once', () => {
    assert.throws(
      () => new flyte.Cache({ behavior: 'always' as flyte.CacheBehavior }),
      /'auto', 'override' or 'disable'/,
    );
    assert.throws(() => new flyte.Cache({ versionOverride: '' }), /versionOverride: expected a non-empty string/);
    assert.throws(
      () => new flyte.Cache({ ignoredInputs: 'verbose' as unknown as string[] }),
      /ignoredInputs: expected an array/,
    );
    assert.throws(() => new flyte.Cache({ ignoredInputs: [1] as unknown as string[] }), TypeError);
    assert.throws(
      () => new flyte.Cache({ salt: 2 as unknown as string }),
      /salt: expected a string; received number 2/,
    );
    assert.throws(() => new flyte.Cache({ policies: [{}] as unknown as flyte.CachePolicy[] }), /getVersion/);
    assert.throws(
      () => env.task({ cache: 'sometimes' as flyte.CacheBehavior }, async function badCache() {}),
      TypeError,
    );
  });

  it('changes the key with the salt', async () => {
    await runOnce(square, 21);
    const salted = square.override({ cache: new flyte.Cache({ salt: 'v2' }) });
    const a = await runOnce(salted, 21);
    const b = await runOnce(salted, 21);
    assert.deepEqual([a.cacheHit, b.cacheHit, called('square')], [false, true, 2]);
    const unsalted = await runOnce(square.override({ cache: new flyte.Cache({ salt: '' }) }), 21);
    assert.equal(unsalted.cacheHit, true, "an empty salt is the same key as 'auto'");
  });

  it("re-executes with 'override' and rewrites the entry that later 'auto' runs hit", async () => {
    const first = await runOnce(stamped, 'k');
    assert.equal(first.output, 'k#1');
    const overridden = await runOnce(stamped.override({ cache: 'override' }), 'k');
    assert.deepEqual([overridden.output, overridden.cacheHit], ['k#2', false]);
    const later = await runOnce(stamped, 'k');
    assert.deepEqual([later.output, later.cacheHit], ['k#2', true], 'the rewritten value');
    assert.equal(called('stamped:k'), 2);
  });

  it('neither reads nor writes the cache under disableRunCache', async () => {
    await runOnce(stamped, 'd'); // cached: d#1
    const off = flyte.withRunContext({ disableRunCache: true });
    const run = await off.run(stamped, 'd');
    assert.equal(await run.outputs(), 'd#2');
    assert.equal((await rootRecord(run)).cacheHit, false);

    const fresh = await off.run(stamped, 'fresh');
    assert.equal(await fresh.outputs(), 'fresh#1');
    const after = await runOnce(stamped, 'fresh');
    assert.deepEqual([after.output, after.cacheHit], ['fresh#2', false], 'disableRunCache wrote nothing');

    const children = await off.run(parentOfSquares, [6]); // 6 may be cached by an earlier test or not
    await children.outputs();
    const child = (await children.actions()).find((a) => a.taskName === 'cachetest.square');
    assert.equal(child?.cacheHit, false, 'the switch reaches child actions');
  });

  it('re-executes and rewrites under overwriteCache', async () => {
    await runOnce(stamped, 'o'); // o#1
    const run = await flyte.withRunContext({ overwriteCache: true }).run(stamped, 'o');
    assert.equal(await run.outputs(), 'o#2');
    assert.equal((await rootRecord(run)).cacheHit, false);
    const later = await runOnce(stamped, 'o');
    assert.deepEqual([later.output, later.cacheHit], ['o#2', true]);
  });

  it("inherits the environment's cache default, which a task can turn off", async () => {
    assert.equal(inheritsAuto.cache.behavior, 'auto');
    await runOnce(inheritsAuto, 1);
    const hit = await runOnce(inheritsAuto, 1);
    assert.deepEqual([hit.cacheHit, called('inheritsAuto')], [true, 1]);

    await runOnce(optsOut, 1);
    const miss = await runOnce(optsOut, 1);
    assert.deepEqual([miss.cacheHit, called('optsOut')], [false, 2]);

    await runOnce(uncached, 1);
    const plain = await runOnce(uncached, 1);
    assert.deepEqual([plain.cacheHit, called('uncached')], [false, 2], "an environment's default is 'disable'");
  });

  it('turns the cache on and off with .override({ cache })', async () => {
    const on = uncached.override({ cache: 'auto' });
    assert.equal(on.name, uncached.name, 'same identity');
    await runOnce(on, 40);
    const hit = await runOnce(on, 40);
    assert.deepEqual([hit.output, hit.cacheHit, called('uncached')], [41, true, 1]);

    const off = inheritsAuto.override({ cache: 'disable' });
    await runOnce(inheritsAuto, 40);
    const miss = await runOnce(off, 40);
    assert.deepEqual([miss.cacheHit, called('inheritsAuto')], [false, 2]);
  });

  it('does not cache failures', async () => {
    failNext = true;
    const run = await flyte.run(flaky, 1);
    await assert.rejects(run.outputs(), /not this time/);
    failNext = false;
    const retry = await runOnce(flaky, 1);
    assert.deepEqual([retry.output, retry.cacheHit, called('flaky')], [1, false, 2]);
  });

  it('leaves the custom context out of the key', async () => {
    const a = await flyte.run(callsInContext, 'acme');
    assert.equal(await a.outputs(), '5:acme');
    const b = await flyte.run(callsInContext, 'globex');
    assert.equal(await b.outputs(), '5:acme', 'answered from the cache despite another tenant');
    const child = (await b.actions()).find((x) => x.taskName === 'cachetest.readsContext');
    assert.equal(child?.cacheHit, true);
    assert.equal(called('readsContext'), 1);

    const rootHit = await flyte.withRunContext({ customContext: { tenant: 'initech' } }).run(readsContext, 5);
    assert.equal(await rootHit.outputs(), '5:acme');
    assert.equal((await rootRecord(rootHit)).cacheHit, true);
  });

  it('hashes flyte.io.File inputs by content: the same bytes under another path hit, an edit misses', async () => {
    const dir = mkdtempSync(join(root(), 'files-'));
    const a = join(dir, 'a.txt');
    const b = join(dir, 'nested-b.txt');
    writeFileSync(a, 'same bytes');
    writeFileSync(b, 'same bytes');
    const first = await runOnce(reads, flyte.io.File.from(a));
    const moved = await runOnce(reads, flyte.io.File.from(b));
    assert.deepEqual([first.cacheHit, moved.cacheHit, moved.output, called('reads')], [false, true, 'SAME BYTES', 1]);

    writeFileSync(a, 'other bytes');
    const edited = await runOnce(reads, flyte.io.File.from(a));
    assert.deepEqual([edited.cacheHit, edited.output, called('reads')], [false, 'OTHER BYTES', 2]);
  });

  it('keeps entries across shutdown and init on the same root', async () => {
    await runOnce(square, 77);
    await flyte.shutdown();
    flyte.init(initOptions(root()));
    const hit = await runOnce(square, 77);
    assert.deepEqual([hit.output, hit.cacheHit, called('square')], [5929, true, 1]);
  });
});

// ------------------------------------------------------------------------------------------------------------
// Across processes, and the version: a generated task module run in child processes.
// ------------------------------------------------------------------------------------------------------------

interface ChildResult {
  readonly output: number;
  readonly cacheHit: boolean;
  /** How many times the body has run so far in this state root. */
  readonly executions: number;
}

/** The source of a module defining `cache_edit.compute` with `body` and `cache`, that runs it on 7 when executed. */
function taskModule(body: string, cache: string): string {
  return `import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'cache_edit' });

export const compute = env.task({ cache: ${cache} }, async function compute(x: number) {
  appendFileSync(process.env.FLYTE_SIDE_EFFECTS as string, 'ran\\n');
  ${body}
});

const run = await flyte.run(compute, 7);
const output = await run.outputs();
const root = (await run.actions()).find((a) => a.name === 'a0');
const effects = process.env.FLYTE_SIDE_EFFECTS as string;
const executions = existsSync(effects) ? readFileSync(effects, 'utf8').split('\\n').filter(Boolean).length : 0;
console.log(JSON.stringify({ output, cacheHit: root?.cacheHit, executions }));
await flyte.shutdown();
`;
}

function runChild(file: string, root: string): Promise<ChildResult> {
  // The body writes its side effects into the root, which a Postgres store does not create.
  mkdirSync(root, { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=flyte-source', '--import', 'tsx', file], {
      cwd: REPO,
      env: { ...process.env, FLYTE_STORE: '', FLYTE_SIDE_EFFECTS: join(root, 'effects.txt'), ...rootEnv(root) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) reject(new Error(`child exited with ${code}:\n${out}\n${err}`));
      else resolve(JSON.parse(line) as ChildResult);
    });
  });
}

describe('cache across processes and versions', () => {
  let work: string;
  let file: string;
  before(() => {
    // Inside the repository, so that the module can import 'flyte-ts' (a package resolves its own name).
    work = mkdtempSync(join(REPO, 'test', 'fixtures', '.tmp-cache-'));
    file = join(work, 'edit-task.ts');
  });
  after(() => {
    rmSync(work, { recursive: true, force: true });
    assert.equal(existsSync(work), false);
  });

  it('hits in a second process with the same state root', async () => {
    const root = join(work, 'state-processes');
    writeFileSync(file, taskModule('return x * 2;', "'auto'"));
    const first = await runChild(file, root);
    const second = await runChild(file, root);
    assert.deepEqual(first, { output: 14, cacheHit: false, executions: 1 });
    assert.deepEqual(second, { output: 14, cacheHit: true, executions: 1 });
  });

  it('misses after an edit of the body (the default version hashes the source), hits again after', async () => {
    const root = join(work, 'state-edit');
    writeFileSync(file, taskModule('return x * 2;', "'auto'"));
    assert.deepEqual(await runChild(file, root), { output: 14, cacheHit: false, executions: 1 });
    writeFileSync(file, taskModule('return x * 3;', "'auto'"));
    assert.deepEqual(await runChild(file, root), { output: 21, cacheHit: false, executions: 2 });
    assert.deepEqual(await runChild(file, root), { output: 21, cacheHit: true, executions: 2 });
    assert.equal(readFileSync(join(root, 'effects.txt'), 'utf8'), 'ran\nran\n');
  });

  it('keeps hits across body edits with versionOverride, and misses when the override changes', async () => {
    const root = join(work, 'state-override');
    writeFileSync(file, taskModule('return x * 2;', "new flyte.Cache({ versionOverride: '1' })"));
    assert.deepEqual(await runChild(file, root), { output: 14, cacheHit: false, executions: 1 });
    writeFileSync(file, taskModule('return x * 3; // edited', "new flyte.Cache({ versionOverride: '1' })"));
    assert.deepEqual(await runChild(file, root), { output: 14, cacheHit: true, executions: 1 }, 'the v1 output');
    writeFileSync(file, taskModule('return x * 3; // edited', "new flyte.Cache({ versionOverride: '2' })"));
    assert.deepEqual(await runChild(file, root), { output: 21, cacheHit: false, executions: 2 });
  });
});
