/** A task may return flyte.map results that contain errors: they cross the boundary as flyte errors. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';

const env = new flyte.TaskEnvironment({ name: 'error_values' });

class ValueError extends Error {}

export const check = env.task(async function check(x: number) {
  if (x % 2 === 1) throw new ValueError(`odd: ${x}`);
  return x;
});

export const collect = env.task(async function collect(xs: number[]) {
  return flyte.map(check, xs); // returnExceptions defaults to true: failed items are errors in place
});

describe('errors as values', () => {
  useFlyteRoot('flyte-errvals-');

  it('a task returns map results with failed items; the caller gets RuntimeUserErrors in place', async () => {
    const run = await flyte.run(collect, [2, 3, 4]);
    const out = await run.outputs();
    assert.equal(run.phase, 'succeeded');
    assert.equal(out[0], 2);
    assert.equal(out[2], 4);
    const err = out[1];
    assert.ok(err instanceof flyte.errors.RuntimeUserError);
    assert.equal(err.code, 'ValueError');
    assert.equal(err.message, 'odd: 3');
    const failed = (await run.actions()).find((a) => a.phase === 'failed');
    assert.equal(err.actionName, failed?.name);
  });
});

describe('flyte.map result as a promise', () => {
  it('has catch and finally, so promise helpers accept it', async () => {
    let finallyRan = false;
    const out = await flyte
      .map(check, [1], { returnExceptions: false })
      .catch((e: unknown) => (e instanceof Error ? e.message : 'no'))
      .finally(() => (finallyRan = true));
    assert.equal(out, 'odd: 1');
    assert.equal(finallyRan, true);
    await assert.rejects(flyte.map(check, [3], { returnExceptions: false }).finally(() => undefined), /odd: 3/);
  });
});
