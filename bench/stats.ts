/** Latency samples in ms → the figures the bench reports. */
export interface LatencyStats {
  count: number;
  p50: number;
  p99: number;
  mean: number;
}

export function latencyStats(samples: number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const mean = sorted.reduce((sum, x) => sum + x, 0) / (sorted.length || 1);
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), mean };
}

/** Runs `cycle` `count` times in sequence; returns per-cycle latencies (ms) and cycles per second. */
export async function timeSequential(count: number, cycle: (i: number) => Promise<unknown>): Promise<{ stats: LatencyStats; perSecond: number }> {
  const samples: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await cycle(i);
    samples.push(performance.now() - t);
  }
  return { stats: latencyStats(samples), perSecond: count / ((performance.now() - started) / 1000) };
}
