// OpenTelemetry for the sample: a MeterProvider read by a Prometheus exporter that /metrics
// serves on the app's own port. main.ts imports this first, so the SDK is registered before the
// lock service is created (the library takes its meter then).
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

export const prometheus = new PrometheusExporter({ preventServerStart: true });
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [prometheus] }));
