import { Redis } from 'ioredis';
import { Redlock } from '@sesamecare-oss/redlock';
import { Mutex } from 'redis-semaphore';
import { LockService } from '../../lib/index.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import type { BenchCase, SubjectResult } from '../bench.types.js';
import { latencyStats } from '../stats.js';
import { commandCalls, describeOp, perOp } from './redis-stats.js';

/**
 * Case 8 (Redis): an uncontended acquire + release on one key, sequential, against the floor
 * (SET then DEL: the least Redis work a lock cycle can do), redis-semaphore's Mutex and redlock
 * on one instance, in interleaved rounds.
 */
export const redisUncontended: BenchCase = async ({ redis, quick, progress }) => {
  const cycles = quick ? 30 : 1500;
  const rounds = quick ? 1 : 3;
  const client = new Redis(redis.url);
  const redlock = new Redlock([client], { retryCount: 0 });
  // TTL 60 s: the session's one heartbeat per process (every 0.15 x TTL - 1 s, 8 s here) falls outside the counted
  // cycles; at TTL 10 s it came every 0.5 s and, on a slow run, landed among them as a third script call
  const locks = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: 'bench/redis-uncontended/', ttl: 60 });
  const subjects: Record<string, () => Promise<unknown>> = {
    'floor (SET + DEL)': async () => {
      await client.set('bench:floor', 'x');
      await client.del('bench:floor');
    },
    'redis-semaphore Mutex': async () => {
      const mutex = new Mutex(client, 'bench:semaphore', { lockTimeout: 10_000, refreshInterval: 0 });
      await mutex.acquire();
      await mutex.release();
    },
    'redlock (1 instance)': async () => {
      const lock = await redlock.acquire(['bench:redlock'], 10_000);
      await lock.release();
    },
    'nestjs-etcd-lock on Redis': async () => {
      const lock = await locks.acquire('k');
      await lock.release();
    },
  };
  try {
    await (await locks.acquire('warm-up')).release();
    const samples = new Map<string, number[]>(Object.keys(subjects).map(s => [s, []]));
    const spent = new Map<string, number>(Object.keys(subjects).map(s => [s, 0]));
    const ops = new Map<string, ReturnType<typeof perOp>>();
    for (let round = 1; round <= rounds; round++) {
      for (const [subject, cycle] of Object.entries(subjects)) {
        progress(`case 8, round ${round}/${rounds}: ${subject}`);
        for (let i = 0; i < Math.min(50, cycles / 10); i++) await cycle();
        const before = await commandCalls(redis.url);
        const started = performance.now();
        for (let i = 0; i < cycles; i++) {
          const t = performance.now();
          await cycle();
          samples.get(subject)!.push(performance.now() - t);
        }
        spent.set(subject, spent.get(subject)! + (performance.now() - started));
        ops.set(subject, perOp(before, await commandCalls(redis.url), cycles));
      }
    }
    const results: SubjectResult[] = Object.keys(subjects).map(subject => ({
      subject,
      ...latencyStats(samples.get(subject)!),
      perSecond: (cycles * rounds) / (spent.get(subject)! / 1000),
      note: describeOp(ops.get(subject)!),
    }));
    const [floor, semaphore, , ours] = results;
    const oursOp = ops.get('nestjs-etcd-lock on Redis')!;
    return {
      id: '8',
      title: 'Redis: uncontended acquire + release, one key, sequential',
      subjects: results,
      targets: [{ target: '2 round trips per cycle (2 script calls, nothing else sent; the session heartbeat is one per process)', measured: `${oursOp.scripts.toFixed(2)} script calls`, met: Math.abs(oursOp.scripts - 2) < 0.01 }],
      notes: [
        `time per cycle: ${(ours.mean! / floor.mean!).toFixed(2)} x the floor (SET + DEL); cycles/s: ${(ours.perSecond! / semaphore.perSecond!).toFixed(2)} x redis-semaphore's Mutex. ` +
          `Each of our scripts also queues, prunes holders whose session is gone and publishes the holder change for watchers (${oursOp.commands.toFixed(0)} commands inside Redis per cycle, ` +
          `${oursOp.publish.toFixed(0)} PUBLISH), where a Mutex SETs and DELs one key: that is the price of FIFO, fencing and the watch on Redis.`,
      ],
    };
  } finally {
    await locks.close();
    client.disconnect();
  }
};
