/**
 * OpenTelemetry spans of actions and steps, when the application registered a tracer provider.
 *
 * `@opentelemetry/api` is an optional peer dependency: it is loaded lazily, with `require`, the first time an
 * action asks for a tracer. When it is not installed, or no tracer provider is registered (the API's global
 * provider is a proxy whose delegate is still the no-op one), {@link tracer} returns `null` and nothing else here
 * runs: no span objects, no contexts, a few property reads per action.
 *
 * The shapes of the API used here are written out below (a structural subset of `@opentelemetry/api` 1.x), so
 * that no declaration file of flyte-ts refers to a package the application may not have installed.
 *
 * What the spans look like (names, attributes, events, parents) is documented in `docs/tracing.md`.
 * @module
 */
import { createRequire } from 'node:module';
import type { SerializedError } from '../errors.js';
import type { ActionPhase } from '../types.js';
import { OWNER } from './owner.js';

/** An OpenTelemetry `Context` (immutable; opaque here). */
export interface TraceContext {
  getValue(key: symbol): unknown;
}

/** The `SpanContext` of a span: what crosses to another process. */
interface SpanContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly isRemote?: boolean;
  readonly traceState?: { serialize(): string };
}

type AttributeValue = string | number | boolean;
type Attributes = Record<string, AttributeValue>;

/** An OpenTelemetry `Span`, as far as flyte-ts uses it. */
export interface ActionSpan {
  spanContext(): SpanContext;
  setAttribute(key: string, value: AttributeValue): unknown;
  setAttributes(attributes: Attributes): unknown;
  addEvent(name: string, attributes?: Attributes): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

interface Tracer {
  startSpan(name: string, options: { kind: number; attributes: Attributes }, context: TraceContext): ActionSpan;
}

interface TracerProvider {
  getTracer(name: string, version?: string): Tracer;
  /** Present on the API's `ProxyTracerProvider` (the global provider): the registered provider, or the no-op one. */
  getDelegate?(): TracerProvider;
  /** Present on the SDK's providers: exports the spans its processors still hold. */
  forceFlush?(): Promise<void>;
}

/** The part of `@opentelemetry/api` used here. */
interface OtelApi {
  readonly ROOT_CONTEXT: TraceContext;
  readonly ProxyTracerProvider: new () => TracerProvider;
  readonly trace: {
    getTracerProvider(): TracerProvider;
    setSpan(context: TraceContext, span: ActionSpan): TraceContext;
    setSpanContext(context: TraceContext, spanContext: SpanContext): TraceContext;
    getSpan(context: TraceContext): ActionSpan | undefined;
  };
  readonly context: {
    active(): TraceContext;
    with<T>(context: TraceContext, fn: () => T): T;
  };
  createTraceState(raw: string): { serialize(): string };
}

/** `SpanKind.INTERNAL` and `SpanStatusCode.ERROR` of the API (stable numbers of the OpenTelemetry spec). */
const INTERNAL = 0;
const STATUS_ERROR = 2;

/** `undefined` until first asked; `null` when the package is not installed (or cannot be loaded). */
let api: OtelApi | null | undefined;
/** The API's no-op provider: the delegate of the global proxy while no provider is registered. */
let noopProvider: TracerProvider | undefined;
/** The provider the cached tracer came from, and that tracer (`null` while no provider is registered). */
let cachedProvider: TracerProvider | undefined;
let cachedTracer: Tracer | null = null;

function loadApi(): OtelApi | null {
  try {
    const loaded = createRequire(import.meta.url)('@opentelemetry/api') as OtelApi;
    if (typeof loaded.ProxyTracerProvider === 'function')
      noopProvider = new loaded.ProxyTracerProvider().getDelegate?.();
    return loaded;
  } catch {
    // Not installed (the usual case of an application that does not trace), or not loadable: tracing stays off.
    return null;
  }
}

/**
 * The tracer of flyte-ts from the registered provider, or `null` when tracing is off (`@opentelemetry/api` is
 * not installed, or no tracer provider is registered). Cheap: it is asked once per action.
 */
export function tracer(): Tracer | null {
  if (api === undefined) api = loadApi();
  if (api === null) return null;
  const global = api.trace.getTracerProvider();
  const provider = typeof global.getDelegate === 'function' ? global.getDelegate() : global;
  if (provider !== cachedProvider) {
    cachedProvider = provider;
    cachedTracer = provider === noopProvider ? null : provider.getTracer('flyte-ts', packageVersion());
  }
  return cachedTracer;
}

/** How long {@link flushSpans} waits for the provider's exporters, in ms. */
const FLUSH_TIMEOUT_MS = 5_000;

/**
 * Exports the spans the registered provider still holds (a batch processor's queue), waiting at most
 * {@link FLUSH_TIMEOUT_MS}: `flyte.shutdown()` calls it, so that a `flyte worker` or `flyte run` that exits once
 * drained does not lose the spans of its last actions. Nothing when no action of this process asked for a tracer.
 */
export async function flushSpans(): Promise<void> {
  if (api === undefined || api === null || tracer() === null) return;
  const provider = cachedProvider as TracerProvider;
  if (typeof provider.forceFlush !== 'function') return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      provider.forceFlush(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
      }),
    ]);
  } catch {
    // An exporter that fails (its collector is down) reports through the SDK's diagnostics; exiting goes on.
  } finally {
    clearTimeout(timer);
  }
}

