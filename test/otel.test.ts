/**
 * OpenTelemetry spans of local runs, read back from the SDK's in-memory span exporter: one span per action and
 * trace step, each under its parent action's span (checked against the parents the store recorded), their
 * attributes, retry events, cache hits, failure status, a sync task on the thread pool, a run started inside the
 * application's span, the application's own span inside a task body; and, with no provider registered, runs as
 * usual with nothing exported.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import * as flyte from 'flyte-ts';
import { failing, makesSpan, root } from './fixtures/otel-tasks.js';
import { useFlyteRoot } from './support/flyte-root.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

function register(): void {
  assert.ok(trace.setGlobalTracerProvider(provider), 'the test provider is registered');
}

/** The spans of the run named `runName`, by action name. */
function spansOf(runName: string): Map<string, ReadableSpan> {
  const spans = exporter.getFinishedSpans().filter((s) => s.attributes['flyte.run.name'] === runName);
  const byAction = new Map(spans.map((s) => [s.attributes['flyte.action.name'] as string, s]));
  assert.equal(byAction.size, spans.length, 'one span per action');
  return byAction;
}

/**
 * Checks that the spans of `run` form one tree that is the run's tree of actions: one span per recorded action
 * (steps included), one trace id, and each span's parent the span of the action's recorded parent. Returns the
 * spans by action name.
 */
export async function assertOneTree(run: flyte.Run, spans: Map<string, ReadableSpan>): Promise<void> {
  const actions = await run.actions();
  assert.deepEqual([...spans.keys()].sort(), actions.map((a) => a.name).sort(), 'a span for every action');
  const bySpanId = new Map([...spans.values()].map((s) => [s.spanContext().spanId, s]));
  const traceIds = new Set([...spans.values()].map((s) => s.spanContext().traceId));
  assert.equal(traceIds.size, 1, 'one trace');
  for (const action of actions) {
    const span = spans.get(action.name) as ReadableSpan;
    assert.equal(span.name, action.taskName);
    assert.equal(span.attributes['flyte.task.name'], action.taskName);
    if (action.parentName === null) continue;
    const parent = bySpanId.get(span.parentSpanContext?.spanId ?? '');
    assert.equal(parent?.attributes['flyte.action.name'], action.parentName, `the parent of ${action.name}'s span`);
  }
}

