/**
 * A map's progress counts its items, not the actions started so far: with an input of known size, the map's
 * total is recorded, and `flyte get run` (and the live views, which share the tree) show done / total items.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { arm, release, main, streamed, syncMain } from './fixtures/progress.js';
import { startUiServer } from '../src/ui/server.js';
import { ensureBuilt, runCli } from './support/cli.js';
import { useFlyteRoot } from './support/flyte-root.js';

const root = useFlyteRoot('flyte-progress-');
before(() => ensureBuilt());

interface Fold {
  kind: string;
  label?: string;
  counts?: { total: number; succeeded: number; running: number; queued: number };
  expected?: number | null;
  children?: Fold[];
}

async function mapFold(name: string): Promise<{ fold: Fold | undefined; counts: Fold['counts'] }> {
  const r = await runCli(['get', 'run', name, '-o', 'json'], { root: root() });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { tree: Fold; counts: Fold['counts'] };
  return { fold: doc.tree.children?.find((c) => c.kind === 'fold'), counts: doc.counts };
}

async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the map to reach the gate');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('map progress of the items', () => {
  const parents: [string, flyte.Task<[number], unknown>][] = [
    ['async', main],
    ['sync', syncMain],
  ];
  for (const [kind, task] of parents) {
    it(`a 200-item map at concurrency 10 (${kind} parent) shows 40/200 done, not 40/50`, async (t) => {
      arm();
      const run = await flyte.run(task, 200);
      // Released in any case: a failed assertion must not leave the run waiting (and shutdown with it).
      t.after(release);
      await until(async () => (await run.actions()).filter((a) => a.phase === 'succeeded').length >= 40);
      await until(async () => (await run.actions()).filter((a) => a.phase === 'running').length >= 11);
      const { fold, counts } = await mapFold(run.name);
      assert.equal(fold?.label, 'progress.item_map');
      assert.equal(fold?.expected, 200);
      assert.deepEqual(
        { total: fold?.counts?.total, succeeded: fold?.counts?.succeeded, running: fold?.counts?.running },
        { total: 200, succeeded: 40, running: 10 },
      );
      assert.equal(fold?.counts?.queued, 150, 'the items not started yet count as queued');
      assert.equal(counts?.total, 201, 'the run summary counts every item, and the root');
      const plain = await runCli(['get', 'run', run.name], { root: root() });
      assert.match(plain.stdout, /progress\.item_map .* 40\/200 done {2}10 running/);
      // The UI's API: the fold and the run summary count the items (a 20 % done map shows 20 %).
      const ui = await startUiServer({ port: 0, log: () => undefined });
      try {
        const groups = (await (await fetch(`${ui.url}/api/runs/${run.name}/groups`)).json()) as {
          groups: { group: string; counts: { total: number; succeeded: number; queued: number } }[];
        };
        const g = groups.groups.find((x) => x.group === 'progress.item_map');
        assert.deepEqual([g?.counts.total, g?.counts.succeeded, g?.counts.queued], [200, 40, 150]);
        const detail = (await (await fetch(`${ui.url}/api/runs/${run.name}`)).json()) as {
          run: { counts: { total: number; succeeded: number } };
        };
        assert.deepEqual([detail.run.counts.total, detail.run.counts.succeeded], [201, 40]);
      } finally {
        await ui.close();
      }
      release();
      assert.equal(await run.outputs(), 200);
      const after = await mapFold(run.name);
      assert.equal(after.fold?.counts?.total, 200);
      assert.equal(after.fold?.counts?.succeeded, 200);
    });
  }

  it('a map over a generator (no known size) counts the actions started, as before', async () => {
    const run = await flyte.run(streamed, 60);
    assert.equal(await run.outputs(), 60);
    const { fold } = await mapFold(run.name);
    assert.equal(fold?.expected, null);
    assert.equal(fold?.counts?.total, 60);
  });
});
