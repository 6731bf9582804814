// A child process of the bench: its own etcd client and LockService, driven over IPC by
// bench/support/child.ts, so that cases can measure several processes at once.
import { setTimeout as sleep } from 'node:timers/promises';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import { prefixEnd } from '../../lib/backends/etcd/lock-key.js';
import { LockService } from '../../lib/index.js';
import type { EtcdHandle } from '../../harness/etcd.js';
import { readCounters, type EtcdCounters } from '../etcd-metrics.js';
import { revokeBareLease } from '../support/bare-etcd.js';
import { cycleOf, runContended, runHotKey, runThroughput, type ContendSubject, type Hold, type HotHold, type ThroughputSubject } from '../support/loops.js';

export type WorkerCommand =
  | { op: 'throughput'; subject: ThroughputSubject; keys: string[]; durationMs: number; warmUp: number }
  | { op: 'contend'; subject: ContendSubject; key: string; waiters: number; holds: number; holdMs: number }
  | { op: 'scale'; prefix: string; locks: number; concurrency: number }
  | { op: 'hot-key'; key: string; waiters: number; durationMs: number; holdMs: number; fair: boolean }
  | { op: 'cycles'; key: string; cycles: number; warmUp: number }
  | { op: 'close' };

/** What the scale command measured in this process. */
export interface ScaleResult {
  locks: number;
  acquireMs: number; // until every acquire resolved
  watchesAttachedMs: number; // until etcd counted a watcher per held lock
  releaseMs: number;
  heapBytesPerLock: number;
  gcExposed: boolean;
  rpc: EtcdCounters; // counters spent while acquiring, totals (not per lock)
  leasesOfHeldKeys: number; // distinct leases on the held queue keys
  heldKeys: number;
  leasesInEtcdBefore: number;
  leasesInEtcdHeld: number;
}

// BENCH_OTEL=sdk (or =context): the OpenTelemetry SDK is registered before the LockService is made, as an app's instrumentation file does
if (process.env.BENCH_OTEL) await import('../support/otel-sdk.js');

const hosts = process.env.ETCD_ENDPOINTS!.split(',');
const client = createEtcdClient({ hosts });
const locks = new LockService({ client, prefix: 'bench/worker/', ttl: 10 });
const etcd = { endpoints: hosts, metrics: async () => (await fetch(`${hosts[0]}/metrics`)).text() } as EtcdHandle;

const gc = () => (globalThis as { gc?: () => void }).gc?.();
const watcherGauge = async () => {
  const line = (await etcd.metrics()).split('\n').find(l => l.startsWith('etcd_debugging_mvcc_watcher_total '));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Infinity;
};
const leaseCount = async () => (await client.leaseClient.leaseLeases()).leases.length;

async function scale(prefix: string, count: number, concurrency: number): Promise<ScaleResult> {
  const service = new LockService({ client, prefix, ttl: 30 });
  try {
    // the session opens its lease and streams at the first acquire: warm up first
    for (let i = 0; i < 20; i++) await (await service.acquire(`warm-${i}`)).release();
    const leasesInEtcdBefore = await leaseCount();
    for (let i = 0; i < 3; i++) gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const before = await readCounters(etcd);
    const held: Awaited<ReturnType<LockService['acquire']>>[] = new Array(count);
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < count; i = next++) held[i] = await service.acquire(`lock-${i}`);
      }),
    );
    const acquireMs = performance.now() - started;
    // each held lock watches its own key; etcd3 attaches watches one at a time: wait for them all
    const watchDeadline = performance.now() + 120_000;
    while ((await watcherGauge()) < count && performance.now() < watchDeadline) await sleep(20);
    const watchesAttachedMs = performance.now() - started;
    const rpc = await readCounters(etcd);
    for (const key of Object.keys(rpc) as (keyof EtcdCounters)[]) rpc[key] -= before[key];
    for (let i = 0; i < 3; i++) gc();
    const heapBytesPerLock = (process.memoryUsage().heapUsed - heapBefore) / count;
    const res = await client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(Buffer.from(prefix)), keys_only: true });
    const queueKeys = res.kvs.filter(kv => !kv.key.toString().startsWith(`${prefix}\u0000`)); // not the session's lease marker
    const leasesOfHeldKeys = new Set(queueKeys.map(kv => String(kv.lease))).size;
    const leasesInEtcdHeld = await leaseCount();
    const releaseStarted = performance.now();
    next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < count; i = next++) await held[i].release();
      }),
    );
    return {
      locks: count,
      acquireMs,
      watchesAttachedMs,
      releaseMs: performance.now() - releaseStarted,
      heapBytesPerLock,
      gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
      rpc,
      leasesOfHeldKeys,
      heldKeys: queueKeys.length,
      leasesInEtcdBefore,
      leasesInEtcdHeld,
    };
  } finally {
    await service.close();
  }
}

async function run(command: WorkerCommand): Promise<unknown> {
  switch (command.op) {
    case 'throughput': {
      const cycle = cycleOf(command.subject, client, locks);
      for (let i = 0; i < command.warmUp; i++) await Promise.all(command.keys.map(cycle));
      return runThroughput(cycle, command.keys, command.durationMs);
    }
    case 'contend':
      return runContended(command.subject, client, locks, command.key, command.waiters, command.holds, command.holdMs) satisfies Promise<Hold[]>;
    case 'scale':
      return scale(command.prefix, command.locks, command.concurrency);
    case 'hot-key':
      return runHotKey(locks, command.key, command.waiters, command.durationMs, command.holdMs, command.fair) satisfies Promise<HotHold[]>;
    case 'cycles': {
      // case 1's loop: sequential acquire + release of one key; the time of each cycle, in ms
      const cycle = cycleOf('ours', client, locks);
      for (let i = 0; i < command.warmUp; i++) await cycle(command.key);
      const samples: number[] = [];
      for (let i = 0; i < command.cycles; i++) {
        const t = performance.now();
        await cycle(command.key);
        samples.push(performance.now() - t);
      }
      return samples;
    }
    case 'close':
      await revokeBareLease(client);
      await locks.close();
      client.close();
      return null;
  }
}

process.on('message', (message: { id: number; command: WorkerCommand }) => {
  run(message.command).then(
    result => process.send?.({ id: message.id, ok: true, result }),
    (err: Error) => process.send?.({ id: message.id, ok: false, error: err?.stack ?? String(err) }),
  );
});
process.send?.({ ready: true });
