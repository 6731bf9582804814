import type { BoardEvent } from './board-event.js';

/** Spread of a duration over the window: median, 95th percentile, worst. */
export interface Spread {
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

/** One lock's figures over the window: how often each thing happened, how long callers waited and held. */
export interface LockFigures {
  readonly acquired: number;
  readonly released: number;
  readonly expired: number;
  readonly forced: number;
  readonly lost: number;
  readonly waitMs: Spread | null;
  readonly holdMs: Spread | null;
}

interface Sample {
  readonly at: number;
  readonly event: BoardEvent['type'];
  /** the wait (acquired) or the hold (an end), when the event told it */
  readonly ms?: number;
}

/** Samples kept per lock: bounds the memory a very busy lock takes. */
const SAMPLES_PER_LOCK = 2000;

/**
 * Per-lock figures of the last `windowMs`, from the events the board saw. Pure: it keeps
 * the samples and forgets those older than the window each time it is asked.
 */
export class BoardFigures {
  private readonly samples = new Map<string, Sample[]>();

  constructor(private readonly windowMs: number) {}

  record(event: BoardEvent): void {
    const ms = event.type === 'acquired' ? event.waitedMs : event.heldMs;
    const kept = this.samples.get(event.key) ?? [];
    kept.push({ at: Date.parse(event.at), event: event.type, ...(ms !== undefined && { ms }) });
    if (kept.length > SAMPLES_PER_LOCK) kept.splice(0, kept.length - SAMPLES_PER_LOCK);
    this.samples.set(event.key, kept);
  }

  /** The figures of every lock `wanted` lets through that had an event in the window. */
  figures(wanted: (key: string) => boolean, now = Date.now()): Record<string, LockFigures> {
    const since = now - this.windowMs;
    const result: Record<string, LockFigures> = {};
    for (const [key, kept] of this.samples) {
      const first = kept.findIndex(s => s.at >= since);
      if (first === -1) {
        this.samples.delete(key);
        continue;
      }
      if (first > 0) kept.splice(0, first);
      if (wanted(key)) result[key] = summarize(kept);
    }
    return result;
  }
}

function summarize(samples: readonly Sample[]): LockFigures {
  const count = (type: Sample['event']) => samples.filter(s => s.event === type).length;
  const durations = (acquired: boolean) => samples.filter(s => (s.event === 'acquired') === acquired && s.ms !== undefined).map(s => s.ms!);
  return {
    acquired: count('acquired'),
    released: count('released'),
    expired: count('expired'),
    forced: count('forced'),
    lost: count('lost'),
    waitMs: spread(durations(true)),
    holdMs: spread(durations(false)),
  };
}

/** Nearest-rank percentiles; null without samples. */
export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return { p50: rank(50), p95: rank(95), max: sorted[sorted.length - 1] };
}