describe('OpenTelemetry spans of local runs', () => {
  useFlyteRoot('flyte-otel-', { threads: 1 });

  before(() => {
    context.setGlobalContextManager(contextManager.enable());
    register();
  });
  after(() => {
    trace.disable();
    context.disable();
  });
  beforeEach(() => exporter.reset());

  it('makes one span per action and step, each under its parent action’s span', async () => {
    const run = await flyte.run(root, 3, 1);
    const outputs = await run.outputs();
    assert.deepEqual(outputs, { nested: 60, retried: 3, failed: 'QuotaExceeded', first: 2, second: 2, sync: 103 });
    const spans = spansOf(run.name);
    await assertOneTree(run, spans);
    const a0 = spans.get('a0') as ReadableSpan;
    assert.equal(a0.parentSpanContext, undefined, 'the root span is a root: no application span was active');
    // root → middle → (3 map children, 1 trace step); root → flaky, broken, cached ×2, syncParent → syncLeaf
    const kids = (parent: string) =>
      [...spans.values()]
        .filter((s) => s.parentSpanContext?.spanId === spans.get(parent)?.spanContext().spanId)
        .map((s) => s.name)
        .sort();
    assert.deepEqual(kids('a0'), [
      'oteltest.broken',
      'oteltest.cached',
      'oteltest.cached',
      'oteltest.flaky',
      'oteltest.middle',
      'oteltest.syncParent',
    ]);
    const middle = [...spans.values()].find((s) => s.name === 'oteltest.middle') as ReadableSpan;
    const underMiddle = kids(middle.attributes['flyte.action.name'] as string);
    assert.deepEqual(underMiddle, ['oteltest.leaf', 'oteltest.leaf', 'oteltest.leaf', 'trace:step']);
    const syncParent = [...spans.values()].find((s) => s.name === 'oteltest.syncParent') as ReadableSpan;
    assert.deepEqual(kids(syncParent.attributes['flyte.action.name'] as string), ['oteltest.syncLeaf']);
  });

  it('records the outcome of each action as attributes, retries as events, failures as ERROR', async () => {
    const run = await flyte.run(root, 4, 2);
    await run.wait();
    const spans = [...spansOf(run.name).values()];
    const only = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      assert.equal(found.length, 1, name);
      return found[0] as ReadableSpan;
    };
    const a0 = only('oteltest.root');
    assert.equal(a0.attributes['flyte.run.name'], run.name);
    assert.equal(a0.attributes['flyte.phase'], 'succeeded');
    assert.equal(a0.attributes['flyte.attempt'], 1);
    assert.equal(a0.attributes['flyte.cache.hit'], false);
    assert.equal(a0.status.code, SpanStatusCode.UNSET);
    assert.equal(typeof a0.attributes['flyte.worker'], 'string');

    for (const leaf of spans.filter((s) => s.name === 'oteltest.leaf')) {
      assert.equal(leaf.attributes['flyte.group'], 'oteltest.leaf_map');
    }
    assert.equal(only('oteltest.middle').attributes['flyte.group'], undefined);

    const flaky = only('oteltest.flaky');
    assert.equal(flaky.attributes['flyte.phase'], 'succeeded');
    assert.equal(flaky.attributes['flyte.attempt'], 3);
    assert.equal(flaky.status.code, SpanStatusCode.UNSET);
    assert.deepEqual(
      flaky.events.map((e) => [e.name, e.attributes]),
      [1, 2].map((n) => [
        'flyte.attempt.failed',
        {
          'flyte.attempt': n,
          'flyte.phase': 'failed',
          'flyte.error.code': 'RangeError',
          'flyte.error.kind': 'user',
          'exception.type': 'RangeError',
          'exception.message': `attempt ${n} of flaky(4) failed`,
          'flyte.retry': true,
        },
      ]),
    );

    const broken = only('oteltest.broken');
    assert.equal(broken.attributes['flyte.phase'], 'failed');
    assert.equal(broken.attributes['flyte.attempt'], 2);
    assert.equal(broken.attributes['flyte.error.code'], 'QuotaExceeded');
    assert.equal(broken.attributes['flyte.error.kind'], 'user');
    assert.deepEqual(broken.status, { code: SpanStatusCode.ERROR, message: 'over quota' });
    assert.deepEqual(
      broken.events.map((e) => [e.attributes?.['flyte.attempt'], e.attributes?.['flyte.retry']]),
      [
        [1, true],
        [2, false],
      ],
    );

    const cached = spans.filter((s) => s.name === 'oteltest.cached');
    assert.deepEqual(
      cached.map((s) => [s.attributes['flyte.cache.hit'], s.attributes['flyte.attempt']]).sort(),
      [
        [false, 1],
        [true, 0],
      ],
      'the second call of the cached task is a cache hit, with no attempt',
    );

    const step = only('trace:step');
    assert.equal(step.attributes['flyte.phase'], 'succeeded');
    assert.equal(step.attributes['flyte.task.name'], 'trace:step');

    const sync = only('oteltest.syncLeaf');
    assert.equal(sync.attributes['flyte.phase'], 'succeeded');
    assert.equal(sync.attributes['flyte.attempt'], 1);
  });

  it('ends the root span of a failed run with ERROR and its error code', async () => {
    const run = await flyte.run(failing);
    assert.equal((await run.wait()).phase, 'failed');
    const a0 = spansOf(run.name).get('a0') as ReadableSpan;
    assert.equal(a0.attributes['flyte.phase'], 'failed');
    assert.equal(a0.attributes['flyte.error.code'], 'TypeError');
    assert.deepEqual(a0.status, { code: SpanStatusCode.ERROR, message: 'nothing to do' });
    assert.deepEqual(
      a0.events.map((e) => e.name),
      ['flyte.attempt.failed'],
    );
  });

  it('puts the root span under the application’s active span, and the application’s spans under the action', async () => {
    const app = trace.getTracer('app');
    const { run, requestSpan } = await app.startActiveSpan('request', async (span) => {
      const started = await flyte.run(makesSpan);
      await started.wait();
      span.end();
      return { run: started, requestSpan: span.spanContext() };
    });
    const a0 = spansOf(run.name).get('a0') as ReadableSpan;
    assert.equal(a0.spanContext().traceId, requestSpan.traceId);
    assert.equal(a0.parentSpanContext?.spanId, requestSpan.spanId);
    const inside = exporter.getFinishedSpans().find((s) => s.name === 'inside') as ReadableSpan;
    assert.equal(inside.spanContext().spanId, await run.outputs());
    assert.equal(inside.parentSpanContext?.spanId, a0.spanContext().spanId, 'the body’s span is under the action’s');
  });

  it('exports nothing, and runs as usual, when no tracer provider is registered', async () => {
    trace.disable();
    try {
      const run = await flyte.run(root, 2, 3);
      assert.equal((await run.wait()).phase, 'succeeded');
      const failed = await flyte.run(failing);
      assert.equal((await failed.wait()).phase, 'failed');
      assert.equal(exporter.getFinishedSpans().length, 0);
    } finally {
      register();
    }
    // Registered again, the next run is traced: the check is made per run, not once per process.
    const run = await flyte.run(failing);
    await run.wait();
    assert.equal(spansOf(run.name).size, 1);
  });
});
