import type { Attributes, Context, Tracer } from '@opentelemetry/api';
import { performance } from 'node:perf_hooks';
import { LockLostError, LockTimeoutError } from '../common/lock.errors.js';
import type { LockKind } from '../common/lock-kind.js';
import { createLockInstruments, INSTRUMENTATION_SCOPE, type LockInstruments } from './lock-instruments.js';
import { openTelemetryApi, type OpenTelemetryApi } from './open-telemetry.api.js';

const ignore = () => undefined;

/** How an acquire ended, as `lock.outcome` says it. */
export type AcquireOutcome = 'acquired' | 'timeout' | 'skipped' | 'failed';

/** What telemetry follows of a held lock (a LockHandle): its token, and its signal, aborted when the hold ends. */
export interface FollowedHold {
  readonly token: bigint;
  readonly signal: AbortSignal;
}

/** What an acquire is about: `name` is the bounded one (a template), `key` the lock itself. */
export interface AcquireTarget {
  readonly name: string;
  readonly key: string;
  readonly kind: LockKind;
}

/**
 * Metrics and spans of one LockService's acquires and holds, through `@opentelemetry/api`.
 * Without the API installed it does nothing; without an SDK registered the API does nothing.
 * Metric attributes are bounded (the lock's name template, never its key); spans carry the key.
 */
export class LockTelemetry {
  /** undefined: `@opentelemetry/api` is not installed */
  private readonly on: { otel: OpenTelemetryApi; instruments: LockInstruments; tracer: Tracer } | undefined;
  /** No meter provider was registered: the API's no-op meter records nothing. */
  private readonly metricsOff: boolean = true;
  /** No tracer provider was registered either: nothing to record at all, nothing to do per acquire. */
  private readonly allOff: boolean = true;

  constructor(private readonly backend: string) {
    const otel = openTelemetryApi();
    if (!otel) return;
    // the meter is bound now: an SDK registered after the service is created is not seen (the docs say so)
    const meter = otel.metrics.getMeter(INSTRUMENTATION_SCOPE);
    this.metricsOff = meter === otel.createNoopMeter();
    // the global tracer provider is a proxy; a fresh proxy's delegate is the API's no-op provider
    const tracers = otel.trace.getTracerProvider();
    const noTracing = tracers instanceof otel.ProxyTracerProvider && tracers.getDelegate() === new otel.ProxyTracerProvider().getDelegate();
    this.allOff = this.metricsOff && noTracing;
    this.on = { otel, instruments: createLockInstruments(meter), tracer: otel.trace.getTracer(INSTRUMENTATION_SCOPE) };
  }

  /**
   * Runs an acquire (`take`, told when it starts to wait) in a span that is a child of the
   * caller's active span, records its wait and outcome, and follows the hold it returns.
   */
  async acquire<H extends FollowedHold>(target: AcquireTarget, take: (onWaiting: () => void) => Promise<H | null>): Promise<H | null> {
    if (!this.on || this.allOff) return take(ignore);
    const { otel, instruments, tracer } = this.on;
    const attributes: Attributes = { 'lock.name': target.name, 'lock.kind': target.kind.mode, 'lock.backend': this.backend };
    const caller = otel.context.active();
    const span = tracer.startSpan(`lock.acquire ${target.name}`, { attributes: { ...attributes, 'lock.key': target.key } }, caller);
    // nothing would record (the API without an SDK, or a span sampled out with no meter): no work per acquire or hold
    if (this.metricsOff && !span.isRecording()) return take(ignore);
    const startedAt = performance.now();
    let waiting = false;
    const onWaiting = () => {
      waiting = true;
      instruments.pending.add(1, attributes);
    };
    let outcome: AcquireOutcome = 'failed';
    let lock: H | null = null;
    try {
      lock = await otel.context.with(otel.trace.setSpan(caller, span), () => take(onWaiting));
      outcome = lock ? 'acquired' : 'skipped';
      return lock;
    } catch (err) {
      outcome = err instanceof LockTimeoutError ? 'timeout' : 'failed';
      span.recordException(err as Error);
      span.setStatus({ code: otel.SpanStatusCode.ERROR, message: (err as Error)?.message });
      throw err;
    } finally {
      if (waiting) instruments.pending.add(-1, attributes);
      instruments.waitTime.record((performance.now() - startedAt) / 1000, { ...attributes, 'lock.outcome': outcome });
      instruments.acquisitions.add(1, { ...attributes, 'lock.outcome': outcome, 'lock.contended': waiting });
      span.setAttribute('lock.outcome', outcome);
      if (lock) span.setAttribute('lock.token', lock.token.toString());
      span.end();
      if (lock) this.follow(this.on, lock, target, attributes, caller);
    }
  }

  /** A hold: counted while held, timed, its loss counted and recorded on its span. */
  private follow({ otel, instruments, tracer }: NonNullable<LockTelemetry['on']>, lock: FollowedHold, target: AcquireTarget, attributes: Attributes, caller: Context): void {
    instruments.held.add(1, attributes);
    const span = tracer.startSpan(`lock.hold ${target.name}`, { attributes: { ...attributes, 'lock.key': target.key, 'lock.token': lock.token.toString() } }, caller);
    const startedAt = performance.now();
    // the signal aborts once the hold ends: LockNotHeldError after the release, LockLostError on a loss
    const ended = () => {
      const lost = lock.signal.reason instanceof LockLostError ? lock.signal.reason : undefined;
      instruments.held.add(-1, attributes);
      instruments.holdTime.record((performance.now() - startedAt) / 1000, { ...attributes, 'lock.end': lost ? 'lost' : 'released' });
      if (lost) {
        instruments.losses.add(1, { ...attributes, 'lock.loss.reason': lost.reason });
        span.addEvent('lock.lost', { 'lock.loss.reason': lost.reason });
        span.setStatus({ code: otel.SpanStatusCode.ERROR, message: lost.message });
      }
      span.setAttribute('lock.end', lost ? 'lost' : 'released');
      span.end();
    };
    if (lock.signal.aborted) ended();
    else lock.signal.addEventListener('abort', ended, { once: true });
  }
}
