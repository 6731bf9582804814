// Small helpers for fault tests that drive LockWorker processes running the fenced loop.
import { SortOrder, SortTarget, type Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { prefixEnd } from '../../lib/backends/etcd/lock-key.js';
import { decodeOwner } from '../../lib/common/owner-record.js';
import { isInternalKey } from './etcd-state.js';
import type { LockWorker } from './lock-worker.js';

/** Holds announced so far by all workers ('in-section' events). */
export function holdsSoFar(workers: LockWorker[]): number {
  return workers.reduce((sum, w) => sum + w.events.filter(e => e.event === 'in-section').length, 0);
}

/** Waits until `count` holds have been announced; returns the newest holder and its token. */
export async function holdAnnounced(workers: LockWorker[], count: number, timeoutMs = 10_000): Promise<{ worker: LockWorker; token: bigint }> {
  const until = performance.now() + timeoutMs;
  while (holdsSoFar(workers) < count) {
    if (performance.now() > until) throw new Error(`only ${holdsSoFar(workers)} of ${count} holds announced within ${timeoutMs} ms`);
    await sleep(2);
  }
  let newest: { worker: LockWorker; token: bigint } | undefined;
  for (const worker of workers) {
    for (const e of worker.events) if (e.event === 'in-section' && (!newest || e.token! > newest.token)) newest = { worker, token: e.token! };
  }
  return newest!;
}

/** The queue under `prefix`, holder first: each key's process (from its owner record) and lease. */
export async function queueEntries(admin: Etcd3, prefix: string): Promise<{ pid: number; lease: string }[]> {
  const res = await admin.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(Buffer.from(prefix)), sort_order: SortOrder.Ascend, sort_target: SortTarget.Create });
  return res.kvs.filter(kv => !isInternalKey(kv.key)).map(kv => ({ pid: decodeOwner(kv.value).pid, lease: String(kv.lease) }));
}

/** The pids of the processes queued under `prefix`, holder first. */
export async function queueOwners(admin: Etcd3, prefix: string): Promise<number[]> {
  return (await queueEntries(admin, prefix)).map(e => e.pid);
}
