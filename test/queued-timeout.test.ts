/** `timeout: { maxQueuedTime }` bounds the wait for a `maxActionConcurrency` slot. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as flyte from 'flyte-ts';
import { useFlyteRoot } from './support/flyte-root.js';
import { Gate } from './support/gates.js';

const env = new flyte.TaskEnvironment({ name: 'queued_timeout' });
const release = new Gate();
const holding = new Gate();
let impatientRan = false;

export const hold = env.task(async function hold() {
  holding.open(undefined);
  await release.promise;
  return 'held';
});

export const impatient = env.task(
  { timeout: { maxRuntime: '10s', maxQueuedTime: '50ms' } },
  async function impatient() {
    impatientRan = true;
    return 'ran';
  },
);

export const main = env.task(async function main() {
  const first = hold();
  await holding.promise;
  const second = await impatient().catch((e: unknown) => e);
  release.open(undefined);
  return [await first, second instanceof flyte.errors.TaskTimeoutError ? second.message : String(second)];
});

describe('maxQueuedTime', () => {
  useFlyteRoot('flyte-queued-');

  it('an action that waits longer than maxQueuedTime for a slot ends timed_out without running', async () => {
    const run = await flyte.withRunContext({ maxActionConcurrency: 1 }).run(main);
    const [held, message] = (await run.outputs()) as [string, string];
    assert.equal(held, 'held');
    assert.match(message, /waited more than 50 ms to start/);
    assert.equal(impatientRan, false);
    const rec = (await run.actions()).find((a) => a.taskName === 'queued_timeout.impatient');
    assert.equal(rec?.phase, 'timed_out');
    assert.equal(rec?.attempts, 0);
    assert.equal(rec?.error?.code, 'TaskTimeoutError');
  });

  it('maxQueuedTime is validated like any duration', () => {
    assert.throws(
      () => env.task({ timeout: { maxRuntime: '1s', maxQueuedTime: 'soon' as '1s' } }, async function bad() {}),
      /maxQueuedTime: expected a duration/,
    );
  });
});