function packageVersion(): string | undefined {
  try {
    // src/internal/ and dist/internal/ are both two levels below the package root.
    return (createRequire(import.meta.url)('../../package.json') as { version?: string }).version;
  } catch {
    return undefined; // a bundled copy without its package.json: the tracer has no version
  }
}

/**
 * Where an action's span goes: under its parent action's span (a child running in this process), under the
 * context a job carried (an action on a worker), or, for a run's root started here, under the caller's active
 * context (`undefined`).
 */
export type SpanParent = ActionSpan | TraceContext | undefined;

/**
 * Starts the span of action `actionName` (of task `taskName`, in `group`) of run `runName` under `parent`, or
 * returns `null` when tracing is off.
 */
export function startActionSpan(
  runName: string,
  actionName: string,
  taskName: string,
  group: string | null,
  parent: SpanParent,
): ActionSpan | null {
  const t = tracer();
  if (t === null) return null;
  const attributes: Attributes = {
    'flyte.run.name': runName,
    'flyte.action.name': actionName,
    'flyte.task.name': taskName,
    'flyte.worker': OWNER,
  };
  if (group !== null) attributes['flyte.group'] = group;
  return t.startSpan(taskName, { kind: INTERNAL, attributes }, parentContext(parent));
}

function parentContext(parent: SpanParent): TraceContext {
  const otel = api as OtelApi;
  if (parent === undefined) return otel.context.active();
  if (isSpan(parent)) return otel.trace.setSpan(otel.ROOT_CONTEXT, parent);
  return parent;
}

function isSpan(parent: ActionSpan | TraceContext): parent is ActionSpan {
  return typeof (parent as Partial<ActionSpan>).spanContext === 'function';
}

/** What the span of an action says at its end. */
export interface SpanEnd {
  readonly phase: ActionPhase;
  readonly attempts: number;
  readonly cacheHit: boolean;
  readonly error: SerializedError | null | undefined;
}

/**
 * Ends the span of an action with its outcome: phase, attempts, cache hit, and for a failure its error code and
 * an `ERROR` status. `recovered`: its output was recorded by an earlier process (recovery), nothing ran; its
 * record here stays as it was (`queued`), the span says `succeeded`.
 */
export function endActionSpan(span: ActionSpan, end: SpanEnd, recovered = false): void {
  const phase = recovered ? 'succeeded' : end.phase;
  const attributes: Attributes = {
    'flyte.phase': phase,
    'flyte.attempt': end.attempts,
    'flyte.cache.hit': end.cacheHit,
  };
  if (recovered) attributes['flyte.recovered'] = true;
  if (phase !== 'succeeded' && end.error != null) {
    attributes['flyte.error.code'] = end.error.code;
    attributes['flyte.error.kind'] = end.error.kind;
  }
  span.setAttributes(attributes);
  if (phase !== 'succeeded') {
    span.setStatus({ code: STATUS_ERROR, message: end.error?.message ?? `ended ${phase}` });
  }
  span.end();
}

