/**
 * Runs and their records through the public API: the Run handle, run context options, reading a finished run
 * back (in this process and as a second process would), action records, per-action I/O, attempts and logs,
 * deterministic child names, and `maxActionConcurrency`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeEach, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { initOptions, useFlyteRoot } from './support/flyte-root.js';
import { rootEnv } from './support/test-store.js';
import { Gates, Tracker, settle } from './support/gates.js';

/** A hang (e.g. a gate never opened) fails the suite instead of blocking the test run. */
const SUITE_TIMEOUT_MS = 30_000;

const env = new flyte.TaskEnvironment({ name: 'runtest' });

let gates = new Gates();
let tracker = new Tracker();

export const double = env.task(async function double(x: number) {
  return x * 2;
});

export const sumOfDoubles = env.task(async function sumOfDoubles(items: number[]) {
  const doubled = await Promise.all(items.map((x) => double(x)));
  return doubled.reduce((a, b) => a + b, 0);
});

export const waitsForGate = env.task(async function waitsForGate(key: string) {
  await gates.wait(key);
  return key;
});

export const failsWithTypeError = env.task(async function failsWithTypeError(message: string): Promise<number> {
  throw new TypeError(message);
});

export const talks = env.task(async function talks(x: number) {
  console.log('processing', x, { step: 'one' });
  console.error('careful');
  return x;
});

export const talksAndCalls = env.task(async function talksAndCalls() {
  console.log('root says hi');
  return talks(7);
});

export const reportsContext = env.task(async function reportsContext() {
  const c = flyte.ctx()!;
  return { runName: c.runName, action: c.action.name, customContext: c.customContext };
});

/** Calls `double` the same way every time: names of its children must repeat across runs. */
export const callsTwice = env.task(async function callsTwice() {
  const a = await double(1);
  const b = await double(1);
  const [c, d] = await Promise.all([double(2), double(3)]);
  const e = await flyte.group('g', () => double(1));
  return [a, b, c, d, e];
});

/** A map whose items repeat (4 twice), and a second map: sequences of items and of maps are in the names. */
export const mapsRepeats = env.task(async function mapsRepeats() {
  const first = await flyte.map(double, [4, 4, 'x' as unknown as number]);
  const second = await flyte.map(double, [4]);
  return [...first, ...second];
});

export const callsPlain = env.task(async function callsPlain() {
  return double(9);
});

export const callsInGroup = env.task(async function callsInGroup() {
  return flyte.group('g', () => double(9));
});

/** Calls `gated(first)` then `gated(second)`; the gates decide which finishes first. */
export const twoGated = env.task(async function twoGated(first: string, second: string) {
  return Promise.all([tracked(first), tracked(second)]);
});

export const tracked = env.task(async function tracked(key: string) {
  const t = tracker;
  t.enter(key);
  try {
    await gates.wait(key);
    return key;
  } finally {
    t.leave(key);
  }
});

export const fanOutTracked = env.task(async function fanOutTracked(keys: string[]) {
  return Promise.all(keys.map((k) => tracked(k)));
});

export const leaf = env.task(async function leaf(x: number) {
  const t = tracker;
  t.enter(`leaf${x}`);
  await settle(1);
  t.leave(`leaf${x}`);
  return x;
});

export const middle = env.task(async function middle(x: number) {
  const t = tracker;
  t.enter(`middle${x}`);
  t.leave(`middle${x}`);
  const first = await leaf(x * 10);
  const rest = await Promise.all([leaf(x * 10 + 1), leaf(x * 10 + 2)]);
  return first + rest[0] + rest[1];
});

export const top = env.task(async function top() {
  const parts = await Promise.all([middle(1), middle(2), middle(3)]);
  return parts.reduce((a, b) => a + b, 0);
});

let rootAttempts = 0;
export const flakyRoot = env.task({ retries: { count: 1, backoff: 0 } }, async function flakyRoot() {
  rootAttempts++;
  if (flyte.ctx()!.attempt === 1) throw new Error('first attempt fails');
  return 'second attempt';
});

