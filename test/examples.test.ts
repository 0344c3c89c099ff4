/**
 * Runs every file of `examples/` as a user would (its own process, its own local state under a fresh
 * FLYTE_ROOT), checks the `result:` line it prints, then opens the state it left behind and checks what the run
 * recorded: actions, groups, phases, attempts.
 *
 * The examples run in parallel (a few at a time) in `before`; the store checks run one after the other because
 * `flyte.init` configures one runtime per process.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as flyte from 'flyte-ts';
import type { ActionRecord } from 'flyte-ts';
import { runTsx } from '../scripts/run-tsx.js';
import { initOptions, rootEnv } from './support/test-store.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** A hung example is killed after this long (the slow ones would otherwise sleep for a minute). */
const EXAMPLE_TIMEOUT_MS = 30_000;
/** Examples that run at once. */
const PARALLEL = Math.max(2, Math.min(4, os.availableParallelism()));

/** Every temporary FLYTE_ROOT, removed after the tests. */
const roots: string[] = [];

interface ExampleOutcome {
  readonly file: string;
  readonly root: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly elapsedMs: number;
}

/** Runs one example with tsx, its state in a fresh temporary FLYTE_ROOT. */
async function runExample(file: string): Promise<ExampleOutcome> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'flyte-example-'));
  roots.push(root);
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Neither the test runner's context nor a store chosen by the caller's environment may leak into the example:
  // it gets the root's store (`FLYTE_TEST_STORE`).
  delete env.NODE_TEST_CONTEXT;
  delete env.FLYTE_STORE;
  Object.assign(env, rootEnv(root));
  const started = Date.now();
  const { code: exitCode, signal, stdout, stderr } = await runTsx(path.join('examples', file), {
    cwd: REPO,
    env,
    timeoutMs: EXAMPLE_TIMEOUT_MS,
  });
  return { file, root, exitCode, signal, stdout, stderr, elapsedMs: Date.now() - started };
}

const EXAMPLES = [
  'abort.ts',
  'as-completed.ts',
  'async-chain.ts',
  'error-handling.ts',
  'failure-budget.ts',
  'gather.ts',
  'groups.ts',
  'map-concurrency.ts',
  'retries.ts',
  'semaphore.ts',
  'sequential.ts',
  'timeouts.ts',
] as const;
type ExampleFile = (typeof EXAMPLES)[number];

const outcomes = new Map<ExampleFile, Promise<ExampleOutcome>>();

before(() => {
  const slots = new flyte.Semaphore(PARALLEL);
  for (const file of EXAMPLES) {
    outcomes.set(
      file,
      slots.run(() => runExample(file)),
    );
  }
});

