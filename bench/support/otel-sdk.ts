// The OpenTelemetry SDK as an app would run it, for the telemetry-overhead case: a MeterProvider
// whose reader is collected every 60 s, a TracerProvider whose batches go to an exporter that
// drops them (the cost measured is ours and the SDK's, not a collector's), and the
// AsyncLocalStorage context manager. Imported first by a bench worker started with BENCH_OTEL=sdk (or =context).
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemoryMetricExporter, AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';

const dropSpans: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => undefined };

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
// BENCH_OTEL=context: only the context manager, the part of the SDK any traced app pays for, whatever its libraries do
if (process.env.BENCH_OTEL !== 'context') {
metrics.setGlobalMeterProvider(
  new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 60_000 })] }),
);
trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: dropSpans })] }));
}