/**
 * An attempt of the action failed: an event `flyte.attempt.failed` on its span, with the attempt, how it ended,
 * its error, and whether another attempt follows (`flyte.retry`).
 */
export function attemptFailedEvent(
  span: ActionSpan,
  attempt: number,
  phase: ActionPhase,
  error: SerializedError,
  retry: boolean,
): void {
  span.addEvent('flyte.attempt.failed', {
    'flyte.attempt': attempt,
    'flyte.phase': phase,
    'flyte.error.code': error.code,
    'flyte.error.kind': error.kind,
    'exception.type': error.code,
    'exception.message': error.message,
    'flyte.retry': retry,
  });
}

/** Runs `fn` (an attempt's body) with `span` as the active span, so that spans the body makes nest under it. */
export function withActiveSpan<T>(span: ActionSpan, fn: () => T): T {
  const otel = api as OtelApi;
  return otel.context.with(otel.trace.setSpan(otel.context.active(), span), fn);
}

/** The W3C trace context of a span, for a job that crosses to another process. */
export interface TraceFields {
  readonly traceparent?: string;
  readonly tracestate?: string;
}

const NO_FIELDS: TraceFields = {};

/** The trace fields of a job whose action's span goes under `span`: none without a span. */
export function traceFields(span: ActionSpan | null): TraceFields {
  if (span === null) return NO_FIELDS;
  const { traceId, spanId, traceFlags, traceState } = span.spanContext();
  const traceparent = `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  const state = traceState?.serialize();
  return state === undefined || state === '' ? { traceparent } : { traceparent, tracestate: state };
}

/**
 * The trace fields of a run's root job, submitted here: the caller's active span, if tracing is on and the
 * application has one active (its context manager tracks it).
 */
export function activeTraceFields(): TraceFields {
  if (tracer() === null) return NO_FIELDS;
  const span = (api as OtelApi).trace.getSpan((api as OtelApi).context.active());
  return span === undefined ? NO_FIELDS : traceFields(span);
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The parent of the span of an action a job brought to this worker: the span context the job carried (the
 * `traceparent` its submitter wrote). A run's root (`root`) whose job carried none (its submitter had no active
 * span) starts a new trace; any other action without one (its parent's process does not trace) gets no span
 * (`null`), nor does any action when tracing is off here.
 */
export function jobParent(fields: TraceFields, root: boolean): TraceContext | null {
  if (tracer() === null) return null;
  const otel = api as OtelApi;
  const match = fields.traceparent === undefined ? null : TRACEPARENT.exec(fields.traceparent);
  if (match === null || match[1] === 'ff' || /^0+$/.test(match[2] as string) || /^0+$/.test(match[3] as string)) {
    return root ? otel.ROOT_CONTEXT : null;
  }
  let traceState: { serialize(): string } | undefined;
  if (fields.tracestate !== undefined && typeof otel.createTraceState === 'function') {
    traceState = otel.createTraceState(fields.tracestate);
  }
  return otel.trace.setSpanContext(otel.ROOT_CONTEXT, {
    traceId: match[2] as string,
    spanId: match[3] as string,
    traceFlags: parseInt(match[4] as string, 16),
    isRemote: true,
    ...(traceState === undefined ? {} : { traceState }),
  });
}

/** Records an action that ended without running (taken out of its queue, unknown task) as a span of no length. */
export function neverRanSpan(record: SpanEnd & NamedRecord, parent: SpanParent): void {
  const span = startActionSpan(record.runName, record.name, record.taskName, record.group, parent);
  if (span !== null) endActionSpan(span, record);
}

/** The names of an action record. */
interface NamedRecord {
  readonly runName: string;
  readonly name: string;
  readonly taskName: string;
  readonly group: string | null;
}
