import { LockBoard } from '../../lib/board/lock-board.js';
import { LockService } from '../../lib/index.js';
import type { BenchCase, SubjectResult } from '../bench.types.js';
import { perOperation, readCounters, type EtcdCounters } from '../etcd-metrics.js';

const HOLDERS = 3; // three processes' sessions: three leases
const LOCKS_PER_HOLDER = 2;

/**
 * Case 12: what the lock board costs etcd while the locks sit still. Three sessions hold two
 * locks each; the board watches the prefix. Per second: etcd's unary RPCs (from its
 * /metrics) with no page open, one page (one live stream) and two. An open page has the
 * locks read once a second (one Range and one LeaseTimeToLive per lease); a second page
 * shares that reading; no page, no reading.
 */
export const boardLoad: BenchCase = async ({ etcd, quick, progress }) => {
  const seconds = quick ? 4 : 10; // 4 s: one reading more or less is not mistaken for a second reader
  const prefix = 'bench/board/';
  const holders = Array.from({ length: HOLDERS }, () => new LockService({ etcd: { hosts: etcd.endpoints }, prefix, ttl: 10 }));
  const viewerService = new LockService({ etcd: { hosts: etcd.endpoints }, prefix, ttl: 10 });
  const board = new LockBoard(viewerService, { windowMinutes: 60 });
  const subjects: SubjectResult[] = [];
  const perSecond: EtcdCounters[] = [];
  try {
    for (const [h, service] of holders.entries()) for (let i = 0; i < LOCKS_PER_HOLDER; i++) await service.acquire(`order:${h}-${i}`);
    await board.start();
    for (const pages of [0, 1, 2]) {
      progress(`case 12: ${pages} page(s) open, ${seconds} s`);
      const streams = Array.from({ length: pages }, () => board.stream().subscribe());
      await sleep(1500); // past the first reading
      const before = await readCounters(etcd);
      await sleep(seconds * 1000);
      const rpc = perOperation(before, await readCounters(etcd), seconds);
      for (const s of streams) s.unsubscribe();
      perSecond.push(rpc);
      subjects.push({ subject: `${pages} page${pages === 1 ? '' : 's'} open`, rpc, note: `${rpc.range.toFixed(1)} Range/s, ${(rpc.unary - rpc.range).toFixed(1)} other unary/s` });
    }
  } finally {
    board.stop();
    await Promise.all([viewerService, ...holders].map(s => s.close()));
  }
  const [none, one, two] = perSecond as [EtcdCounters, EtcdCounters, EtcdCounters];
  const perReading = 1 + HOLDERS; // one Range, one LeaseTimeToLive per lease
  return {
    id: '12',
    title: `Lock board, ${HOLDERS} sessions holding ${HOLDERS * LOCKS_PER_HOLDER} locks, nothing changing: etcd unary RPCs per second`,
    subjects,
    targets: [
      { target: 'no page open: 0 unary RPCs/s', measured: `${none.unary.toFixed(2)}/s`, met: none.unary === 0 },
      { target: `one page open: at most ${perReading} unary RPCs/s (one reading a second)`, measured: `${one.unary.toFixed(2)}/s`, met: one.unary <= perReading * 1.15 },
      { target: 'two pages cost what one does (one shared reading)', measured: `${two.unary.toFixed(2)} vs ${one.unary.toFixed(2)}/s`, met: two.unary <= one.unary * 1.15 },
    ],
  };
};

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
