// The lock metrics of the replicas, read from their /metrics (Prometheus text, as the
// OpenTelemetry exporter writes it): wait-time quantiles and how many acquires queued.

/** One sample line: metric name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? ([^ ]+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

export interface LockWaitSummary {
  acquired: number;
  contended: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Sums the replicas' `lock_wait_time` histogram and `lock_acquisitions_total` for one lock name,
 * and estimates quantiles from the buckets as Prometheus's histogram_quantile does (linear
 * within the bucket).
 */
export function summarizeLockWaits(texts: string[], lockName: string): LockWaitSummary {
  const samples = texts.flatMap(parse).filter(s => s.labels.lock_name === lockName);
  const buckets = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== 'lock_wait_time_bucket' || s.labels.lock_outcome !== 'acquired') continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  const sorted = [...buckets.entries()].sort(([a], [b]) => a - b);
  const total = sorted.at(-1)?.[1] ?? 0;
  const quantile = (q: number) => {
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (const [le, cumulative] of sorted) {
      if (cumulative >= rank) {
        if (le === Infinity) return lower * 1000; // beyond the last bucket: its lower edge, as Prometheus does
        return (lower + (le - lower) * ((rank - below) / Math.max(1, cumulative - below))) * 1000;
      }
      lower = le;
      below = cumulative;
    }
    return NaN;
  };
  const acquisitions = samples.filter(s => s.name === 'lock_acquisitions_total');
  return {
    acquired: acquisitions.filter(s => s.labels.lock_outcome === 'acquired').reduce((n, s) => n + s.value, 0),
    contended: acquisitions.filter(s => s.labels.lock_contended === 'true').reduce((n, s) => n + s.value, 0),
    p50Ms: total ? quantile(0.5) : NaN,
    p99Ms: total ? quantile(0.99) : NaN,
  };
}
