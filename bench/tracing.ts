/**
 * The tracing of a traced bench scenario: an OpenTelemetry tracer provider registered the way an application
 * would (the SDK's `BasicTracerProvider`, an AsyncLocalStorage context manager), whose one span processor only
 * counts the spans that end. What is measured is what flyte-ts and the SDK spend making the spans, not an
 * exporter's work.
 * @module
 */
import { context, trace, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

/** Counts the spans that ended. */
export class SpanCounter implements SpanProcessor {
  ended = 0;
  onStart(_span: Span, _parent: Context): void {}
  onEnd(_span: ReadableSpan): void {
    this.ended++;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Registers the provider and the context manager globally; resolves with the processor that counts. */
export function traceActions(): SpanCounter {
  const counter = new SpanCounter();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  if (!trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [counter] }))) {
    throw new Error('bench: a tracer provider was registered already');
  }
  return counter;
}
