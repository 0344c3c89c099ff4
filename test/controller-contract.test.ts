/**
 * The controller contract of distributed mode's groundwork (issue 10, items 7 and 8): the run side of the
 * controller the runtime chooses (`createController`), and the placement-neutral action lifecycle driven by a
 * placement of the test's own, as the worker loop of the next issue will drive it. Real stores (memory, SQLite);
 * nothing is mocked but the placement, which is the seam under test.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import {
  ActionLifecycle,
  RunningAction,
  newActionRecord,
  type LifecycleRun,
  type Placement,
} from '../src/internal/action-lifecycle.js';
import type { Frame } from '../src/internal/controller.js';
import { runInFrame } from '../src/internal/frame.js';
import { ROOT_ACTION } from '../src/internal/naming.js';
import { Recorder } from '../src/internal/recorder.js';
import { createController, resolveConfig } from '../src/internal/runtime.js';
import { ValueCodec } from '../src/internal/serde.js';
import { openStore } from '../src/store/index.js';
import { taskDefinition } from '../src/task.js';

const env = new flyte.TaskEnvironment({ name: 'contracttest' });

let flaky = 0;
export const flakyDouble = env.task({ retries: 2 }, async function flakyDouble(x: number) {
  if (flaky-- > 0) throw new Error(`flaky ${flaky}`);
  return x * 2;
});

export const waitsForAbort = env.task(async function waitsForAbort() {
  const signal = flyte.ctx()?.signal as AbortSignal;
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  return 'never';
});

export const parent = env.task(async function parent(n: number) {
  return (await flakyDouble(n)) + 1;
});

const root = mkdtempSync(join(tmpdir(), 'flyte-contract-'));
after(() => rmSync(root, { recursive: true, force: true }));

function deps(store = openStore('memory:', { root })) {
  const recorder = new Recorder(store);
  return { store, recorder, codec: new ValueCodec({ blobs: undefined }) };
}

describe('the run side of createController', () => {
  it('starts a run it then drives, aborts it through the contract, and knows the runs it does not drive', async () => {
    const d = deps();
    const controller = createController(resolveConfig({ store: 'memory:', root, threads: 1 }), d);
    assert.equal(controller.mode, 'local');
    const def = taskDefinition(waitsForAbort);
    assert.ok(def !== undefined);
    const run = await controller.startRun(def, [], { name: 'contract-abort-1' });
    assert.equal(run.phase, 'running');
    assert.equal(controller.driven('contract-abort-1'), run);
    assert.deepEqual(controller.drivenRuns(), ['contract-abort-1']);
    assert.equal(controller.driven('someone-elses-run'), undefined);
    await assert.rejects(controller.abortRun('someone-elses-run', 'no'), /run someone-elses-run is not in memory/);
    await assert.rejects(controller.waitRun('someone-elses-run'), RangeError);
    await assert.rejects(controller.abortAction('contract-abort-1', 'a0-nope', 'no'), /has no action a0-nope/);

    await controller.abortRun('contract-abort-1', 'test over');
    assert.equal(run.phase, 'aborted');
    assert.equal(controller.driven('contract-abort-1'), undefined, 'a run that ended is no longer driven');
    const rec = await d.store.getRun('contract-abort-1');
    assert.equal(rec?.phase, 'aborted', 'the abort is durable when abortRun resolves');
    assert.match(rec?.error?.message ?? '', /test over/);
    await controller.close();
    await d.store.close();
  });
});

/** The test's own run scope: what the lifecycle needs of a run, and nothing of the local controller. */
function lifecycleRun(name: string, lifecycle: () => ActionLifecycle): LifecycleRun {
  return {
    name,
    mode: 'local',
    options: {},
    recover: false,
    slots: null,
    takenOver: false,
    live: new Map(),
    log: () => undefined,
    // Child calls of a body are submitted as the local controller would: a named child through the lifecycle.
    controller: {
      mode: 'local',
      submit: (frame, task, args) => {
        const inputs = lifecycle().codec.encode(args, 'args', task.maxInlineIoBytes);
        const parentAction = frame.action as RunningAction;
        const childName = `${parentAction.name}-c${parentAction.nextSequence(task.name)}`;
        const record = newActionRecord(name, childName, parentAction.name, task, frame.group, inputs);
        const child = new RunningAction(parentAction.run, parentAction, task, record, frame.customContext);
        return lifecycle().execute(child, args, undefined);
      },
      submitSync: () => {
        throw new TypeError('no blocking calls here');
      },
      beginStep: (frame, kind, stepName, args) => lifecycle().beginStep(frame, kind, stepName, args),
    },
  };
}

describe('the action lifecycle with a placement of its own', () => {
  it('records, retries and completes every action, and starts each attempt through the placement', async () => {
    const d = deps(openStore(`sqlite:${join(root, 'lifecycle.db')}`, { root }));
    const started: string[] = [];
    const placement: Placement = {
      startBody(action: RunningAction, frame: Frame): unknown {
        started.push(`${action.taskName}#${frame.attempt}`);
        return runInFrame(frame, () => action.task.fn(...(action.args as never[])));
      },
    };
    const lifecycle = new ActionLifecycle(d.recorder, d.codec, placement);
    const run = lifecycleRun('contract-lifecycle-1', () => lifecycle);
    const def = taskDefinition(parent);
    assert.ok(def !== undefined);
    // No run row: that is the run side's business. The lifecycle writes only action and attempt rows.
    const inputs = d.codec.encode([20], 'args', def.maxInlineIoBytes);
    const record = newActionRecord(run.name, ROOT_ACTION, null, def, null, inputs);
    flaky = 2;
    const output = await lifecycle.execute(new RunningAction(run, null, def, record, {}), [20], undefined);

    assert.equal(output, 41);
    assert.deepEqual(started, ['contracttest.parent#1', 'contracttest.flakyDouble#1', 'contracttest.flakyDouble#2', 'contracttest.flakyDouble#3']);
    assert.equal(run.live.size, 0, 'every action left the run when it ended');
    const actions = await d.store.listActions(run.name);
    assert.deepEqual(
      actions.map((a) => [a.name, a.phase, a.attempts]),
      [
        ['a0', 'succeeded', 1],
        ['a0-c0', 'succeeded', 3],
      ],
    );
    const attempts = await d.store.listAttempts(run.name, 'a0-c0');
    assert.deepEqual(
      attempts.map((a) => a.phase),
      ['failed', 'failed', 'succeeded'],
    );
    await d.store.close();
  });
});