after(async () => {
  await flyte.shutdown();
  await Promise.allSettled(outcomes.values());
  await Promise.all(roots.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** The value after `label: ` on the line that starts with it. */
function line(o: ExampleOutcome, label: string): string {
  const found = o.stdout.split('\n').find((l) => l.startsWith(`${label}: `));
  assert.ok(found !== undefined, `${o.file} printed no "${label}:" line\nstdout:\n${o.stdout}\nstderr:\n${o.stderr}`);
  return found.slice(label.length + 2);
}

/**
 * Checks that the example exited 0 and printed `expected` as its result, then hands its recorded run to `check`
 * (the example's state directory opened in this process).
 */
async function expectExample(
  file: ExampleFile,
  expected: unknown,
  check?: (run: flyte.Run, actions: ActionRecord[], o: ExampleOutcome) => Promise<void> | void,
): Promise<void> {
  const o = await (outcomes.get(file) as Promise<ExampleOutcome>);
  assert.equal(
    o.exitCode,
    0,
    `${file} exited with ${o.exitCode ?? o.signal}\nstdout:\n${o.stdout}\nstderr:\n${o.stderr}`,
  );
  assert.equal(line(o, 'result'), JSON.stringify(expected));
  if (check === undefined) return;
  flyte.init(initOptions(o.root));
  try {
    const run = await flyte.getRun(line(o, 'run'));
    await check(run, await run.actions(), o);
  } finally {
    await flyte.shutdown();
  }
}

function children(actions: ActionRecord[], parentName = 'a0'): ActionRecord[] {
  return actions.filter((a) => a.parentName === parentName);
}

function root(actions: ActionRecord[]): ActionRecord {
  const a0 = actions.find((a) => a.name === 'a0');
  assert.ok(a0 !== undefined, 'the run has no root action a0');
  return a0;
}

/** The most actions running at the same moment, from their recorded start and end times. */
function maxOverlap(actions: ActionRecord[]): number {
  const events = actions.flatMap((a) => {
    assert.ok(a.startedAt !== null && a.endedAt !== null, `action ${a.name} has no start or end time`);
    return [
      [a.startedAt, +1],
      [a.endedAt, -1],
    ] as const;
  });
  // At equal times, ends before starts: an item that starts as another ends does not overlap it.
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let running = 0;
  let max = 0;
  for (const [, delta] of events) max = Math.max(max, (running += delta));
  return max;
}

function phases(actions: ActionRecord[]): string[] {
  return [...new Set(actions.map((a) => a.phase))].sort();
}

function byGroup(actions: ActionRecord[], group: string | null): ActionRecord[] {
  return actions.filter((a) => a.group === group);
}

describe('examples', () => {
  it('map-concurrency: bounded map runs at most 3 at once, unbounded runs all, each in its own group', () =>
    expectExample(
      'map-concurrency.ts',
      { bounded: [2, 4, 6, 8, 10, 12, 14, 16, 18, 20], unbounded: [2, 4, 6, 8, 10, 12, 14, 16, 18, 20] },
      (_run, actions) => {
        assert.equal(root(actions).phase, 'succeeded');
        assert.equal(children(actions).length, 20);
        const bounded = byGroup(actions, 'map_concurrency.processItem_map');
        const unbounded = byGroup(actions, 'map_concurrency.processItem_unbounded');
        assert.equal(bounded.length, 10);
        assert.equal(unbounded.length, 10);
        for (const a of [...bounded, ...unbounded]) {
          assert.equal(a.parentName, 'a0');
          assert.equal(a.taskName, 'map_concurrency.processItem');
        }
        assert.deepEqual(phases(children(actions)), ['succeeded']);
        assert.equal(maxOverlap(bounded), 3);
        assert.equal(maxOverlap(unbounded), 10);
      },
    ));

  it('gather: Promise.all and flyte.gather each make one child action per item', () =>
    expectExample(
      'gather.ts',
      { all: ['item-1', 'item-2', 'item-3'], gathered: ['item-10', 'item-20', 'item-30'] },
      async (run, actions) => {
        const kids = children(actions);
        assert.equal(kids.length, 6);
        assert.deepEqual(phases(kids), ['succeeded']);
        assert.deepEqual(byGroup(kids, null).length, 6);
        const inputs = await Promise.all(kids.map((a) => run.action(a.name).inputs()));
        assert.deepEqual(
          inputs.map((args) => (args as [number])[0]).sort((a, b) => a - b),
          [1, 2, 3, 10, 20, 30],
        );
      },
    ));

  it('semaphore: at most 2 children run at once', () =>
    expectExample('semaphore.ts', [1, 4, 9, 16, 25, 36, 49, 64], (_run, actions) => {
      const kids = children(actions);
      assert.equal(kids.length, 8);
      assert.deepEqual(phases(kids), ['succeeded']);
      assert.equal(maxOverlap(kids), 2);
    }));

  it('error-handling: failures come back in place as RuntimeUserError with the original class name', () =>
    expectExample(
      'error-handling.ts',
      {
        viaAllSettled: [10, 20, 'error:ValueError', 40, 50, 'error:ValueError'],
        viaMap: [10, 20, 'error:ValueError', 40, 50, 'error:ValueError'],
        viaGather: [10, 20, 'error:ValueError', 40, 50, 'error:ValueError'],
      },
      (run, actions) => {
        assert.equal(root(actions).phase, 'succeeded');
        const kids = children(actions);
        assert.equal(kids.length, 18);
        const failed = kids.filter((a) => a.phase === 'failed');
        assert.equal(failed.length, 6);
        assert.equal(kids.filter((a) => a.phase === 'succeeded').length, 12);
        for (const a of failed) {
          assert.equal(a.error?.code, 'ValueError');
          assert.equal(a.error?.kind, 'user');
          assert.match(a.error?.message ?? '', /is a multiple of 3/);
          assert.equal(a.attempts, 1);
        }
        assert.equal(byGroup(kids, 'error_handling.checkItem_map').length, 6);
        assert.equal(run.phase, 'succeeded');
      },
    ));

  it('failure-budget: a budget that holds keeps errors in place; one that breaks stops the map', () =>
    expectExample(
      'failure-budget.ts',
      {
        kept: [10, 20, 'error:ValueError', 40, 50, 'error:ValueError', 70, 80, 'error:ValueError', 100],
        budget: {
          code: 'MapFailureBudgetExceeded',
          total: 10,
          succeeded: 4,
          failed: 2,
          cancelled: 0,
          notStarted: 4,
          firstErrors: [2, 5],
        },
      },
      (run, actions) => {
        assert.equal(root(actions).phase, 'succeeded');
        const kept = byGroup(children(actions), 'failure_budget.score_map');
        assert.equal(kept.length, 10);
        assert.equal(kept.filter((a) => a.phase === 'failed').length, 3);
        // The strict map stopped at its second failure: items 7 to 10 have no action.
        const strict = byGroup(children(actions), 'failure_budget.score_strict');
        assert.equal(strict.length, 6);
        assert.deepEqual(
          strict.map((a) => a.phase).sort(),
          ['failed', 'failed', 'succeeded', 'succeeded', 'succeeded', 'succeeded'],
        );
        assert.equal(run.phase, 'succeeded');
      },
    ));

  it('as-completed: both forms yield in completion order', () =>
    expectExample(
      'as-completed.ts',
      { inputOrder: [3, 1, 4, 2], fromPromises: [1, 4, 9, 16], fromMap: [1, 4, 9, 16] },
      (_run, actions) => {
        const kids = children(actions);
        assert.equal(kids.length, 8);
        assert.deepEqual(phases(kids), ['succeeded']);
        assert.equal(byGroup(kids, 'as_completed.slowSquare_map').length, 4);
        assert.equal(byGroup(kids, null).length, 4);
      },
    ));

  it('async-chain: main → pipeline → load, transform, transform starting after load ended', () =>
    expectExample(
      'async-chain.ts',
      [
        { id: 1, total: 6 },
        { id: 10, total: 33 },
        { id: 100, total: 303 },
      ],
      (_run, actions) => {
        assert.equal(actions.length, 10);
        const pipelines = children(actions);
        assert.equal(pipelines.length, 3);
        for (const p of pipelines) {
          assert.equal(p.taskName, 'async_chain.pipeline');
          const steps = children(actions, p.name);
          assert.deepEqual(steps.map((s) => s.taskName).sort(), ['async_chain.load', 'async_chain.transform']);
          const load = steps.find((s) => s.taskName === 'async_chain.load') as ActionRecord;
          const transform = steps.find((s) => s.taskName === 'async_chain.transform') as ActionRecord;
          assert.ok((transform.startedAt as number) >= (load.endedAt as number), 'transform started before load ended');
        }
        assert.deepEqual(phases(actions), ['succeeded']);
      },
    ));

  it('sequential: each step starts after the previous one ended', () =>
    expectExample('sequential.ts', { count: 3, rows: ['alpha', 'beta', 'gamma'] }, (_run, actions) => {
      const steps = children(actions); // in creation order
      const timeline = JSON.stringify(steps.map((s) => [s.shortName, s.startedAt, s.endedAt]));
      assert.deepEqual(
        steps.map((s) => s.shortName),
        ['extract', 'clean', 'report'],
        timeline,
      );
      for (let i = 1; i < steps.length; i++) {
        assert.ok(
          (steps[i]?.startedAt as number) >= (steps[i - 1]?.endedAt as number),
          `step ${i} started before step ${i - 1} ended: ${timeline}`,
        );
      }
      assert.deepEqual(phases(actions), ['succeeded']);
    }));

  it('retries: a flaky task succeeds on its 3rd attempt; NonRecoverableError is not retried', () =>
    expectExample(
      'retries.ts',
      { recovered: { x: 7, attempt: 3 }, rejected: 'NonRecoverableError' },
      async (run, actions) => {
        assert.equal(root(actions).phase, 'succeeded');
        const flaky = actions.find((a) => a.taskName === 'retries.flaky') as ActionRecord;
        assert.equal(flaky.phase, 'succeeded');
        assert.equal(flaky.attempts, 3);
        const attempts = await run.action(flaky.name).attempts();
        assert.deepEqual(
          attempts.map((a) => [a.attempt, a.phase]),
          [
            [1, 'failed'],
            [2, 'failed'],
            [3, 'succeeded'],
          ],
        );
        assert.match(attempts[0]?.error?.message ?? '', /service unavailable \(attempt 1\)/);
        // Backoff of 20 ms, doubling: the second attempt waits about 20 ms, the third about 40 ms.
        const waited = attempts.slice(1).map((a, i) => a.startedAt - (attempts[i]?.endedAt as number));
        assert.ok(
          (waited[0] as number) >= 19 && (waited[1] as number) >= 39,
          `waits between attempts: ${waited.join(', ')} ms`,
        );
        const validate = actions.find((a) => a.taskName === 'retries.validate') as ActionRecord;
        assert.equal(validate.phase, 'failed');
        assert.equal(validate.attempts, 1);
        assert.equal(validate.error?.code, 'NonRecoverableError');
      },
    ));

  it('timeouts: the slow call is timed_out, its signal stops it, and the process does not wait for it', () =>
    expectExample('timeouts.ts', { fast: 'page after 10 ms', slow: 'TaskTimeoutError' }, (_run, actions, o) => {
      assert.equal(root(actions).phase, 'succeeded');
      const kids = children(actions);
      assert.deepEqual(kids.map((a) => a.phase).sort(), ['succeeded', 'timed_out']);
      const slow = kids.find((a) => a.phase === 'timed_out') as ActionRecord;
      assert.equal(slow.error?.code, 'TaskTimeoutError');
      const ran = (slow.endedAt as number) - (slow.startedAt as number);
      assert.ok(ran >= 190 && ran < 10_000, `timed out after ${ran} ms, expected about 200 ms`);
      // Had the signal not stopped the 60 s sleep, the process would have stayed alive for it.
      assert.ok(o.elapsedMs < 20_000, `the example took ${o.elapsedMs} ms`);
    }));

  it('groups: actions carry the innermost group they were created in', () =>
    expectExample('groups.ts', ['alpha:5', 'beta:4', 'gamma:5'], (_run, actions) => {
      const kids = children(actions);
      assert.equal(kids.length, 6);
      assert.deepEqual(
        byGroup(kids, 'preprocess').map((a) => a.shortName),
        ['clean', 'clean', 'clean'],
      );
      assert.deepEqual(
        byGroup(kids, 'evaluate').map((a) => a.shortName),
        ['score'],
      );
      assert.deepEqual(
        byGroup(kids, 'evaluate-rest').map((a) => a.shortName),
        ['score', 'score'],
      );
      assert.equal(root(actions).group, null);
    }));

  it('abort: the run and its running children end aborted, and their signals stop the work', () =>
    expectExample('abort.ts', { phase: 'aborted', error: 'ActionAbortedError' }, async (run, actions, o) => {
      assert.equal((await run.record()).phase, 'aborted');
      assert.equal(root(actions).phase, 'aborted');
      const kids = children(actions);
      assert.equal(kids.length, 3);
      assert.deepEqual(phases(kids), ['aborted']);
      for (const a of kids) assert.equal(a.error?.code, 'ActionAbortedError');
      assert.ok(o.elapsedMs < 20_000, `the example took ${o.elapsedMs} ms`);
    }));
});
