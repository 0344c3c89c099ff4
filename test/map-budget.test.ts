/**
 * The failure budget of `flyte.map` (`minSuccessRatio`, `maxFailures`) through the public API: while it holds
 * the map returns failed items as errors; the moment it breaks the map aborts what runs, starts nothing more and
 * rejects with `flyte.errors.MapFailureBudgetExceeded`, counts and first errors included, which a parent that
 * lets it escape records as its error. Awaited, iterated in both orders, over inputs of unknown size, in sync
 * maps on the thread pool, and on `flyte worker` processes (Redis + Postgres; skipped without them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import * as tasks from './fixtures/budget-tasks.js';
import { REPO, ensureBuilt, parseJson, runCli } from './support/cli.js';
import { useFlyteRoot } from './support/flyte-root.js';
import { Gates, Tracker, settle } from './support/gates.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from './support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from './support/workers.js';

const SUITE_TIMEOUT_MS = 60_000;
const { MapFailureBudgetExceeded, RuntimeUserError } = flyte.errors;

const env = new flyte.TaskEnvironment({ name: 'budgettest' });

let gates = new Gates();
let tracker = new Tracker();
/** Items whose signal fired, and stopped their body. */
let stopped = new Map<string, number>();
/** Items whose body went past its gate (did its work). */
let worked = new Map<string, number>();
let scenario: () => PromiseLike<unknown> = () => Promise.resolve();

/** The run of the test whose budget broke, for the CLI check after it. */
let brokenRun: string | undefined;

const bump = (counts: Map<string, number>, id: string): void => void counts.set(id, (counts.get(id) ?? 0) + 1);

export const root = env.task(async function root() {
  return scenario();
});

/** Waits for its gate or its signal; ids starting with `fail` then throw a TypeError. */
export const gated = env.task(async function gated(id: string): Promise<string> {
  const [t, seenStops, seenWork] = [tracker, stopped, worked];
  const signal = flyte.ctx()?.signal;
  t.enter(id);
  try {
    await new Promise<void>((resolve, reject) => {
      void gates.wait(id).then(resolve);
      signal?.addEventListener('abort', () => {
        bump(seenStops, id);
        reject(signal.reason as Error);
      });
    });
  } finally {
    t.leave(id);
  }
  bump(seenWork, id);
  if (id.startsWith('fail')) throw new TypeError(`item ${id} failed`);
  return id;
});

/** Negative items fail with a RangeError, the others are doubled. */
export const instant = env.task(async function instant(x: number): Promise<number> {
  if (x < 0) throw new RangeError(`negative: ${x}`);
  return x * 2;
});

function* generate<T>(items: readonly T[]): Generator<T> {
  yield* items;
}

async function startScenario(body: () => PromiseLike<unknown>): Promise<flyte.Run> {
  scenario = body;
  return flyte.run(root);
}

/** Runs `body` as a run's root and gives what it returned, or what it threw. */
async function outcome(body: () => PromiseLike<unknown>): Promise<unknown> {
  const run = await startScenario(async () => {
    try {
      return { value: await body() };
    } catch (e) {
      return { error: e instanceof MapFailureBudgetExceeded ? tasks.summary(e) : String(e) };
    }
  });
  return run.outputs();
}

function counts(e: InstanceType<typeof MapFailureBudgetExceeded>): unknown {
  const { total, succeeded, failed, cancelled, notStarted, allowedFailures } = e;
  return { total, succeeded, failed, cancelled, notStarted, allowedFailures };
}

/** The map's children by their input (`gated`'s id), from the run's records. */
async function childrenByInput(run: flyte.Run): Promise<Map<string, flyte.ActionRecord>> {
  const kids = (await run.actions()).filter((a) => a.parentName === 'a0');
  const pairs = await Promise.all(
    kids.map(async (a) => [((await run.action(a.name).inputs()) as [string])[0], a] as const),
  );
  return new Map(pairs);
}