/** Reads a run in a separate Node process through the public API, and prints what it saw as JSON. */
const READER = `
import * as flyte from 'flyte-ts';
const [root, name] = process.argv.slice(1);
flyte.init({ root, echoLogs: false });
const run = await flyte.getRun(name);
const actions = await run.actions();
const child = actions.find((a) => a.parentName === 'a0');
console.log(JSON.stringify({
  phase: run.phase,
  outputs: await run.outputs(),
  actions: actions.map((a) => [a.name, a.taskName, a.phase]),
  childLogs: (await run.action(child.name).logs()).map((l) => l.line),
}));
await flyte.shutdown();
`;

async function readInAnotherProcess(root: string, name: string): Promise<unknown> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--conditions=flyte-source', '--import', 'tsx', '--input-type=module', '-e', READER, root, name],
    { cwd: fileURLToPath(new URL('..', import.meta.url)), env: { ...process.env, ...rootEnv(root) } },
  );
  return JSON.parse(stdout) as unknown;
}

/** The child names of `callsTwice` and `mapsRepeats` (group, name), as every version since names were hashes gave. */
const PINNED_CALLS_TWICE: readonly string[] = [
  '- a252ab9ee029c9949',
  '- a05670a1c0badc8dc',
  '- aeaf6f283e52e4cc0',
  '- a6acf1d146bd086d4',
  'g a0266cab9ea1e7ca0',
];
const PINNED_MAPS_REPEATS: readonly string[] = [
  'runtest.double_map a4df58ef8d293d378',
  'runtest.double_map a767dea2111203f7f',
  'runtest.double_map af7de43f17eebbcb0',
  'runtest.double_map aa2843516f138561f',
];

function childrenOf(actions: readonly flyte.ActionRecord[], parent = 'a0'): flyte.ActionRecord[] {
  return actions.filter((a) => a.parentName === parent);
}

