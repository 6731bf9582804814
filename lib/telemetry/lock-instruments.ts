import type { Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api';

/** The instrumentation scope of every meter and tracer of this library. */
export const INSTRUMENTATION_SCOPE = 'nestjs-etcd-lock';

// Seconds, from a fast etcd round trip to a long queue: the default buckets are for milliseconds.
const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The metrics, shaped like OpenTelemetry's database connection-pool metrics (there is no
 * convention for locks): wait_time and use_time (here hold_time) histograms in seconds,
 * pending_requests and a count of what is in use (here held) as up-down counters.
 */
export interface LockInstruments {
  /** `lock.wait_time`: from the call to the lock, or to the failure. */
  readonly waitTime: Histogram;
  /** `lock.hold_time`: from acquired to released or lost. */
  readonly holdTime: Histogram;
  /** `lock.held`: locks held now. */
  readonly held: UpDownCounter;
  /** `lock.pending_requests`: acquires queued behind another holder now. */
  readonly pending: UpDownCounter;
  /** `lock.acquisitions`: acquires by outcome. */
  readonly acquisitions: Counter;
  /** `lock.losses`: held locks lost, by reason. */
  readonly losses: Counter;
}

export function createLockInstruments(meter: Meter): LockInstruments {
  const seconds = { unit: 's', advice: { explicitBucketBoundaries: SECONDS_BUCKETS } };
  return {
    waitTime: meter.createHistogram('lock.wait_time', { ...seconds, description: 'Time an acquire took, from the call to the lock or the failure (queueing included).' }),
    holdTime: meter.createHistogram('lock.hold_time', { ...seconds, description: 'Time a lock was held, from acquired to released or lost.' }),
    held: meter.createUpDownCounter('lock.held', { unit: '{lock}', description: 'Locks held by this process.' }),
    pending: meter.createUpDownCounter('lock.pending_requests', { unit: '{request}', description: 'Acquires of this process queued behind another holder.' }),
    acquisitions: meter.createCounter('lock.acquisitions', { unit: '{acquisition}', description: 'Acquires that ended, by lock.outcome: acquired, timeout, skipped (busy, not waited for), failed; lock.contended: whether it queued behind another holder.' }),
    losses: meter.createCounter('lock.losses', { unit: '{loss}', description: 'Held locks that ended without a release, by lock.loss.reason.' }),
  };
}
