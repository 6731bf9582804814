import { setTimeout as sleep } from 'node:timers/promises';
import { LockService } from '../../lib/index.js';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import type { EtcdHandle } from '../../harness/etcd.js';
import type { BenchCase, SubjectResult } from '../bench.types.js';
import { perOperation, readCounters } from '../etcd-metrics.js';

/** etcd's gauge of registered watchers (0 if this etcd does not export it). */
async function watchers(etcd: EtcdHandle): Promise<number> {
  const line = (await etcd.metrics()).split('\n').find(l => l.startsWith('etcd_debugging_mvcc_watcher_total '));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/**
 * Case 4: N waiters queued on one key (N concurrent acquires of one LockService: each gets its
 * own queue key, like N processes). Once they all wait, the holder releases and the chain of
 * N handoffs runs; etcd's counters over the chain, divided by N, give the watch events and
 * Txns per handoff. Herd-free: constant in N (each waiter watches only its predecessor).
 */
export const herdFree: BenchCase = async ({ etcd, quick, progress }) => {
  const sizes = quick ? [10, 50] : [10, 100, 1000];
  const client = createEtcdClient({ hosts: etcd.endpoints });
  const subjects: SubjectResult[] = [];
  try {
    for (const n of sizes) {
      progress(`case 4: ${n} waiters`);
      const locks = new LockService({ client, prefix: `bench/herd-${n}/`, ttl: 30 });
      try {
        await (await locks.acquire('warm-up')).release();
        let waiting = 0;
        const sub = locks.events$.subscribe(e => e.type === 'waiting' && waiting++);
        const holder = await locks.acquire('k');
        const baseWatchers = await watchers(etcd);
        const done = Array.from({ length: n }, async () => {
          const lock = await locks.acquire('k', { waitTimeout: 300_000 });
          await lock.release();
        });
        // every waiter queued and watching its predecessor (or, if etcd has no gauge, a pause)
        for (let i = 0; i < 600 && (waiting < n || (await watchers(etcd)) < baseWatchers + n); i++) await sleep(50);
        await sleep(100);
        sub.unsubscribe();
        const before = await readCounters(etcd);
        const started = performance.now();
        await holder.release();
        await Promise.all(done);
        const elapsedMs = performance.now() - started;
        const rpc = perOperation(before, await readCounters(etcd), n);
        subjects.push({
          subject: `nestjs-etcd-lock, ${n} waiters`,
          perSecond: n / (elapsedMs / 1000),
          mean: elapsedMs / n,
          rpc,
          note: `${rpc.txn.toFixed(2)} txn, ${rpc.watchRequests.toFixed(2)} watch msgs per handoff`,
        });
      } finally {
        await locks.close();
      }
    }
  } finally {
    client.close();
  }
  const events = subjects.map(s => s.rpc!.watchEvents!);
  // to the hundredth shown: 1.10 - 1.00 is 0.10000000000000009 in floating point
  const spread = Math.round((Math.max(...events) - Math.min(...events)) * 100) / 100;
  const constant = spread <= 0.1;
  return {
    id: '4',
    title: 'Herd-free waiting: N waiters on one key, release chain',
    subjects,
    targets: [
      { target: 'watch events per handoff <= 2', measured: events.map((e, i) => `${sizes[i]}: ${e.toFixed(2)}`).join(', '), met: events.every(e => e <= 2) },
      { target: `events per handoff constant across ${sizes.join('/')}`, measured: `spread ${spread.toFixed(2)}`, met: constant },
    ],
    notes: events[0] > 1
      ? [`${sizes[0]} waiters: ${events[0].toFixed(2)} events per handoff, ${Math.round((events[0] - 1) * sizes[0])} event(s) more than one per handoff in the whole chain, not one more per waiter.`]
      : [],
  };
};