describe('runs', { timeout: SUITE_TIMEOUT_MS }, () => {
  const root = useFlyteRoot('flyte-run-test-');
  beforeEach(() => {
    gates = new Gates();
    tracker = new Tracker();
  });

  it('starts a run with a readable unique name and a UI url, and waits for its outputs', async () => {
    const run = await flyte.run(sumOfDoubles, [1, 2, 3]);
    assert.match(run.name, /^[a-z]+-[a-z]+-[0-9a-f]{6}$/);
    assert.ok(run.url.includes(encodeURIComponent(run.name)), run.url);
    assert.match(run.url, /^https?:\/\//);
    assert.equal(await run.outputs(), 12);
    assert.equal(run.phase, 'succeeded');
    const names = new Set<string>([run.name]);
    for (let i = 0; i < 20; i++) names.add((await flyte.run(double, i)).name);
    assert.equal(names.size, 21, 'run names are unique');
  });

  it('is running until its root finishes; wait resolves with the terminal record', async () => {
    const run = await flyte.run(waitsForGate, 'go');
    assert.equal(run.phase, 'running');
    assert.equal((await run.record()).phase, 'running');
    await settle();
    assert.equal(run.phase, 'running', 'still waiting for its gate');
    gates.open('go');
    const rec = await run.wait();
    assert.equal(rec.phase, 'succeeded');
    assert.equal(rec.name, run.name);
    assert.equal(rec.taskName, 'runtest.waitsForGate');
    assert.equal(rec.mode, 'local');
    assert.equal(rec.error, null);
    assert.ok(rec.startedAt !== null && rec.endedAt !== null && rec.startedAt <= rec.endedAt);
    assert.equal(run.phase, 'succeeded');
    assert.equal(await run.outputs(), 'go');
  });

  it('wait never rejects for a failed run; outputs rejects with the run error', async () => {
    const run = await flyte.run(failsWithTypeError, 'bad input');
    const rec = await run.wait();
    assert.equal(rec.phase, 'failed');
    assert.equal(run.phase, 'failed');
    assert.equal(rec.error?.code, 'TypeError');
    assert.equal(rec.error?.kind, 'user');
    assert.equal(rec.error?.message, 'bad input');
    await assert.rejects(run.outputs(), (err: unknown) => {
      assert.ok(err instanceof flyte.errors.RuntimeUserError, String(err));
      assert.equal(err.code, 'TypeError');
      assert.equal(err.message, 'bad input');
      assert.equal(err.actionName, 'a0');
      return true;
    });
  });

  it('runs the root through the same path as children: retries apply to it', async () => {
    rootAttempts = 0;
    const run = await flyte.run(flakyRoot);
    assert.equal(await run.outputs(), 'second attempt');
    assert.equal(rootAttempts, 2);
    const [a0] = await run.actions();
    assert.equal(a0?.attempts, 2);
    const attempts = await run.action('a0').attempts();
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.phase, a.error?.message ?? null]),
      [
        [1, 'failed', 'first attempt fails'],
        [2, 'succeeded', null],
      ],
    );
  });

  it('withRunContext sets the name, labels and custom context', async () => {
    const run = await flyte
      .withRunContext({ name: 'nightly-1', labels: { team: 'ml', tier: 'gold' }, customContext: { tenant: 'acme' } })
      .run(reportsContext);
    assert.equal(run.name, 'nightly-1');
    assert.deepEqual(await run.outputs(), { runName: 'nightly-1', action: 'a0', customContext: { tenant: 'acme' } });
    assert.deepEqual((await run.record()).labels, { team: 'ml', tier: 'gold' });
    await assert.rejects(flyte.withRunContext({ name: 'nightly-1' }).run(reportsContext), /nightly-1/);
  });

  it('withRunContext refuses a bad name, a bad maxActionConcurrency and remote mode without a backend', async () => {
    await assert.rejects(flyte.withRunContext({ name: 'has space' }).run(double, 1), TypeError);
    await assert.rejects(flyte.withRunContext({ maxActionConcurrency: -1 }).run(double, 1), RangeError);
    await assert.rejects(flyte.withRunContext({ mode: 'remote' }).run(double, 1), flyte.errors.InitializationError);
    assert.throws(() => flyte.withRunContext(null as never), TypeError);
  });

  it('run.actions() is awaitable as one array, and iterable a page of the store at a time', async () => {
    const run = await flyte.run(sumOfDoubles, Array.from({ length: 2_500 }, (_, i) => i));
    assert.equal(await run.outputs(), 2_500 * 2_499);
    const all = await run.actions();
    assert.equal(all.length, 2_501);
    const streamed: flyte.ActionRecord[] = [];
    for await (const a of run.actions()) streamed.push(a);
    assert.deepEqual(streamed, all, 'for await yields what await does, in creation order');
    const sizes: number[] = [];
    for await (const page of (await flyte.getRun(run.name)).actions().pages(1_000)) sizes.push(page.length);
    assert.deepEqual(sizes, [1_000, 1_000, 501]);
    const exact: number[] = [];
    for await (const page of run.actions().pages(2_501)) exact.push(page.length);
    assert.deepEqual(exact, [2_501], 'a last full page is followed by no empty one');
    assert.throws(() => run.actions().pages(0), /expected a page size from 1 to 10000, received number 0/);
    assert.throws(() => run.actions().pages(1.5), RangeError);
  });

  it('records every action with parent, group, phase, attempts and times', async () => {
    const before = Date.now();
    const run = await flyte.run(callsTwice);
    assert.deepEqual(await run.outputs(), [2, 2, 4, 6, 2]);
    const actions = await run.actions();
    assert.equal(actions.length, 6);
    const [a0, ...children] = actions;
    assert.equal(a0?.name, 'a0');
    assert.equal(a0?.parentName, null);
    assert.equal(a0?.taskName, 'runtest.callsTwice');
    assert.equal(a0?.shortName, 'callsTwice');
    for (const a of actions) {
      assert.equal(a.runName, run.name);
      assert.equal(a.phase, 'succeeded');
      assert.equal(a.attempts, 1);
      assert.equal(a.cacheHit, false);
      assert.equal(a.error, null);
      assert.ok(a.startedAt !== null && a.startedAt >= before, `startedAt of ${a.name}`);
      assert.ok(a.endedAt !== null && a.endedAt >= a.startedAt, `endedAt of ${a.name}`);
    }
    for (const c of children) {
      assert.equal(c.parentName, 'a0');
      assert.equal(c.taskName, 'runtest.double');
      assert.equal(c.shortName, 'double');
      assert.match(c.name, /^a[0-9a-f]+$/);
      assert.ok(c.startedAt! >= a0.startedAt! && c.endedAt! <= a0.endedAt!, 'children run within their parent');
    }
    assert.deepEqual(
      children.map((c) => c.group),
      [null, null, null, null, 'g'],
    );
    assert.equal(new Set(actions.map((a) => a.name)).size, actions.length, 'action names are distinct');
  });

  it('gives identical calls under one parent distinct names, and the same names on every run', async () => {
    const first = await flyte.run(callsTwice);
    const second = await flyte.run(callsTwice);
    await Promise.all([first.wait(), second.wait()]);
    const names = async (run: flyte.Run): Promise<string[]> => childrenOf(await run.actions()).map((a) => a.name);
    const n1 = await names(first);
    const n2 = await names(second);
    assert.equal(new Set(n1).size, 5, 'double(1), double(1) and double(1) in a group get three different names');
    assert.deepEqual(new Set(n2), new Set(n1), 'same calls, same names');
    const inputsByName = new Map<string, unknown>();
    for (const name of n1) inputsByName.set(name, await first.action(name).inputs());
    for (const name of n2) assert.deepEqual(await second.action(name).inputs(), inputsByName.get(name));
  });

  it('names children as earlier versions did, so that recovery finds the children of runs they recorded', async () => {
    // Pinned: a name hashes its parent, the inputs hash (SHA-256 of the inputs' devalue text), the task, the
    // sequence of identical calls and the group. A change of any of them renames every child of an older run.
    const named = async (task: typeof callsTwice | typeof mapsRepeats): Promise<string[]> => {
      const run = await flyte.run(task);
      await run.wait();
      return childrenOf(await run.actions()).map((a) => `${a.group ?? '-'} ${a.name}`);
    };
    assert.deepEqual(await named(callsTwice), PINNED_CALLS_TWICE);
    assert.deepEqual(await named(mapsRepeats), PINNED_MAPS_REPEATS);
  });

  it('makes the group part of a child name', async () => {
    const onlyChild = async (task: typeof callsPlain): Promise<string> => {
      const run = await flyte.run(task);
      await run.wait();
      const [child] = childrenOf(await run.actions());
      return child!.name;
    };
    const plain = await onlyChild(callsPlain);
    assert.equal(await onlyChild(callsPlain), plain);
    assert.notEqual(await onlyChild(callsInGroup), plain, 'the same first call of double(9), but in a group');
  });

  it('names children by call order, not by completion order', async () => {
    // Run 1: 'x' finishes first. Run 2: 'y' finishes first. The child called with 'x' has one name in both.
    const nameOfX = async (finishFirst: string, finishSecond: string): Promise<string> => {
      gates = new Gates();
      tracker = new Tracker();
      const run = await flyte.run(twoGated, 'x', 'y');
      await tracker.untilStarted(2);
      gates.open(finishFirst);
      await tracker.untilFinished(1);
      gates.open(finishSecond);
      assert.deepEqual(await run.outputs(), ['x', 'y']);
      assert.deepEqual(tracker.finished, [finishFirst, finishSecond]);
      const children = childrenOf(await run.actions());
      for (const c of children) {
        const [key] = (await run.action(c.name).inputs()) as [string];
        if (key === 'x') return c.name;
      }
      throw new Error('no child called with x');
    };
    assert.equal(await nameOfX('x', 'y'), await nameOfX('y', 'x'));
  });

  it('keeps the inputs, outputs and attempts of every action', async () => {
    const run = await flyte.run(sumOfDoubles, [4, 5]);
    await run.wait();
    assert.deepEqual(await run.action('a0').inputs(), [[4, 5]]);
    assert.equal(await run.action('a0').outputs(), 18);
    const children = childrenOf(await run.actions());
    const io = await Promise.all(
      children.map(async (c) => [await run.action(c.name).inputs(), await run.action(c.name).outputs()]),
    );
    assert.deepEqual(
      io.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        [[4], 8],
        [[5], 10],
      ],
    );
    const [attempt] = await run.action(children[0]!.name).attempts();
    assert.equal(attempt?.attempt, 1);
    assert.equal(attempt?.phase, 'succeeded');
    assert.equal(attempt?.actionName, children[0]!.name);
    assert.ok(attempt.endedAt! >= attempt.startedAt);
    const a0 = await run.action('a0').record();
    assert.equal(a0?.phase, 'succeeded');
    assert.equal(await run.action('no-such-action').record(), undefined);
  });

  it('captures console output of a task body as the log lines of its own action', async () => {
    const run = await flyte.run(talksAndCalls);
    assert.equal(await run.outputs(), 7);
    const rootLogs = await run.action('a0').logs();
    assert.deepEqual(
      rootLogs.map((l) => [l.stream, l.line]),
      [['stdout', 'root says hi']],
    );
    const [child] = childrenOf(await run.actions());
    const logs = await run.action(child!.name).logs();
    assert.deepEqual(
      logs.map((l) => [l.stream, l.line, l.attempt, l.actionName, l.runName]),
      [
        ['stdout', "processing 7 { step: 'one' }", 1, child!.name, run.name],
        ['stderr', 'careful', 1, child!.name, run.name],
      ],
    );
    assert.ok(logs.every((l) => typeof l.at === 'number' && l.at > 0));
  });

  it('reads a finished run back with getRun', async () => {
    const live = await flyte.run(sumOfDoubles, [1, 1]);
    await live.wait();
    const past = await flyte.getRun(live.name);
    assert.equal(past.name, live.name);
    assert.equal(past.phase, 'succeeded');
    assert.equal(await past.outputs(), 4);
    assert.deepEqual(await past.actions(), await live.actions());
    await past.abort('too late'); // aborting a finished run does nothing
    assert.equal((await past.record()).phase, 'succeeded');
    await assert.rejects(flyte.getRun('no-such-run'), RangeError);
    await assert.rejects(flyte.getRun(''), TypeError);
  });

  it('returns a live handle from getRun while the run is going on', async () => {
    const run = await flyte.run(waitsForGate, 'later');
    const same = await flyte.getRun(run.name);
    assert.equal(same.phase, 'running');
    gates.open('later');
    assert.equal(await same.outputs(), 'later');
    assert.equal(same.phase, 'succeeded');
  });

  it('is readable from another process once it has ended', async () => {
    const run = await flyte.run(talksAndCalls);
    await run.wait();
    const actions = await run.actions();
    assert.deepEqual(await readInAnotherProcess(root(), run.name), {
      phase: 'succeeded',
      outputs: 7,
      actions: actions.map((a) => [a.name, a.taskName, a.phase]),
      childLogs: ["processing 7 { step: 'one' }", 'careful'],
    });
  });

  it('reads a run back after shutdown and init on the same root, as a second process would', async () => {
    const run = await flyte.withRunContext({ name: 'persisted-run', labels: { kept: 'yes' } }).run(talksAndCalls);
    await run.wait();
    const failed = await flyte.run(failsWithTypeError, 'kept error');
    await failed.wait();
    const actionsBefore = await run.actions();
    const [child] = childrenOf(actionsBefore);

    await flyte.shutdown();
    flyte.init(initOptions(root()));

    const past = await flyte.getRun('persisted-run');
    assert.equal(past.phase, 'succeeded');
    const rec = await past.wait();
    assert.equal(rec.phase, 'succeeded');
    assert.deepEqual(rec.labels, { kept: 'yes' });
    assert.equal(rec.taskName, 'runtest.talksAndCalls');
    assert.equal(await past.outputs(), 7);
    assert.deepEqual(await past.actions(), actionsBefore);
    assert.deepEqual(await past.action(child!.name).inputs(), [7]);
    assert.equal(await past.action(child!.name).outputs(), 7);
    assert.deepEqual(
      (await past.action(child!.name).logs()).map((l) => l.line),
      ["processing 7 { step: 'one' }", 'careful'],
    );
    assert.equal((await past.action(child!.name).attempts()).length, 1);

    const pastFailure = await flyte.getRun(failed.name);
    assert.equal(pastFailure.phase, 'failed');
    await assert.rejects(pastFailure.outputs(), (err: unknown) => {
      assert.ok(err instanceof flyte.errors.RuntimeUserError);
      assert.equal(err.code, 'TypeError');
      assert.equal(err.message, 'kept error');
      return true;
    });
  });
});

