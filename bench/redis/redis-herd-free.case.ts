import { LockService } from '../../lib/index.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import type { BenchCase, SubjectResult } from '../bench.types.js';
import { commandCalls, describeOp, perOp } from './redis-stats.js';

/**
 * Case 10 (Redis): N waiters queued on one key (N acquires of one LockService, each its own
 * entry). Once all wait, the holder releases and the chain of N handoffs runs; Redis's command
 * counts over the chain, divided by N, give the PUBLISHes and script calls per release.
 * Herd-free: constant in N (a release tells only the entry it lets in).
 */
export const redisHerdFree: BenchCase = async ({ redis, quick, progress }) => {
  const sizes = quick ? [10, 50] : [10, 100, 1000];
  const subjects: SubjectResult[] = [];
  const perRelease: number[] = [];
  for (const n of sizes) {
    progress(`case 10: ${n} waiters`);
    const locks = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: `bench/redis-herd-${n}/`, ttl: 30 });
    try {
      await (await locks.acquire('warm-up')).release();
      const holder = await locks.acquire('herd');
      let waiting = 0;
      const queued = new Promise<void>(resolve => locks.events$.subscribe(e => e.type === 'waiting' && ++waiting === n && resolve()));
      const chain = Promise.all(Array.from({ length: n }, () => locks.withLock('herd', () => undefined, { waitTimeout: 120_000 })));
      await queued;
      const before = await commandCalls(redis.url);
      const started = performance.now();
      await holder.release();
      await chain;
      const ms = performance.now() - started;
      const op = perOp(before, await commandCalls(redis.url), n);
      perRelease.push(op.publish);
      subjects.push({ subject: `${n} waiters`, perSecond: n / (ms / 1000), mean: ms / n, note: describeOp(op) });
    } finally {
      await locks.close();
    }
  }
  const spread = Math.max(...perRelease) - Math.min(...perRelease);
  return {
    id: '10',
    title: 'Redis: herd-free waiting, a chain of N handoffs on one key',
    subjects,
    targets: [{ target: `constant PUBLISHes per release from ${sizes[0]} to ${sizes.at(-1)} waiters`, measured: perRelease.map(x => x.toFixed(2)).join(' / '), met: spread <= 0.1 }],
  };
};