describe('flyte.map failure budget', { timeout: SUITE_TIMEOUT_MS }, () => {
  const flyteRoot = useFlyteRoot('flyte-budget-', { threads: 2 });

  beforeEach(() => {
    gates = new Gates();
    tracker = new Tracker();
    stopped = new Map();
    worked = new Map();
  });

  it('while it holds, returns the results with failed items as errors, like returnExceptions', async () => {
    const out = await outcome(async () => {
      const byCount = await flyte.map(instant, [1, -2, 3, -4], { maxFailures: 2 });
      const byRatio = await flyte.map(instant, [1, -2, 3, 4], { minSuccessRatio: 0.75 });
      const both = await flyte.map(instant, [-1, 2, 3, 4], {
        minSuccessRatio: 0.5,
        maxFailures: 1,
        returnExceptions: true,
      });
      const show = (rs: unknown[]): unknown[] => rs.map((r) => (r instanceof RuntimeUserError ? `error:${r.code}` : r));
      return [show(byCount), show(byRatio), show(both)];
    });
    assert.deepEqual(out, {
      value: [
        [2, 'error:RangeError', 6, 'error:RangeError'],
        [2, 'error:RangeError', 6, 8],
        ['error:RangeError', 4, 6, 8],
      ],
    });
  });

  it('breaks the moment one failure too many happens: aborts the running items, starts no more, rejects', async () => {
    // 8 items, minSuccessRatio 0.8: floor(8 × 0.2) = 1 failure allowed; 4 at a time.
    const ids = ['fail0', 's1', 'fail2', 's3', 'n4', 'n5', 'n6', 'n7'];
    const run = await startScenario(() => flyte.map(gated, ids, { minSuccessRatio: 0.8, concurrency: 4 }));
    await tracker.untilStarted(4);
    gates.open('fail0'); // 1 failure: the budget holds, n4 takes the slot
    await tracker.untilStarted(5);
    gates.open('s1');
    await tracker.untilStarted(6);
    gates.open('fail2'); // 2 failures: broken
    const error = await run.outputs().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    // Rebuilt from the root's stored error: the class, its counts and first errors survive the round trip.
    assert.ok(error instanceof MapFailureBudgetExceeded, String(error));
    assert.equal(error.name, 'MapFailureBudgetExceeded');
    assert.equal(error.code, 'MapFailureBudgetExceeded');
    assert.deepEqual(counts(error), {
      total: 8,
      succeeded: 1,
      failed: 2,
      cancelled: 3,
      notStarted: 2,
      allowedFailures: 1,
    });
    assert.equal(error.minSuccessRatio, 0.8);
    assert.equal(error.maxFailures, null);
    assert.deepEqual(
      error.firstErrors.map((f) => [f.index, f.code, f.message]),
      [
        [0, 'TypeError', 'item fail0 failed'],
        [2, 'TypeError', 'item fail2 failed'],
      ],
    );
    assert.match(error.message, /2 of 8 items failed, expected at most 1 \(minSuccessRatio 0\.8\)/);
    const rootRecord = (await run.actions()).find((a) => a.name === 'a0');
    assert.equal(rootRecord?.phase, 'failed');
    assert.equal(rootRecord?.error?.code, 'MapFailureBudgetExceeded');
    assert.equal((await run.record()).error?.code, 'MapFailureBudgetExceeded');
    const byInput = await childrenByInput(run);
    assert.equal(byInput.get('fail0')?.phase, 'failed');
    assert.equal(byInput.get('fail0')?.name, error.firstErrors[0]?.actionName);
    assert.equal(byInput.get('s1')?.phase, 'succeeded');
    for (const id of ['s3', 'n4', 'n5']) {
      assert.equal(byInput.get(id)?.phase, 'aborted', id);
      assert.equal(byInput.get(id)?.error?.code, 'ActionAbortedError');
    }
    assert.ok(!byInput.has('n6') && !byInput.has('n7'), 'the items not started have no action');
    // Opening every gate now changes nothing: the cancelled items stopped on their signal, the others never ran.
    gates.openAll();
    await settle();
    assert.deepEqual(Object.fromEntries(stopped), { s3: 1, n4: 1, n5: 1 });
    assert.deepEqual(Object.fromEntries(worked), { fail0: 1, s1: 1, fail2: 1 });
    assert.deepEqual(tracker.started.sort(), ['fail0', 'fail2', 'n4', 'n5', 's1', 's3']);
    brokenRun = run.name;
  });

  it('flyte get run shows the failed run with the code', async () => {
    assert.ok(brokenRun !== undefined, 'the test before left a run');
    ensureBuilt();
    const got = parseJson<{ run: { phase: string; error: { code: string; message: string } | null } }>(
      await runCli(['get', 'run', brokenRun, '-o', 'json'], { root: flyteRoot() }),
    );
    assert.equal(got.run.phase, 'failed');
    assert.equal(got.run.error?.code, 'MapFailureBudgetExceeded');
    assert.match(got.run.error?.message ?? '', /2 of 8 items failed/);
  });

  it('maxFailures counts failures; combined with a ratio, the first limit to break wins', async () => {
    const first = await outcome(() => flyte.map(instant, [1, -1, 2, 3], { maxFailures: 0, concurrency: 1 }));
    assert.deepEqual(first, {
      error: {
        name: 'MapFailureBudgetExceeded',
        code: 'MapFailureBudgetExceeded',
        total: 4,
        succeeded: 1,
        failed: 1,
        cancelled: 0,
        notStarted: 2,
        allowedFailures: 0,
        firstErrors: [[1, 'RangeError']],
      },
    });
    // The ratio allows 3 of 6, maxFailures only 1.
    const both = (await outcome(() =>
      flyte.map(instant, [-1, -2, 3, 4, 5, 6], { minSuccessRatio: 0.5, maxFailures: 1, concurrency: 1 }),
    )) as { error: tasks.BudgetSummary };
    assert.equal(both.error.allowedFailures, 1);
    assert.equal(both.error.failed, 2);
    assert.equal(both.error.notStarted, 4);
    // floor(10 × (1 − 0.9)) is 1, not 0: float noise costs no failure.
    const tenth = await outcome(
      async () => (await flyte.map(instant, [-1, 1, 2, 3, 4, 5, 6, 7, 8, 9], { minSuccessRatio: 0.9 })).length,
    );
    assert.deepEqual(tenth, { value: 10 });
  });

  it('over an input of unknown size, applies the ratio once the input is exhausted; maxFailures at once', async () => {
    const items = [-1, -2, -3, 4];
    // Sized: 4 items at 0.5 allow 2 failures; the third breaks it and item 4 never starts.
    const sized = (await outcome(() => flyte.map(instant, items, { minSuccessRatio: 0.5, concurrency: 1 }))) as {
      error: tasks.BudgetSummary;
    };
    assert.deepEqual(
      [sized.error.total, sized.error.failed, sized.error.succeeded, sized.error.notStarted],
      [4, 3, 0, 1],
    );
    // A generator: three failures go by (more items could make up for them); at its end the total is 4.
    const unsized = (await outcome(() =>
      flyte.map(instant, generate(items), { minSuccessRatio: 0.5, concurrency: 1 }),
    )) as {
      error: tasks.BudgetSummary;
    };
    assert.deepEqual(
      [
        unsized.error.total,
        unsized.error.failed,
        unsized.error.succeeded,
        unsized.error.notStarted,
        unsized.error.allowedFailures,
      ],
      [4, 3, 1, 0, 2],
    );
    // Enough successes after the failures: it holds.
    const holds = await outcome(
      async () => (await flyte.map(instant, generate([-1, -2, 3, 4]), { minSuccessRatio: 0.5, concurrency: 1 })).length,
    );
    assert.deepEqual(holds, { value: 4 });
    // maxFailures breaks before the end of the input: the total is not known.
    const early = (await outcome(() =>
      flyte.map(instant, generate([-1, -2, 3, 4]), { maxFailures: 1, concurrency: 1 }),
    )) as {
      error: tasks.BudgetSummary;
    };
    assert.deepEqual([early.error.total, early.error.notStarted, early.error.failed], [null, null, 2]);
  });

  it('asCompleted yields until the budget breaks, then throws at once', async () => {
    const received: unknown[] = [];
    let thrown: unknown;
    const run = await startScenario(async () => {
      try {
        for await (const r of flyte.map(gated, ['s0', 'fail1', 'fail2', 's3'], { maxFailures: 1 }).asCompleted()) {
          received.push(r instanceof RuntimeUserError ? `error:${r.code}` : r);
        }
      } catch (e) {
        thrown = e;
      }
    });
    await tracker.untilStarted(4);
    gates.open('s0');
    gates.open('fail1');
    await tracker.untilFinished(2);
    await settle();
    gates.open('fail2');
    await run.outputs();
    assert.deepEqual(received.sort(), ['error:TypeError', 's0']);
    assert.ok(thrown instanceof MapFailureBudgetExceeded, String(thrown));
    assert.deepEqual(counts(thrown), {
      total: 4,
      succeeded: 1,
      failed: 2,
      cancelled: 1,
      notStarted: 0,
      allowedFailures: 1,
    });
    assert.deepEqual(Object.fromEntries(stopped), { s3: 1 });
  });

  it('for await in input order throws as soon as it breaks, without waiting for the item at its turn', async () => {
    let thrown: unknown;
    const received: unknown[] = [];
    const run = await startScenario(async () => {
      try {
        for await (const r of flyte.map(gated, ['s0', 'fail1', 's2'], { maxFailures: 0 })) received.push(r);
      } catch (e) {
        thrown = e;
      }
    });
    await tracker.untilStarted(3);
    gates.open('fail1'); // s0, at the head, still runs
    await run.outputs();
    assert.deepEqual(received, []);
    assert.ok(thrown instanceof MapFailureBudgetExceeded);
    assert.deepEqual(counts(thrown), {
      total: 3,
      succeeded: 0,
      failed: 1,
      cancelled: 2,
      notStarted: 0,
      allowedFailures: 0,
    });
    assert.deepEqual(Object.fromEntries(stopped), { s0: 1, s2: 1 });
  });

  it('works outside a run too, on plain calls', async () => {
    await assert.rejects(async () => flyte.map(instant, [-1, -2, 3], { maxFailures: 1 }), MapFailureBudgetExceeded);
  });

  it('refuses bad budgets, and a budget with returnExceptions: false', () => {
    const throwsWith = (fn: () => unknown, type: ErrorConstructor, ...words: string[]): void =>
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof type, String(e));
        for (const w of words) assert.ok(e.message.includes(w), `${e.message} mentions ${w}`);
        return true;
      });
    for (const bad of [1.5, -0.1, Number.NaN, '0.5']) {
      throwsWith(
        () => flyte.map(instant, [1], { minSuccessRatio: bad as number }),
        RangeError,
        'minSuccessRatio',
        'from 0 to 1',
        'received',
      );
    }
    for (const bad of [-1, 1.5, Infinity, '2']) {
      throwsWith(
        () => flyte.map(instant, [1], { maxFailures: bad as number }),
        RangeError,
        'maxFailures',
        'non-negative integer',
        'received',
      );
    }
    throwsWith(
      () => flyte.map(instant, [1], { maxFailures: 1, returnExceptions: false } as flyte.MapOptions),
      TypeError,
      'maxFailures',
      'returnExceptions: false',
    );
    throwsWith(
      () => flyte.map(instant, [1], { minSuccessRatio: 0.5, returnExceptions: false } as flyte.MapOptions),
      TypeError,
      'minSuccessRatio',
    );
  });

  it('in a sync map on the thread pool: holds, breaks (sized and unknown size), and escapes as the error', async () => {
    const holds = await (await flyte.run(tasks.syncMap, [0, -1, 0, 0], { maxFailures: 1 }, false)).outputs();
    assert.deepEqual(holds, { results: [0, 'error:ValueError', 0, 0] });
    // 3 items at 0.5 allow 1 failure: the second breaks it, the third never starts.
    const sized = await (
      await flyte.run(tasks.syncMap, [-1, -2, 0], { minSuccessRatio: 0.5, concurrency: 1 }, false)
    ).outputs();
    assert.deepEqual(sized, {
      budget: {
        name: 'MapFailureBudgetExceeded',
        code: 'MapFailureBudgetExceeded',
        total: 3,
        succeeded: 0,
        failed: 2,
        cancelled: 0,
        notStarted: 1,
        allowedFailures: 1,
        firstErrors: [
          [0, 'ValueError'],
          [1, 'ValueError'],
        ],
      },
    });
    // A generator: checked once the body's thread finds the input exhausted, after every result was consumed.
    const unsized = await (
      await flyte.run(tasks.syncMap, [-1, -2, 0], { minSuccessRatio: 0.5, concurrency: 1 }, true)
    ).outputs();
    assert.ok('budget' in unsized);
    assert.deepEqual(
      [unsized.budget.total, unsized.budget.failed, unsized.budget.succeeded, unsized.budget.notStarted],
      [3, 2, 1, 0],
    );
    const unsizedHolds = await (
      await flyte.run(tasks.syncMap, [-1, 0, 0], { minSuccessRatio: 0.5, concurrency: 1 }, true)
    ).outputs();
    assert.deepEqual(unsizedHolds, { results: ['error:ValueError', 0, 0] });
  });

  it('a sync map whose budget breaks aborts its running items and fails its task with the code', async () => {
    // Two fail at once; the long items are running (or queued) when the second failure breaks the budget.
    const items = [-1, -2, 20_000, 20_000, 20_000, 20_000];
    const run = await flyte.run(tasks.syncMapEscapes, items, { maxFailures: 1, concurrency: 3 });
    const error = await run.outputs().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof MapFailureBudgetExceeded, String(error));
    assert.equal(error.failed, 2);
    assert.equal(error.total, 6);
    assert.equal(error.succeeded + error.failed + error.cancelled + (error.notStarted ?? -1), 6);
    const actions = await run.actions();
    assert.equal(actions.find((a) => a.name === 'a0')?.error?.code, 'MapFailureBudgetExceeded');
    const kids = actions.filter((a) => a.parentName === 'a0');
    assert.equal(kids.filter((a) => a.phase === 'failed').length, 2);
    assert.equal(kids.filter((a) => a.phase === 'aborted').length, error.cancelled);
    assert.ok(error.cancelled >= 1, 'a long item was running');
    assert.equal(kids.length, 6 - (error.notStarted ?? 0), 'the items not started have no action');
  });
});

