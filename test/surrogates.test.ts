/**
 * Strings with lone surrogates (half of a UTF-16 pair, alone: `'x\ud800y'`) round-trip exactly through the SQLite
 * store, in string values, object keys, Map keys and Set items: read back with `run.outputs()`, an action's
 * inputs and outputs, a cache hit in a freshly opened store, a recovered run, and `flyte get io` of the built
 * bin. Before, the store's UTF-8 turned each lone surrogate into U+FFFD.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import * as flyte from 'flyte-ts';
import { toJsonValue } from '../src/cli/format.js';
import { ensureBuilt, parseJson, runCli } from './support/cli.js';
import { useFlyteRoot } from './support/flyte-root.js';
import { prng } from './support/prng.js';

const env = new flyte.TaskEnvironment({ name: 'surrogates' });

let executions = 0;
let failNext = false;

export const echo = env.task({ cache: 'auto' }, async function echo(value: unknown) {
  executions += 1;
  return value;
});

export const echoUncached = env.task(async function echoUncached(value: unknown) {
  executions += 1;
  return value;
});

export const echoAll = env.task(async function echoAll(values: unknown[]) {
  return Promise.all(values.map((v) => echo(v)));
});

/** Echoes every value through a child, then fails once: the recovered run reads the children's outputs back. */
export const echoThenFail = env.task(async function echoThenFail(values: unknown[]) {
  const out = await Promise.all(values.map((v) => echoUncached(v)));
  if (failNext) {
    failNext = false;
    throw new Error('fails once, after its children');
  }
  return out;
});

// Lone halves, a reversed pair (two lone halves), a real pair next to lone ones, and ordinary text.
const PARTS = [
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\udc00\ud800',
  '😀\ud83d',
  '\ude00😀',
  'x',
  'ab',
  ' ',
  '"',
  '\\',
  'é',
  '',
];

function randomValues(seed: number, count: number): unknown[] {
  const rand = prng(seed);
  const str = (): string => {
    let s = '';
    for (let n = 1 + Math.floor(rand() * 4); n > 0; n -= 1) s += PARTS[Math.floor(rand() * PARTS.length)] as string;
    return s;
  };
  const value = (depth: number): unknown => {
    const r = rand();
    if (depth === 0 || r < 0.35) return str();
    if (r < 0.5) return Object.fromEntries([...Array(1 + Math.floor(rand() * 3))].map(() => [str(), value(depth - 1)]));
    if (r < 0.65) return new Map([...Array(1 + Math.floor(rand() * 3))].map(() => [str(), value(depth - 1)]));
    if (r < 0.75) return new Set([...Array(1 + Math.floor(rand() * 3))].map(str));
    return [...Array(1 + Math.floor(rand() * 3))].map(() => value(depth - 1));
  };
  return ['x\ud800y', ...Array.from({ length: count - 1 }, () => value(3))];
}

describe('lone surrogates through the SQLite store', () => {
  const root = useFlyteRoot('flyte-surrogates-');
  const values = randomValues(7, 300);
  let runName = '';

  it('come back exactly from run.outputs() and from every action inputs and outputs', async () => {
    const run = await flyte.run(echoAll, values);
    runName = run.name;
    assert.deepStrictEqual(await run.outputs(), values);
    // Read again from a freshly opened store: nothing is answered from memory.
    await flyte.shutdown();
    flyte.init({ root: root(), echoLogs: false });
    const again = await flyte.getRun(run.name);
    assert.deepStrictEqual(await again.outputs(), values);
    assert.deepStrictEqual(await again.action('a0').inputs(), [values]);
    const children = (await again.actions()).filter((a) => a.taskName === 'surrogates.echo');
    assert.equal(children.length, values.length);
    for (const child of children) {
      const [input] = (await again.action(child.name).inputs()) as [unknown];
      assert.deepStrictEqual(await again.action(child.name).outputs(), input);
      assert.ok(
        values.some((v) => isDeepStrictEqual(v, input)),
        `input of ${child.name} is none of the values sent`,
      );
    }
  });

  it('come back exactly from cache hits', async () => {
    const before = executions;
    const run = await flyte.run(echoAll, values);
    assert.deepStrictEqual(await run.outputs(), values);
    assert.equal(executions, before, 'every child was answered from the cache');
  });

  it('come back exactly in a recovered run', async () => {
    failNext = true;
    const failed = await flyte.run(echoThenFail, values);
    await assert.rejects(failed.outputs());
    const before = executions;
    await flyte.shutdown();
    flyte.init({ root: root(), echoLogs: false });
    const recovered = await flyte.rerun(failed.name, { recover: true });
    assert.deepStrictEqual(await recovered.outputs(), values);
    assert.equal(executions, before, 'the recorded children were not run again');
  });

  it('come back exactly from `flyte get io -o json` of the built bin', { timeout: 180_000 }, async () => {
    ensureBuilt();
    await flyte.shutdown();
    flyte.init({ root: root(), echoLogs: false });
    // On the test's store: FLYTE_STORE when the SDK tests run on Postgres (the spawned CLI does not inherit it).
    const store = process.env['FLYTE_STORE'];
    const r = await runCli([
      ...(store === undefined ? [] : ['--store', store]),
      '--root',
      root(),
      'get',
      'io',
      runName,
      'a0',
      '-o',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    // JSON escapes lone surrogates (`"\ud800"`), so the printed document keeps them.
    const printed = parseJson<{ inputs: unknown; outputs: unknown }>(r);
    const expected = JSON.parse(JSON.stringify(toJsonValue(values))) as unknown;
    assert.deepStrictEqual(printed.outputs, expected);
    assert.deepStrictEqual(printed.inputs, [expected]);
  });
});
