import type { BenchCase, SubjectResult } from '../bench.types.js';
import { perOperation, readCounters, type EtcdCounters } from '../etcd-metrics.js';
import { startChildren, type BenchChild } from '../support/child.js';
import type { HotHold } from '../support/loops.js';
import { latencyStats } from '../stats.js';

const PROCESSES = 4;
const LOOPS_PER_PROCESS = 2; // 8 contenders on one key
const HOLD_MS = 1;

interface Run {
  holds: HotHold[];
  elapsedMs: number;
  rpc: EtcdCounters;
}

/**
 * Case 7: a hot key, fair (FIFO, the default) against unfair (`fair: false`). 8 contenders in
 * 4 processes loop on one key for a fixed time, holding it ~1 ms. Rounds alternate fair and
 * unfair, so drift in the machine's speed falls on both. Per mode: acquisitions per second;
 * the time the lock sits free between two holders (next holder's acquire resolving − previous
 * holder calling release(), in token order), overall and when it goes to another process;
 * how often the releaser takes it straight back; and the spread of holds per contender.
 */
export const hotKey: BenchCase = async ({ etcd, quick, progress }) => {
  const durationMs = quick ? 500 : 3000;
  const rounds = quick ? 1 : 2;
  const runs: Record<'fair' | 'unfair', Run[]> = { fair: [], unfair: [] };
  let children: BenchChild[] = [];
  try {
    progress(`case 7: starting ${PROCESSES} worker processes`);
    children = await startChildren(PROCESSES, etcd.endpoints);
    for (const c of children) await c.request({ op: 'hot-key', key: 'hot-warm-up', waiters: 1, durationMs: 1, holdMs: 0, fair: true }); // sessions open: one acquire at least
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['fair', 'unfair'] as const) {
        progress(`case 7, round ${round + 1}: ${mode}, ${PROCESSES * LOOPS_PER_PROCESS} contenders`);
        const key = `hot-${mode}-${round}`;
        const before = await readCounters(etcd);
        const started = performance.now();
        const holds = (
          await Promise.all(
            children.map(c => c.request<HotHold[]>({ op: 'hot-key', key, waiters: LOOPS_PER_PROCESS, durationMs, holdMs: HOLD_MS, fair: mode === 'fair' })),
          )
        ).flat();
        const elapsedMs = performance.now() - started;
        runs[mode].push({ holds, elapsedMs, rpc: perOperation(before, await readCounters(etcd), holds.length) });
      }
    }
  } finally {
    await Promise.all(children.map(c => c.stop()));
  }

  const summary = (mode: 'fair' | 'unfair') => {
    const gaps: number[] = [];
    const toOtherProcess: number[] = [];
    let retaken = 0;
    const perContender = new Map<string, number>();
    let holds = 0;
    let elapsedMs = 0;
    for (const run of runs[mode]) {
      const ordered = [...run.holds].sort((a, b) => (BigInt(a.token) < BigInt(b.token) ? -1 : 1));
      for (let i = 1; i < ordered.length; i++) {
        const gap = ordered[i].acquiredAt - ordered[i - 1].releaseCalledAt;
        gaps.push(gap);
        if (ordered[i].who === ordered[i - 1].who) retaken++;
        if (ordered[i].who.split('-')[0] !== ordered[i - 1].who.split('-')[0]) toOtherProcess.push(gap);
      }
      for (const h of run.holds) perContender.set(`${mode}-${h.who}`, (perContender.get(`${mode}-${h.who}`) ?? 0) + 1);
      holds += run.holds.length;
      elapsedMs += run.elapsedMs;
    }
    const rpc = runs[mode].reduce<Partial<EtcdCounters>>((sum, r) => {
      for (const [k, v] of Object.entries(r.rpc) as [keyof EtcdCounters, number][]) sum[k] = (sum[k] ?? 0) + (v * r.holds.length) / holds;
      return sum;
    }, {});
    const counts = [...perContender.values()];
    return { gaps: latencyStats(gaps), other: latencyStats(toOtherProcess), retaken: retaken / gaps.length, perSecond: holds / (elapsedMs / 1000), rpc, min: Math.min(...counts), max: Math.max(...counts), holds };
  };
  const fair = summary('fair');
  const unfair = summary('unfair');
  const subjects: SubjectResult[] = [];
  for (const [name, s] of [['fair (FIFO, default)', fair], ['unfair (fair: false)', unfair]] as const) {
    subjects.push({
      subject: `${name}: lock free between holders`,
      perSecond: s.perSecond,
      ...s.gaps,
      rpc: s.rpc,
      note: `${s.holds} holds; ${(s.retaken * 100).toFixed(0)} % re-taken by the releaser; holds per contender ${s.min}..${s.max}; ${s.rpc.txn!.toFixed(2)} txn/acquisition`,
    });
    subjects.push({ subject: `${name}: to another process`, ...s.other, note: `${s.other.count} such handoffs` });
  }
  const rate = unfair.perSecond / fair.perSecond;
  const free = fair.gaps.p50 / unfair.gaps.p50;
  return {
    id: '7',
    title: `Hot key, fair vs unfair: ${PROCESSES * LOOPS_PER_PROCESS} contenders in ${PROCESSES} processes, ~${HOLD_MS} ms holds`,
    subjects,
    targets: [], // the issue asks for the measurement, not a figure
    notes: [
      `unfair / fair: ${rate.toFixed(2)} x the acquisitions per second (${unfair.perSecond.toFixed(0)} vs ${fair.perSecond.toFixed(0)}/s); ` +
        `lock free between holders, p50: ${unfair.gaps.p50.toFixed(2)} vs ${fair.gaps.p50.toFixed(2)} ms (fair / unfair = ${free.toFixed(2)})`,
      `the price of unfair: holds per contender ${unfair.min}..${unfair.max} (fair ${fair.min}..${fair.max}); ` +
        `${unfair.rpc.watchEvents!.toFixed(2)} watch events and ${unfair.rpc.txn!.toFixed(2)} txn per acquisition (fair ${fair.rpc.watchEvents!.toFixed(2)} and ${fair.rpc.txn!.toFixed(2)})`,
    ],
  };
};