const remoteSkip = (await postgresSkip()) || (await redisSkip());

describe('flyte.map failure budget on flyte worker processes', { skip: remoteSkip, timeout: 120_000 }, () => {
  const FIXTURE = join(REPO, 'test', 'fixtures', 'budget-tasks.ts');
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_budget_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  const markers = mkdtempSync(join(tmpdir(), 'flyte-budget-markers-'));
  let workers: WorkerProcess[] = [];

  before(async () => {
    await flyte.shutdown(); // the local suite's runtime: this one is distributed
    flyte.init({ root: mkdtempSync(join(tmpdir(), 'flyte-budget-remote-')), store, engine, echoLogs: false });
    workers = await Promise.all(
      [1, 2].map(() =>
        startWorker({ modules: [FIXTURE], store, engine, concurrency: 4, env: { FLYTE_TEST_MARKERS: markers } }),
      ),
    );
  });

  after(async () => {
    const drained = await stopWorkers(workers);
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
    rmSync(markers, { recursive: true, force: true });
    drained();
  });

  it('an async map breaks on the workers: running items stop on their signal, the parent records the code', async () => {
    // Three long items run with the failure (concurrency 4), which comes once they run; the rest never start.
    // (It comes late on purpose: an abort that reaches a child between its record and its enqueue can be lost
    // on the remote controller, with returnExceptions: false as well; see the report of issue 14.)
    const items = [60_000, 60_001, -1_000, 60_002, 0, 0, 0];
    const run = await flyte.run(
      tasks.asyncMap,
      items,
      process.env.STRICT ? { returnExceptions: false, concurrency: 4 } : { maxFailures: 0, concurrency: 4 },
    );
    const error = await run.outputs().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof MapFailureBudgetExceeded, String(error));
    assert.equal((await run.record()).mode, 'remote');
    assert.deepEqual(counts(error), {
      total: 7,
      succeeded: 0,
      failed: 1,
      cancelled: 3,
      notStarted: 3,
      allowedFailures: 0,
    });
    assert.deepEqual(
      error.firstErrors.map((f) => [f.index, f.code, f.message]),
      [[2, 'ValueError', 'item -1000 failed']],
    );
    // The aborts reach the other workers after the parent failed: wait (with a deadline) for every action to end.
    let actions = await run.actions();
    for (const deadline = Date.now() + 15_000; actions.some((a) => a.phase === 'running' || a.phase === 'queued');) {
      assert.ok(Date.now() < deadline, `actions still open: ${actions.map((a) => `${a.name} ${a.phase}`).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      actions = await run.actions();
    }
    assert.equal(actions.find((a) => a.name === 'a0')?.error?.code, 'MapFailureBudgetExceeded');
    const kids = actions.filter((a) => a.parentName === 'a0');
    assert.deepEqual(kids.map((a) => a.phase).sort(), ['aborted', 'aborted', 'aborted', 'failed']);
    // Each long item that got to start on a worker stopped on its signal; none did its work.
    const lines = readFileSync(join(markers, 'markers.txt'), 'utf8').trim().split('\n');
    const started = lines
      .filter((l) => l.startsWith('started '))
      .map((l) => l.slice(8))
      .sort();
    const stoppedOnes = lines
      .filter((l) => l.startsWith('stopped '))
      .map((l) => l.slice(8))
      .sort();
    assert.ok(started.length >= 1, lines.join('\n'));
    assert.deepEqual(stoppedOnes, started);
    assert.ok(!lines.some((l) => l.startsWith('done ')), lines.join('\n'));
  });

  it('a sync map breaks on the workers as locally', async () => {
    const out = await (
      await flyte.run(tasks.syncMap, [-1, -2, 0], { minSuccessRatio: 0.5, concurrency: 1 }, true)
    ).outputs();
    assert.ok('budget' in out, JSON.stringify(out));
    assert.deepEqual(
      [out.budget.code, out.budget.total, out.budget.failed, out.budget.succeeded],
      ['MapFailureBudgetExceeded', 3, 2, 1],
    );
  });
});
