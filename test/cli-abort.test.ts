/** `flyte abort run` and `flyte abort action` on runs driven by another `flyte run` process. */
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as flyte from 'flyte-ts';
import { TASKS, collect, ensureBuilt, runCli, spawnCli, tempDir, waitForOutput } from './support/cli.js';
import { initOptions } from './support/test-store.js';

describe('flyte abort across processes', { timeout: 120_000 }, () => {
  let root: string;
  before(() => {
    ensureBuilt();
    root = tempDir('flyte-cli-abort-');
  });
  after(async () => {
    await flyte.shutdown();
    rmSync(root, { recursive: true, force: true });
  });

  it('abort run: the other process sees its run aborted and exits 1', async () => {
    const child = spawnCli(['run', TASKS, 'sleepy', '--ms', '20000'], { root });
    const running = collect(child);
    const [, name] = await waitForOutput(child, /^run (\S+)$/m);
    const r = await runCli(['abort', 'run', name as string, '--reason', 'test'], { root });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`run ${name} aborted`));
    assert.equal((await running).code, 1);
  });

  it('abort action: one item of a running fan-out ends aborted; unknown names are exit 1', async () => {
    const child = spawnCli(['run', TASKS, 'fanout', '3', '20000'], { root });
    const running = collect(child);
    const [, name] = await waitForOutput(child, /^run (\S+)$/m);
    flyte.init(initOptions(root));
    const run = await flyte.getRun(name as string);
    let items: flyte.ActionRecord[] = [];
    for (let i = 0; i < 200 && items.filter((a) => a.phase === 'running').length < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      items = (await run.actions()).filter((a) => a.taskName === 'cli_fixture.square');
    }
    const target = items.find((a) => a.phase === 'running') ?? assert.fail('a running item');

    const r = await runCli(['abort', 'action', name as string, target.name, '--reason', 'enough'], { root });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`action ${target.name} of run ${name} aborted`));
    const rec = await run.action(target.name).record();
    assert.equal(rec?.phase, 'aborted');
    assert.match(rec?.error?.message ?? '', /enough/);
    // The map does not return exceptions: the aborted item fails the run, which ends on its own.
    assert.equal((await running).code, 1);

    const unknown = await runCli(['abort', 'action', name as string, 'a-nope'], { root });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /has no action a-nope/);
    const ended = await runCli(['abort', 'action', name as string, target.name], { root });
    assert.equal(ended.code, 0);
    assert.match(ended.stdout, /already ended \(aborted\); nothing to abort/);
  });
});
