/**
 * Aborting one action, children left running by a finished parent, and aborting a run (or one of its actions)
 * driven by another process.
 */
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';
import { rootEnv } from './support/test-store.js';
import { Gate } from './support/gates.js';

const env = new flyte.TaskEnvironment({ name: 'abort_test' });
const started = new Map<string, Gate>();
const gate = (key: string): Gate => {
  let g = started.get(key);
  if (g === undefined) started.set(key, (g = new Gate()));
  return g;
};

export const leaf = env.task(async function leaf(key: string) {
  const signal = flyte.ctx()!.signal;
  gate(key).open(undefined);
  await new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
});

export const middle = env.task(async function middle(key: string) {
  await Promise.all([leaf(`${key}/a`), leaf(`${key}/b`)]);
});

export const siblings = env.task(async function siblings() {
  const doomed = middle('doomed');
  const kept = Promise.resolve('kept');
  const result = await doomed.then(
    () => 'not aborted',
    (e: unknown) => (e instanceof flyte.errors.ActionAbortedError ? 'aborted' : `other: ${String(e)}`),
  );
  return [result, await kept];
});

export const careless = env.task(async function careless() {
  void leaf('left-behind').catch(() => undefined);
  await gate('left-behind').promise;
  return 'done';
});

describe('abort', { timeout: 60_000 }, () => {
  const root = useFlyteRoot('flyte-abort-');

  it('run.action(name).abort() aborts that action and its running descendants only', async () => {
    const run = await flyte.run(siblings);
    await gate('doomed/a').promise;
    await gate('doomed/b').promise;
    const actions = await run.actions();
    const mid = actions.find((a) => a.taskName === 'abort_test.middle') ?? assert.fail('middle recorded');
    await run.action(mid.name).abort('enough');
    assert.deepEqual(await run.outputs(), ['aborted', 'kept']);
    const after = await run.actions();
    const byTask = (t: string) => after.filter((a) => a.taskName === t).map((a) => a.phase);
    assert.deepEqual(byTask('abort_test.middle'), ['aborted']);
    assert.deepEqual(byTask('abort_test.leaf'), ['aborted', 'aborted']);
    assert.equal(after.find((a) => a.name === 'a0')?.phase, 'succeeded');
    assert.match(after.find((a) => a.name === mid.name)?.error?.message ?? '', /enough/);
  });

  it('children a parent did not wait for are aborted when it finishes', async () => {
    const run = await flyte.run(careless);
    assert.equal(await run.outputs(), 'done');
    const leaves = (await run.actions()).filter((a) => a.taskName === 'abort_test.leaf');
    assert.equal(leaves.length, 1);
    assert.equal(leaves[0]?.phase, 'aborted');
    assert.match(leaves[0]?.error?.message ?? '', /parent a0 finished before it/);
  });

  /** Starts test/fixtures/long-run.ts in a child process; resolves once it printed its run's name. */
  const startLongRun = async (...args: string[]) => {
    const fixture = fileURLToPath(new URL('./fixtures/long-run.ts', import.meta.url));
    const child = spawn(process.execPath, ['--conditions=flyte-source', '--import', 'tsx', fixture, ...args], {
      env: { ...process.env, ...rootEnv(root()) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const state = { out: '' };
    const name = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        state.out += chunk.toString();
        const m = /run: (\S+)/.exec(state.out);
        if (m) resolve(m[1] as string);
      });
      child.on('exit', (code) => reject(new Error(`fixture exited early (${code}): ${state.out}`)));
    });
    return { name, exited, state, child };
  };

  it('aborts a run driven by another live process through the store', async () => {
    const { name, exited, state } = await startLongRun('3');
    const out = () => state.out;
    const run = await flyte.getRun(name);
    assert.equal(run.phase, 'running');
    await run.abort('from another process');
    assert.equal(run.phase, 'aborted');
    assert.equal(await exited, 0);
    assert.match(out(), /phase: aborted/);
    const rec = await run.record();
    assert.match(rec.error?.message ?? '', /from another process/);
  });

  it('a reader that lives on sees a run orphaned when its process dies later', async () => {
    const { name, exited, child } = await startLongRun('2');
    const run = await flyte.getRun(name); // this process has looked for orphans once already
    assert.equal(run.phase, 'running');
    child.kill('SIGKILL');
    await exited;
    const deadline = Date.now() + 10_000;
    let phase = (await flyte.getRun(name)).phase;
    while (phase !== 'orphaned' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      phase = (await flyte.getRun(name)).phase;
    }
    assert.equal(phase, 'orphaned');
  });

  it('an abort request is applied once: recovering the aborted run does not abort it again', async () => {
    const { name, exited } = await startLongRun('2');
    const run = await flyte.getRun(name);
    await run.abort('first abort');
    assert.equal(await exited, 0);
    const recovered = await flyte.rerun(name, { recover: true });
    // Longer than the poll period of abort requests (250 ms): a request left in the store would fire by now.
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.equal(recovered.phase, 'running');
    await recovered.abort('second abort');
    const rec = await recovered.record();
    assert.equal(rec.phase, 'aborted');
    assert.match(rec.error?.message ?? '', /second abort/);
  });

  it('aborts one action of a run driven by another live process, and only its subtree', async () => {
    const { name, exited, state } = await startLongRun('3', 'nested');
    const run = await flyte.getRun(name);
    // Wait until every wait() (2 per pair) is recorded as running.
    let actions = await run.actions();
    while (actions.filter((a) => a.taskName === 'long_run.wait' && a.phase === 'running').length < 6) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      actions = await run.actions();
    }
    const pairs = actions.filter((a) => a.taskName === 'long_run.pair');
    assert.equal(pairs.length, 3);
    const doomed = pairs[1] ?? assert.fail('a second pair');
    await run.action(doomed.name).abort('just this one');

    const after = await run.actions();
    const subtree = new Set([doomed.name]);
    for (const a of after) if (a.parentName !== null && subtree.has(a.parentName)) subtree.add(a.name);
    assert.equal(subtree.size, 3);
    for (const a of after) {
      if (subtree.has(a.name)) assert.equal(a.phase, 'aborted', `${a.name} (${a.taskName}) aborted`);
      else assert.equal(a.phase, 'running', `${a.name} (${a.taskName}) still running`);
    }
    assert.match(after.find((a) => a.name === doomed.name)?.error?.message ?? '', /just this one/);
    // Aborting an ended action again does nothing; the run goes on until it is aborted as a whole.
    await run.action(doomed.name).abort('again');
    assert.equal((await run.record()).phase, 'running');
    await assert.rejects(run.action('nope').abort(), RangeError);

    await run.abort('finish');
    assert.equal(run.phase, 'aborted');
    assert.equal(await exited, 0);
    assert.match(state.out, /phase: aborted/);
  });

  it('refuses to abort an action of a run whose process is gone', async () => {
    const { name, exited } = await startLongRun('1');
    const run = await flyte.getRun(name);
    let actions = await run.actions();
    while (!actions.some((a) => a.taskName === 'long_run.wait' && a.phase === 'running')) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      actions = await run.actions();
    }
    const waiting = actions.find((a) => a.taskName === 'long_run.wait') ?? assert.fail('a wait action');
    // Kill the driving process: its run and actions stay recorded as running, with nobody to abort them.
    const record = await run.record();
    const pid = Number(record.owner?.slice(record.owner.lastIndexOf(':') + 1));
    process.kill(pid, 'SIGKILL');
    await exited;
    await assert.rejects(run.action(waiting.name).abort('too late'), (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /process that drove the run is gone/);
      return true;
    });
    await run.abort('clean up');
    assert.equal(run.phase, 'aborted');
  });
});
