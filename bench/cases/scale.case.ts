import type { BenchCase } from '../bench.types.js';
import { BenchChild } from '../support/child.js';
import type { ScaleResult } from '../workers/bench.worker.js';

/**
 * Case 5: many locks held at once by one process (a child started with --expose-gc, so the
 * heap is measured after full collections), acquired 64 at a time on distinct keys. etcd
 * says how many leases the held keys use and how many streams were opened while acquiring
 * (the session opens its keepalive and watch streams at the first acquire: warmed up first).
 */
export const scale: BenchCase = async ({ etcd, quick, progress }) => {
  const count = quick ? 500 : 10_000;
  const concurrency = 64;
  progress(`case 5: ${count} locks held by one process`);
  const child = await BenchChild.start(etcd.endpoints, { exposeGc: true });
  let r: ScaleResult;
  try {
    r = await child.request<ScaleResult>({ op: 'scale', prefix: 'bench/scale/', locks: count, concurrency });
  } finally {
    await child.stop();
  }
  const perLock = (n: number) => n / count;
  const heapKb = r.heapBytesPerLock / 1024;
  const attachSeconds = (r.watchesAttachedMs - r.acquireMs) / 1000;
  const notes: string[] = [];
  if (!r.gcExposed) notes.push('global.gc was not available: heap figures include garbage');
  if (heapKb > 2) {
    notes.push(
      `heap ${heapKb.toFixed(2)} KB per held lock: each held lock keeps a HeldLock and its handle, an EtcdMutex (3 Buffers), a HolderWatch and its watch on ` +
        `the connection's one watch stream (${perLock(r.rpc.watchRequests).toFixed(2)} watch create messages per lock; all attached ${attachSeconds.toFixed(2)} s after the last acquire).`,
    );
  }
  if (r.rpc.streams !== 0) notes.push(`${r.rpc.streams} bidi streams opened while acquiring`);
  if (perLock(r.rpc.unary) > 1)
    notes.push(
      `${perLock(r.rpc.unary).toFixed(2)} unary RPCs per lock: the acquire (1 Txn) and, for a lock held past 100 ms, one read when its holder watch ` +
        `attaches after etcd moved on (a deletion before the watch began is caught by that read)`,
    );
  return {
    id: '5',
    title: `Scale: ${count} locks held at once by one process (${concurrency} acquires in flight)`,
    subjects: [
      {
        subject: `nestjs-etcd-lock, ${count} held`,
        perSecond: count / (r.acquireMs / 1000),
        mean: r.acquireMs / count,
        rpc: {
          unary: perLock(r.rpc.unary),
          txn: perLock(r.rpc.txn),
          leaseGrant: perLock(r.rpc.leaseGrant),
          watchEvents: perLock(r.rpc.watchEvents),
          watchRequests: perLock(r.rpc.watchRequests),
          streams: r.rpc.streams, // total, not per lock
        },
        note: `heap ${heapKb.toFixed(2)} KB/lock; ${r.leasesOfHeldKeys} lease(s) on ${r.heldKeys} keys; ${r.rpc.streams} new streams; all holder watches attached after ${(r.watchesAttachedMs / 1000).toFixed(2)} s; release all ${(count / (r.releaseMs / 1000)).toFixed(0)}/s`,
      },
    ],
    targets: [
      { target: 'exactly 1 lease for all held locks', measured: `${r.leasesOfHeldKeys} (leases in etcd: ${r.leasesInEtcdBefore} before, ${r.leasesInEtcdHeld} while held)`, met: r.leasesOfHeldKeys === 1 && r.heldKeys === count },
      { target: 'no new keepalive or watch stream while acquiring', measured: `${r.rpc.streams} bidi streams opened`, met: r.rpc.streams === 0 },
      { target: 'heap per held lock <= 2 KB', measured: `${heapKb.toFixed(2)} KB`, met: heapKb <= 2 },
      { target: 'heap per held lock <= 3 KB', measured: `${heapKb.toFixed(2)} KB`, met: heapKb <= 3 },
      { target: 'all holder watches attached <= 2 s after the last acquire', measured: `${(attachSeconds).toFixed(2)} s`, met: attachSeconds <= 2 },
    ],
    notes,
  };
};
