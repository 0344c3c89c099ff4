/**
 * Sync task bodies run on the pool of worker threads: blocking child calls, sync map and group, deep recursion,
 * timeouts and aborts of spinning bodies, logs, ctx(), and module load failures.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as flyte from 'flyte-ts';
import {
  addOne,
  aioFanOut,
  callsCachedChild,
  callsSyncFromAsync,
  chain,
  groupInside,
  logs,
  mainOnly,
  mapBreaksEarly,
  mapInside,
  mapPullsAhead,
  mapPullsAheadAsync,
  mapStrict,
  mapsCachedChild,
  mapWithErrors,
  recurse,
  showsCtx,
  spins,
  spinsLong,
  whereAmI,
} from './fixtures/sync-tasks.js';
import { useFlyteRoot } from './support/flyte-root.js';
import { rootEnv } from './support/test-store.js';

const execFileAsync = promisify(execFile);

describe('sync tasks on worker threads', () => {
  useFlyteRoot('flyte-sync-', { threads: 2 });

  it('runs a sync body on another thread', async () => {
    const run = await flyte.run(whereAmI);
    const out = await run.outputs();
    assert.equal(out.isMainThread, false);
    assert.notEqual(out.threadId, 0);
  });

  it('blocks on sync children and records them under the parent', async () => {
    const run = await flyte.run(chain, 2);
    const out = await run.outputs();
    assert.equal(out.a, 3);
    assert.equal(out.b, 9);
    const actions = await run.actions();
    const children = actions.filter((a) => a.parentName === 'a0');
    assert.deepEqual(children.map((a) => a.taskName).sort(), ['synctest.addOne', 'synctest.square']);
    assert.ok(children.every((a) => a.phase === 'succeeded'));
  });

  it('runs a 24-deep sync recursion through tasks without deadlock', async () => {
    const run = await flyte.run(recurse, 24);
    assert.equal(await run.outputs(), 24);
    assert.equal((await run.actions()).length, 25);
  });

  it('iterates flyte.map synchronously inside a sync body, in input order, in the map group', async () => {
    const items = [1, 2, 3, 4, 5, 6, 7, 8];
    const run = await flyte.run(mapInside, items);
    assert.deepEqual(await run.outputs(), items.map((x) => x * x));
    const children = (await run.actions()).filter((a) => a.parentName === 'a0');
    assert.equal(children.length, items.length);
    assert.ok(children.every((a) => a.group === 'synctest.square_map'));
    // Each item records its position in the map's input.
    for (const c of children) {
      const [x] = (await run.action(c.name).inputs()) ?? [];
      assert.equal(c.itemIndex, items.indexOf(x as number), `itemIndex of ${c.name} (item ${String(x)})`);
    }
  });

  it('keeps override() of a child called from a sync body: its cache hits on the second run', async () => {
    const children = async (): Promise<flyte.ActionRecord[]> => {
      const run = await flyte.run(callsCachedChild, 100);
      assert.equal(await run.outputs(), 101);
      return (await run.actions()).filter((a) => a.parentName === 'a0');
    };
    const [first] = await children();
    assert.equal(first?.cacheHit, false);
    assert.equal(first?.shortName, 'add-one-cached');
    const [second] = await children();
    assert.equal(second?.cacheHit, true);
    assert.equal(second?.shortName, 'add-one-cached');
  });

  it('keeps override() of the task of a sync map: every item hits the cache on the second run', async () => {
    const items = [11, 12, 13];
    const children = async (): Promise<flyte.ActionRecord[]> => {
      const run = await flyte.run(mapsCachedChild, items);
      assert.deepEqual(await run.outputs(), items.map((x) => x * x));
      return (await run.actions()).filter((a) => a.parentName === 'a0');
    };
    assert.deepEqual((await children()).map((a) => a.cacheHit), [false, false, false]);
    const second = await children();
    assert.deepEqual(second.map((a) => a.cacheHit), [true, true, true]);
    assert.ok(second.every((a) => a.shortName === 'square-cached'));
  });

  it('returns item errors in place from a sync map', async () => {
    const run = await flyte.run(mapWithErrors, [1, 2, 3, 4]);
    assert.deepEqual(await run.outputs(), [1, 2, 'error:RangeError', 4]);
  });

  it('streams a sync map: a break after k results of a million lazy items pulls about k + concurrency', { timeout: 60_000 }, async () => {
    const k = 5;
    const concurrency = 4;
    const run = await flyte.run(mapBreaksEarly, 1_000_000, k, concurrency);
    const out = await run.outputs();
    assert.deepEqual(out.results, [1, 2, 3, 4, 5]);
    assert.ok(out.pulled <= k + concurrency + 1, `pulled ${out.pulled} items for ${k} results`);
    const children = (await run.actions()).filter((a) => a.parentName === 'a0');
    assert.ok(children.length <= k + concurrency, `${children.length} children`);
    assert.ok(children.every((a) => a.phase === 'succeeded' || a.phase === 'aborted'), JSON.stringify(children.map((a) => a.phase)));
  });

  it('keeps a sync map at most about concurrency items pulled ahead of its results, in input order', async () => {
    const run = await flyte.run(mapPullsAhead, 40, 3);
    const out = await run.outputs();
    assert.equal(out.yielded, 40);
    assert.equal(out.inOrder, true);
    assert.ok(out.mostAhead <= 3 + 1, `${out.mostAhead} items pulled ahead`);
    const names = async (r: flyte.Run<unknown>): Promise<string[]> =>
      (await r.actions()).filter((a) => a.parentName === 'a0').map((a) => `${a.group}/${a.name}`).sort();
    const asyncRun = await flyte.run(mapPullsAheadAsync, 40, 3);
    await asyncRun.wait();
    assert.deepEqual(await names(run), await names(asyncRun), 'the items are named as those of the same map awaited');
  });

  it('throws the first failure of a sync map with returnExceptions: false, after the results before it', async () => {
    const run = await flyte.run(mapStrict, [1, 2, 3, 4, 5, 6, 7, 8]);
    const out = await run.outputs();
    assert.deepEqual(out.seen, [1, 2]);
    assert.equal(out.error, 'RangeError');
    const children = (await run.actions()).filter((a) => a.parentName === 'a0');
    assert.ok(children.length < 8, `${children.length} children started`);
  });

  it('supports the sync form of flyte.group inside a sync body', async () => {
    const run = await flyte.run(groupInside, 1);
    assert.equal(await run.outputs(), 4);
    const children = (await run.actions()).filter((a) => a.parentName === 'a0');
    const add = children.find((a) => a.taskName === 'synctest.addOne');
    const sq = children.find((a) => a.taskName === 'synctest.square');
    assert.equal(add?.group, 'stage');
    assert.equal(sq?.group, null);
  });

  it('refuses a direct sync call from async code and accepts .aio and map', async () => {
    const run = await flyte.run(callsSyncFromAsync);
    assert.equal(await run.outputs(), 'SyncTaskCallInAsyncContextError');
    const fan = await flyte.run(aioFanOut, [1, 2, 3]);
    const out = await fan.outputs();
    assert.deepEqual(out.viaMap, [1, 4, 9]);
    assert.ok(out.threads.every((t) => t !== 0));
  });

  it('stops a spinning body at its timeout, and the pool goes on', async () => {
    const run = await flyte.run(spins);
    await run.wait();
    const [root] = await run.actions();
    assert.equal(root?.phase, 'timed_out');
    const again = await flyte.run(addOne, 41);
    assert.equal(await again.outputs(), 42);
  });

  it('stops a spinning body on abort', async () => {
    const run = await flyte.run(spinsLong);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await run.abort('enough');
    await run.wait();
    const [root] = await run.actions();
    assert.equal(root?.phase, 'aborted');
    const again = await flyte.run(addOne, 1);
    assert.equal(await again.outputs(), 2);
  });

  it('records console output of a sync body as the action logs', async () => {
    const run = await flyte.run(logs, 7);
    assert.equal(await run.outputs(), 7);
    const lines = await run.action('a0').logs();
    const text = lines.map((l) => `${l.stream}:${l.line}`);
    assert.ok(text.includes('stdout:hello from a sync body 7'), JSON.stringify(text));
    assert.ok(text.includes('stderr:to stderr'), JSON.stringify(text));
  });

  it('gives flyte.ctx() inside a sync body, and propagates customContext to children', async () => {
    const run = await flyte.run(showsCtx);
    const c = await run.outputs();
    assert.ok(c !== null);
    assert.equal(c.runName, run.name);
    assert.equal(c.action, 'a0');
    assert.equal(c.attempt, 1);
    assert.equal(c.taskName, 'synctest.showsCtx');
    assert.equal(c.group, null);
    assert.deepEqual(c.customContext, { tenant: 'acme' });
    assert.deepEqual(c.inner, { taskName: 'synctest.readCtx', customContext: { tenant: 'acme' } });
  });

  it('fails with ModuleLoadError when the module does not define the task', async () => {
    assert.ok(mainOnly !== undefined);
    const run = await flyte.run(mainOnly);
    await assert.rejects(run.outputs(), (err: unknown) => {
      assert.ok(err instanceof flyte.errors.BaseRuntimeError);
      assert.equal(err.code, 'ModuleLoadError');
      assert.match(err.message, /sync-tasks\.ts/);
      assert.match(err.message, /synctest\.mainOnly/);
      return true;
    });
  });

  it('fails with ModuleLoadError when the module cannot be found', async () => {
    // Inside the package, so the copy resolves 'flyte-ts' like the fixtures do.
    const here = path.dirname(fileURLToPath(import.meta.url));
    const dir = await mkdtemp(path.join(here, 'fixtures', '.sync-gone-'));
    const file = path.join(dir, 'gone.ts');
    await copyFile(path.join(here, 'fixtures', 'sync-gone.ts'), file);
    const mod = (await import(file)) as { gone: flyte.Task<[], number> };
    await rm(dir, { recursive: true, force: true });
    const run = await flyte.run(mod.gone);
    await assert.rejects(run.outputs(), (err: unknown) => {
      assert.ok(err instanceof flyte.errors.BaseRuntimeError);
      assert.equal(err.code, 'ModuleLoadError');
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, /synctest_gone\.gone/);
      return true;
    });
  });
});

describe('sync examples', () => {
  const repo = fileURLToPath(new URL('..', import.meta.url));
  for (const [file, expected] of [
    ['sync-map.ts', '[2,4,6,8,10,12,14,16,18,20]'],
    ['sync-chain.ts', '[20,30,40]'],
  ] as const) {
    it(`${file} prints its result`, async () => {
      const state = await mkdtemp(path.join(os.tmpdir(), 'flyte-sync-example-'));
      try {
        const env: NodeJS.ProcessEnv = { ...process.env };
        delete env.NODE_TEST_CONTEXT;
        delete env.FLYTE_STORE;
        Object.assign(env, rootEnv(state));
        const { stdout } = await execFileAsync(
          process.execPath,
          ['--conditions=flyte-source', '--import', 'tsx', path.join('examples', file)],
          { cwd: repo, env, timeout: 60_000 },
        );
        assert.ok(stdout.includes(`result: ${expected}`), stdout);
      } finally {
        await rm(state, { recursive: true, force: true });
      }
    });
  }
});
