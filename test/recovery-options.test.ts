/** A recovered run keeps the options it was started with (custom context, cache switches, concurrency). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';

const env = new flyte.TaskEnvironment({ name: 'recovery_options', cache: 'auto' });
let failNext = true;
let executions = 0;

export const leaf = env.task(async function leaf(x: number) {
  executions++;
  return `${x}:${flyte.ctx()?.customContext.tenant ?? 'none'}`;
});

export const flaky = env.task({ cache: 'disable' }, async function flaky() {
  if (failNext) {
    failNext = false;
    throw new Error('first time fails');
  }
  return leaf(2);
});

export const main = env.task({ cache: 'disable' }, async function main() {
  const a = await leaf(1);
  const b = await flaky();
  return [a, b];
});

describe('recovery keeps run options', () => {
  useFlyteRoot('flyte-recopts-');

  it('custom context and disableRunCache survive a recover', async () => {
    const first = await flyte
      .withRunContext({ customContext: { tenant: 'acme' }, disableRunCache: true, maxActionConcurrency: 2 })
      .run(main);
    assert.equal((await first.wait()).phase, 'failed');
    assert.deepEqual((await first.record()).options, {
      customContext: { tenant: 'acme' },
      disableRunCache: true,
      maxActionConcurrency: 2,
    });
    const before = executions;
    const recovered = await flyte.rerun(first.name, { recover: true });
    assert.deepEqual(await recovered.outputs(), ['1:acme', '2:acme']);
    // leaf(1) had succeeded: replayed. leaf(2) ran now, and with the run cache disabled it wrote no entry...
    assert.equal(executions, before + 1);
    const again = await flyte.run(leaf, 2);
    await again.outputs();
    assert.equal(executions, before + 2, 'no cache entry was written under disableRunCache');
  });
});