describe('maxActionConcurrency', { timeout: SUITE_TIMEOUT_MS }, () => {
  useFlyteRoot('flyte-run-test-');
  beforeEach(() => {
    gates = new Gates();
    tracker = new Tracker();
  });

  it('runs at most that many actions at once, the others queued', async () => {
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
    const run = await flyte.withRunContext({ maxActionConcurrency: 2 }).run(fanOutTracked, keys);
    for (let done = 0; done < keys.length; done++) {
      const expected = Math.min(done + 2, keys.length);
      await tracker.untilStarted(expected);
      await settle();
      assert.equal(tracker.started.length, expected, `after ${done} finished, ${expected} have started`);
      assert.equal(tracker.inFlight, expected - done);
      if (done === 0) {
        const phases = childrenOf(await run.actions()).map((a) => a.phase);
        assert.deepEqual(
          [...phases].sort(),
          ['queued', 'queued', 'queued', 'queued', 'running', 'running'],
          'waiting actions are recorded as queued',
        );
      }
      gates.open(tracker.started[done]!);
      await tracker.untilFinished(done + 1);
    }
    assert.deepEqual(await run.outputs(), keys);
    assert.equal(tracker.maxInFlight, 2);
  });

  it('aborts the queued actions with the running ones', async () => {
    const run = await flyte.withRunContext({ maxActionConcurrency: 1 }).run(fanOutTracked, ['q0', 'q1', 'q2']);
    await tracker.untilStarted(1);
    await run.abort('stop');
    assert.equal((await run.wait()).phase, 'aborted');
    const phases = childrenOf(await run.actions()).map((a) => a.phase);
    assert.deepEqual(phases, ['aborted', 'aborted', 'aborted']);
    await settle();
    assert.deepEqual(tracker.started, ['q0'], 'a queued action never starts once aborted');
  });

  it('does not deadlock a 3-deep tree with maxActionConcurrency 1', { timeout: 10_000 }, async () => {
    const run = await flyte.withRunContext({ maxActionConcurrency: 1 }).run(top);
    assert.equal(await run.outputs(), 10 + 11 + 12 + 20 + 21 + 22 + 30 + 31 + 32);
    assert.equal(tracker.maxInFlight, 1, 'never two bodies at once');
    const actions = await run.actions();
    assert.equal(actions.length, 1 + 3 + 9);
    assert.ok(actions.every((a) => a.phase === 'succeeded'));
  });
});
