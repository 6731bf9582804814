import { createRequire } from 'node:module';

/** The `@opentelemetry/api` module. */
export type OpenTelemetryApi = typeof import('@opentelemetry/api');

let loaded: OpenTelemetryApi | null | undefined;

/**
 * `@opentelemetry/api` if the app has it installed (an optional peer dependency), else
 * undefined. Loaded synchronously: a top-level await would keep CommonJS apps from requiring
 * this package. Providers are registered globally by the API, so the copy loaded here reports to
 * the SDK the app registered, whichever module format the app imported the API with.
 */
export function openTelemetryApi(): OpenTelemetryApi | undefined {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi;
    } catch {
      loaded = null;
    }
  }
  return loaded ?? undefined;
}
