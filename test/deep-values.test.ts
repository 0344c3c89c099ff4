/**
 * Values nested far deeper than devalue's ~1 500 levels cross action boundaries through the public API and the
 * SQLite store: as inputs and outputs, hashed for the cache, and read back from a freshly opened store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';

const env = new flyte.TaskEnvironment({ name: 'deep_values' });
const DEPTH = 50_000;
let executions = 0;

/** Nests `leaf` DEPTH levels deep, through arrays, objects, Maps and Sets in turn. */
function nest(leaf: string): unknown {
  let value: unknown = leaf;
  for (let i = 0; i < DEPTH; i += 1) {
    const k = i % 4;
    value = k === 0 ? [value] : k === 1 ? { z: 1, next: value } : k === 2 ? new Map([[i, value]]) : new Set([value]);
  }
  return value;
}

/** The leaf at the bottom of a value made by {@link nest}, found without recursion. */
function leafOf(value: unknown): unknown {
  let v = value;
  for (let i = DEPTH - 1; i >= 0; i -= 1) {
    const k = i % 4;
    if (k === 0) v = (v as unknown[])[0];
    else if (k === 1) v = (v as { next: unknown }).next;
    else if (k === 2) v = (v as Map<number, unknown>).get(i);
    else v = [...(v as Set<unknown>)][0];
  }
  return v;
}

export const deepen = env.task({ cache: 'auto' }, async function deepen(leaf: string) {
  executions += 1;
  return nest(leaf);
});

export const bottom = env.task(async function bottom(value: unknown) {
  return leafOf(value);
});

export const main = env.task(async function main(leaf: string) {
  const deep = await deepen(leaf);
  return [await bottom(deep), deep];
});

describe(`values nested ${DEPTH} levels deep`, () => {
  const root = useFlyteRoot('flyte-deep-');

  it(
    'cross action boundaries as inputs and outputs, are cached, and read back from the store',
    { timeout: 120_000 },
    async () => {
      const run = await flyte.run(main, 'leaf');
      const [leaf, deep] = (await run.outputs()) as [string, unknown];
      assert.equal(leaf, 'leaf');
      assert.equal(leafOf(deep), 'leaf');
      await flyte.shutdown();
      flyte.init({ root: root(), echoLogs: false });
      const stored = await flyte.getRun(run.name);
      const [, again] = (await stored.outputs()) as [string, unknown];
      assert.equal(leafOf(again), 'leaf');
      const before = executions;
      const second = await flyte.run(main, 'leaf');
      assert.equal(((await second.outputs()) as [string])[0], 'leaf');
      assert.equal(executions, before, 'the second deepen was a cache hit');
    },
  );
});
