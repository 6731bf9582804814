import { LockService } from '../../lib/index.js';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import type { BenchCase, SubjectResult } from '../bench.types.js';
import { perOperation, readCounters } from '../etcd-metrics.js';
import { latencyStats } from '../stats.js';
import { bareLease, enqueue, guardedDelete, revokeBareLease } from '../support/bare-etcd.js';

/**
 * Case 1: an uncontended acquire + release on one key, sequential, against the floor (a put
 * then a delete: the least etcd work a lock cycle can do), etcd3's own Lock, and the two
 * transactions of a lock cycle sent bare (the enqueue's put-if-absent with its read of the
 * queue, then the guarded delete): the least a client of this design can spend. Subjects run
 * in interleaved rounds so that drift in the machine's speed hits all of them alike; client
 * CPU is this process's, per cycle.
 */
export const uncontendedCycle: BenchCase = async ({ etcd, quick, progress }) => {
  const cycles = quick ? 30 : 1500;
  const rounds = quick ? 1 : 3;
  const client = createEtcdClient({ hosts: etcd.endpoints });
  const locks = new LockService({ client, prefix: 'bench/uncontended/', ttl: 10 });
  const bareQueue = Buffer.from('bench/bare/k/');
  const bareKey = Buffer.from('bench/bare/k/x-1');
  const lease = bareLease(client); // the key on a lease, as the library's is
  const subjects: Record<string, (i: number) => Promise<unknown>> = {
    'floor (put + delete)': async () => {
      await client.put('bench/floor/k').value('x');
      await client.delete().key('bench/floor/k');
    },
    'two bare Txns (same shape)': async () => {
      const res = await client.kv.txn(enqueue(bareQueue, bareKey, await lease));
      await client.kv.txn(guardedDelete(bareKey, BigInt(res.header.revision)));
    },
    'etcd3 Lock': async () => {
      const lock = client.lock('bench/etcd3-lock/k');
      await lock.acquire();
      await lock.release();
    },
    'nestjs-etcd-lock': async () => {
      const lock = await locks.acquire('k');
      await lock.release();
    },
  };
  try {
    await (await locks.acquire('warm-up')).release(); // opens the session: one grant, once
    const samples = new Map<string, number[]>(Object.keys(subjects).map(s => [s, []]));
    const spent = new Map<string, number>(Object.keys(subjects).map(s => [s, 0]));
    const cpu = new Map<string, number>(Object.keys(subjects).map(s => [s, 0])); // µs
    const results = new Map<string, SubjectResult>();
    for (let round = 1; round <= rounds; round++) {
      for (const [subject, cycle] of Object.entries(subjects)) {
        progress(`case 1, round ${round}/${rounds}: ${subject}`);
        for (let i = 0; i < Math.min(50, cycles / 10); i++) await cycle(i); // warm-up
        const before = await readCounters(etcd);
        const started = performance.now();
        const cpuBefore = process.cpuUsage();
        for (let i = 0; i < cycles; i++) {
          const t = performance.now();
          await cycle(i);
          samples.get(subject)!.push(performance.now() - t);
        }
        const cpuSpent = process.cpuUsage(cpuBefore);
        spent.set(subject, spent.get(subject)! + (performance.now() - started));
        cpu.set(subject, cpu.get(subject)! + cpuSpent.user + cpuSpent.system);
        const rpc = perOperation(before, await readCounters(etcd), cycles);
        results.set(subject, { subject, rpc });
      }
    }
    const subjectsOut = [...results.values()].map(result => {
      const stats = latencyStats(samples.get(result.subject)!);
      const cpuPerCycle = cpu.get(result.subject)! / (cycles * rounds);
      return { ...result, ...stats, perSecond: (cycles * rounds) / (spent.get(result.subject)! / 1000), cpuPerCycle, note: `${cpuPerCycle.toFixed(0)} µs client CPU per cycle` };
    });
    const [floor, bare, etcd3, ours] = subjectsOut;
    const timeRatio = ours.mean / floor.mean;
    const speedRatio = ours.perSecond / etcd3.perSecond;
    const cpuRatio = ours.cpuPerCycle / bare.cpuPerCycle;
    return {
      id: '1',
      title: 'Uncontended acquire + release, one key, sequential',
      subjects: subjectsOut,
      targets: [
        { target: 'time per cycle <= 1.10 x floor', measured: `${timeRatio.toFixed(2)} x`, met: timeRatio <= 1.1 },
        { target: 'time per cycle <= 1.30 x floor', measured: `${timeRatio.toFixed(2)} x (two bare Txns: ${(bare.mean / floor.mean).toFixed(2)} x)`, met: timeRatio <= 1.3 },
        {
          target: 'client CPU per cycle <= 1.15 x two bare Txns',
          measured: `${cpuRatio.toFixed(2)} x (${ours.cpuPerCycle.toFixed(0)} / ${bare.cpuPerCycle.toFixed(0)} µs)`,
          met: cpuRatio <= 1.15,
        },
        { target: 'cycles/s >= 1.8 x etcd3 Lock', measured: `${speedRatio.toFixed(2)} x`, met: speedRatio >= 1.8 },
        { target: '2 unary RPCs per cycle', measured: `${ours.rpc!.unary}`, met: ours.rpc!.unary === 2 },
        { target: '0 lease grants per cycle', measured: `${ours.rpc!.leaseGrant}`, met: ours.rpc!.leaseGrant === 0 },
      ],
    };
  } finally {
    await revokeBareLease(client);
    await locks.close();
    client.close();
  }
};
