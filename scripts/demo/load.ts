// Concurrent clients paying orders on random replicas: many requests for the same order hit
// different replicas at the same time, which is exactly what the order lock must serialize.
import { performance } from 'node:perf_hooks';
import type { Replica } from './replica.process.js';

export interface LoadStats {
  sent: number;
  served: number; // 2xx
  paidNow: number; // 2xx that made the payment
  conflicts: number; // 409: the lock was not acquired within the route's waitTimeout
  errors: number; // any other failure, killed replica excluded
  cutByKill: number; // requests in flight to the killed replica, or refused by it
  latenciesMs: number[]; // of served pay requests: lock wait + work
  errorSamples: string[];
}

export const newLoadStats = (): LoadStats => ({
  sent: 0,
  served: 0,
  paidNow: 0,
  conflicts: 0,
  errors: 0,
  cutByKill: 0,
  latenciesMs: [],
  errorSamples: [],
});

/** POST /orders/:id/pay on `replica`, accounted in `stats`. */
export async function pay(replica: Replica, orderId: string, stats: LoadStats): Promise<void> {
  stats.sent++;
  const started = performance.now();
  try {
    const res = await fetch(replica.url(`/orders/${encodeURIComponent(orderId)}/pay`), { method: 'POST' });
    const body = (await res.json()) as { result?: string; message?: string };
    if (res.ok) {
      stats.served++;
      stats.latenciesMs.push(performance.now() - started);
      if (body.result === 'paid') stats.paidNow++;
    } else if (res.status === 409) stats.conflicts++;
    else fail(stats, `${replica.name} ${res.status} ${body.message ?? ''}`);
  } catch (err) {
    if (!replica.alive) stats.cutByKill++;
    else fail(stats, `${replica.name} ${(err as Error).cause ?? err}`);
  }
}

function fail(stats: LoadStats, sample: string): void {
  stats.errors++;
  if (stats.errorSamples.length < 5) stats.errorSamples.push(sample);
}

/**
 * Runs `clients` loops until `until` (performance.now() ms). Orders are released over time
 * (`released()` tells how many), and each request picks one of the last `window` released
 * orders, so several clients keep hitting the same order on different replicas.
 */
export async function runClients(opts: {
  clients: number;
  orderIds: string[];
  released: () => number;
  window: number;
  replicas: Replica[];
  until: number;
  stats: LoadStats;
}): Promise<void> {
  const pick = <T>(items: T[]) => items[Math.floor(Math.random() * items.length)];
  await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      while (performance.now() < opts.until) {
        const released = Math.max(1, Math.min(opts.orderIds.length, opts.released()));
        const from = Math.max(0, released - opts.window);
        const live = opts.replicas.filter(r => r.alive);
        await pay(pick(live), opts.orderIds[from + Math.floor(Math.random() * (released - from))], opts.stats);
      }
    }),
  );
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
