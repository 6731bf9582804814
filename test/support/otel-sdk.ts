// The real OpenTelemetry SDK for tests: a MeterProvider read on demand and a TracerProvider with
// an in-memory exporter, registered globally as an app's instrumentation file would, plus the
// AsyncLocalStorage context manager that carries the active span across awaits.
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader, type DataPoint, type MetricData } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';

/** A reader that exports nothing by itself: the test collects when it wants to look. */
class OnDemandReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export interface OtelSdk {
  /** Every metric of the library's meter, by name (cumulative since registration). */
  collect(): Promise<Map<string, MetricData>>;
  readonly spans: InMemorySpanExporter;
  shutdown(): Promise<void>;
}

export function registerOtelSdk(): OtelSdk {
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!metrics.setGlobalMeterProvider(meterProvider) || !trace.setGlobalTracerProvider(tracerProvider) || !context.setGlobalContextManager(contextManager)) {
    throw new Error('an OpenTelemetry provider was already registered in this test file');
  }
  return {
    async collect() {
      const { resourceMetrics } = await reader.collect();
      const scope = resourceMetrics.scopeMetrics.find(s => s.scope.name === 'nestjs-etcd-lock');
      return new Map((scope?.metrics ?? []).map(m => [m.descriptor.name, m]));
    },
    spans,
    async shutdown() {
      await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
      metrics.disable();
      trace.disable();
      context.disable();
    },
  };
}

/** The data points of a metric whose attributes include `match`. */
export function pointsOf(metric: MetricData | undefined, match: Record<string, string> = {}): DataPoint<unknown>[] {
  return ((metric?.dataPoints ?? []) as DataPoint<unknown>[]).filter(p => Object.entries(match).every(([k, v]) => p.attributes[k] === v));
}

export type { ReadableSpan };
