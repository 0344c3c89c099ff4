/**
 * Aborting one action, children left running by a finished parent, and aborting a run driven by another process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as flyte from 'flyte-ts';
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
  let root: string;
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'flyte-abort-'));
    flyte.init({ root, echoLogs: false });
  });
  after(async () => {
    await flyte.shutdown();
    rmSync(root, { recursive: true, force: true });
  });

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

  it('aborts a run driven by another live process through the store', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/long-run.ts', import.meta.url));
    const child = spawn(process.execPath, ['--conditions=flyte-source', '--import', 'tsx', fixture, '3'], {
      env: { ...process.env, FLYTE_ROOT: root },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let out = '';
    const name = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /run: (\S+)/.exec(out);
        if (m) resolve(m[1] as string);
      });
      child.on('exit', (code) => reject(new Error(`fixture exited early (${code}): ${out}`)));
    });
    const run = await flyte.getRun(name);
    assert.equal(run.phase, 'running');
    await run.abort('from another process');
    assert.equal(run.phase, 'aborted');
    assert.equal(await exited, 0);
    assert.match(out, /phase: aborted/);
    const rec = await run.record();
    assert.match(rec.error?.message ?? '', /from another process/);
  });
});
