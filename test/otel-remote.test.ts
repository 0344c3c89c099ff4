/**
 * OpenTelemetry across processes: a remote run on two real `flyte worker` processes (Postgres + Redis), started
 * inside a span of this process, is one trace. Each worker registers the SDK's in-memory exporter in the task
 * module it loads (`test/fixtures/otel-exporter.ts`) and writes the spans it finished to a file when it exits;
 * the test puts every process's spans together and checks that they form the run's tree of actions.
 *
 * The tree's tasks are in two environments, one per worker (`--env`), so that each level runs in another process
 * than its parent's: the trace context crosses in every job.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import * as flyte from '../src/index.js';
import { REPO, tempDir } from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from './support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from './support/workers.js';
import { dumpSpan, type DumpedSpan } from './fixtures/otel-exporter.js';
import type * as OtelTasks from './fixtures/remote/otel.js';

const TASKS = join(REPO, 'test', 'fixtures', 'remote', 'otel.ts');

const skip = (await postgresSkip()) || (await redisSkip());

describe('OpenTelemetry spans of a remote run', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_otel_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  const spansDir = tempDir('flyte-otel-spans-');
  const exporter = new InMemorySpanExporter();
  let workers: WorkerProcess[] = [];
  let drained: () => void = () => undefined;

  before(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    const env = { FLYTE_TEST_SPANS: spansDir };
    workers = await Promise.all(
      ['otel_a', 'otel_b'].map((name) =>
        startWorker({ modules: [TASKS], store, engine, concurrency: 2, env, extraArgs: ['--env', name] }),
      ),
    );
  });

  after(async () => {
    await stopWorkers(workers); // a no-op for workers the test stopped already
    trace.disable();
    context.disable();
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
    drained();
  });

  it('is one trace: the root under the caller’s span, every action’s span under its parent action’s span', async () => {
    const tasks = (await import(TASKS)) as typeof OtelTasks;
    const app = trace.getTracer('app');
    const { run, request } = await app.startActiveSpan('request', async (span) => {
      const started = await flyte.run(tasks.tree, 3);
      await started.wait();
      span.end();
      return { run: started, request: dumpSpan(exporter.getFinishedSpans().find((s) => s.name === 'request')!) };
    });
    assert.deepEqual(await run.outputs(), { branched: 7, retried: 3, sync: 103 });
    // The workers write their spans when they exit, once drained.
    drained = await stopWorkers(workers);
    const files = readdirSync(spansDir).filter((f) => f.startsWith('spans-'));
    assert.deepEqual(files.sort(), workers.map((w) => `spans-${w.pid}.json`).sort(), 'each worker wrote its spans');
    const fromWorkers = files.flatMap((f) => JSON.parse(readFileSync(join(spansDir, f), 'utf8')) as DumpedSpan[]);
    const spans = fromWorkers.filter((s) => s.attributes['flyte.run.name'] === run.name);
    assert.equal(spans.length, fromWorkers.length, 'the workers traced this run only');

    // One trace, the caller's.
    assert.deepEqual([...new Set(spans.map((s) => s.traceId))], [request.traceId]);
    // One span per recorded action (trace steps included), each under its parent's span.
    const actions = await run.actions();
    const byAction = new Map(spans.map((s) => [s.attributes['flyte.action.name'] as string, s]));
    assert.equal(byAction.size, spans.length, 'one span per action');
    assert.deepEqual([...byAction.keys()].sort(), actions.map((a) => a.name).sort());
    const bySpanId = new Map([...spans, request].map((s) => [s.spanId, s]));
    for (const action of actions) {
      const span = byAction.get(action.name) as DumpedSpan;
      assert.equal(span.name, action.taskName);
      const parent = bySpanId.get(span.parentSpanId ?? '');
      if (action.parentName === null) assert.equal(parent, request, 'the root span is under the caller’s span');
      else assert.equal(parent?.attributes['flyte.action.name'], action.parentName, `the parent of ${action.name}`);
    }
    // Each level ran in the other worker than its parent (the environments are split between them): the tree
    // crosses processes at every edge, except a trace step, which runs in its action's process.
    const pidOf = (s: DumpedSpan) => s.pid;
    for (const span of spans) {
      const parent = bySpanId.get(span.parentSpanId ?? '') as DumpedSpan;
      if (parent === request) continue;
      if (span.name.startsWith('trace:')) assert.equal(pidOf(span), pidOf(parent), span.name);
      else assert.notEqual(pidOf(span), pidOf(parent), `${span.name} ran in another process than its parent`);
    }
    assert.deepEqual(spans.map((s) => s.name).sort(), [
      'otel_a.leaf',
      'otel_a.leaf',
      'otel_a.leaf',
      'otel_a.syncLeaf',
      'otel_a.tree',
      'otel_b.branch',
      'otel_b.flaky',
      'otel_b.syncParent',
      'trace:step',
    ]);
    const flaky = spans.find((s) => s.name === 'otel_b.flaky') as DumpedSpan;
    assert.equal(flaky.attributes['flyte.attempt'], 2);
    assert.equal(flaky.attributes['flyte.phase'], 'succeeded');
    assert.equal(flaky.status.code, SpanStatusCode.UNSET);
    assert.deepEqual(
      flaky.events.map((e) => [e.name, e.attributes['flyte.attempt'], e.attributes['exception.message']]),
      [['flyte.attempt.failed', 1, 'first attempt of flaky(3)']],
    );
    for (const span of spans) assert.equal(span.attributes['flyte.worker'], `${os.hostname()}:${span.pid}`);
  });
});
