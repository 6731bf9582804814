// Fault scenarios with the locks on a real Redis, under the same safety checker as etcd's: worker
// processes loop on one lock (LOCK_REDIS_URL) and a fenced register. The register, the resource
// the lock protects, lives apart, in an etcd. What Redis cannot promise is recorded here too: a
// restart without persistence forgets the token counter.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { startRedis, type RedisHandle } from '../../harness/redis.js';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import { LockLostError, LockService } from '../../lib/index.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import { holdAnnounced, holdsSoFar } from '../support/fault-helpers.js';
import { LockWorker } from '../support/lock-worker.js';
import { checkSafety } from '../support/safety-checker.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const PREFIX = 'redis-faults/';
const TTL = 1; // seconds
let data: EtcdHandle;
let admin: Etcd3;
let workers: LockWorker[] = [];

/** Nothing of the prefix is left in Redis but its token counter, which never goes. */
async function expectRedisClean(redis: RedisHandle): Promise<void> {
  const client = new Redis(redis.url);
  try {
    let left: string[] = [];
    for (let i = 0; i < 50; i++) {
      left = (await client.keys(`{${PREFIX}}:*`)).filter(key => key !== `{${PREFIX}}:seq`);
      if (left.length === 0) break;
      await sleep(100); // the session keys of killed workers expire on Redis's clock
    }
    expect(left).toEqual([]);
  } finally {
    client.disconnect();
  }
}

async function startWorkers(redis: RedisHandle, count: number): Promise<LockWorker[]> {
  workers = await Promise.all(Array.from({ length: count }, () => LockWorker.start(data.endpoints, PREFIX, TTL, undefined, undefined, redis.url)));
  return workers;
}

beforeAll(async () => {
  data = await startEtcd();
  admin = createEtcdClient({ hosts: data.endpoints });
});

afterEach(async () => {
  for (const w of workers) w.process.kill('SIGCONT');
  await Promise.all(workers.map(w => w.stop()));
  workers = [];
});

afterAll(async () => {
  admin?.close();
  await data?.stop();
});

describe('safety with the locks on Redis', () => {
  let redis: RedisHandle;
  beforeAll(async () => void (redis = await startRedis()));
  afterAll(() => redis?.stop());

  it('no fault: 4 processes x 40 holds, every write accepted, none rejected', async () => {
    const report = await checkSafety({ name: 'redis no fault', admin, workers: await startWorkers(redis, 4), prefix: PREFIX, cycles: 40, expectLocksClean: () => expectRedisClean(redis) });
    expect(report.acceptedWrites).toBe(160);
    expect(report.rejectedStale).toBe(0);
  });

  it('a holder paused (SIGSTOP) past its TTL: a waiter takes over; resumed, its write is refused and it was told of the loss', async () => {
    let paused: { worker: LockWorker; token: bigint } | undefined;
    await startWorkers(redis, 3);
    const report = await checkSafety({
      name: 'redis SIGSTOP holder',
      admin,
      workers,
      prefix: PREFIX,
      cycles: 12,
      holdMs: 150,
      expectLocksClean: () => expectRedisClean(redis),
      fault: async () => {
        paused = await holdAnnounced(workers, 5);
        paused.worker.process.kill('SIGSTOP');
        // another process gets in once the paused one's session key expires in Redis
        await holdAnnounced(workers, holdsSoFar(workers) + 1, 10_000);
        await sleep(300);
        paused.worker.process.kill('SIGCONT');
      },
    });
    const lost = paused!.worker.events.find(e => e.event === 'lost' && e.token === paused!.token);
    expect(lost?.reason).toBe('session-expired');
    expect(report.rejectedStale).toBeGreaterThanOrEqual(1);
  });

  it('a holder killed (SIGKILL): the next waiter gets the lock once its session key expires, with no polling', async () => {
    let killed = 0;
    await startWorkers(redis, 3);
    const report = await checkSafety({
      name: 'redis SIGKILL holder',
      admin,
      workers,
      prefix: PREFIX,
      cycles: 8,
      holdMs: 100,
      expectLocksClean: () => expectRedisClean(redis),
      fault: async () => {
        const holder = await holdAnnounced(workers, 4);
        await holder.worker.signal('SIGKILL');
        killed++;
      },
    });
    expect(killed).toBe(1);
    expect(report.killed).toBe(1);
  });
});

describe('network faults between a holder and Redis (a proxy per worker)', () => {
  it('a blackholed holder (no RST) declares the lock lost at its local deadline, before a waiter gets it; its late write is refused', async () => {
    const redis = await startRedis();
    const proxies = await Promise.all([0, 1, 2].map(() => startTcpProxy(redis.url)));
    try {
      workers = await Promise.all(proxies.map(proxy => LockWorker.start(data.endpoints, PREFIX, TTL, undefined, undefined, proxy.url.replace('http://', 'redis://'))));
      let holder: { worker: LockWorker; token: bigint } | undefined;
      let lostAt = 0;
      const report = await checkSafety({
        name: 'redis blackholed holder',
        admin,
        workers,
        prefix: PREFIX,
        cycles: 2,
        holdMs: 1_500, // longer than the TTL: the holder is still in its hold when its deadline passes
        expectLocksClean: () => expectRedisClean(redis),
        fault: async () => {
          holder = await holdAnnounced(workers, 2);
          const proxy = proxies[workers.indexOf(holder.worker)];
          proxy.setMode('blackhole');
          lostAt = (await holder.worker.waitForEvent(e => e.event === 'lost' && e.token === holder!.token, 5_000)).at;
          await holdAnnounced(workers, holdsSoFar(workers) + 1, 10_000); // a waiter takes over
          proxy.setMode('pass');
          proxy.cut(); // connections that lost bytes cannot resume: the client reconnects
        },
      });
      expect(holder!.worker.events.find(e => e.event === 'lost' && e.token === holder!.token)?.reason).toBe('session-expired');
      const heldSince = holder!.worker.events.find(e => e.event === 'in-section' && e.token === holder!.token)!.at;
      const nextElsewhere = Math.min(...workers.filter(w => w !== holder!.worker).flatMap(w => w.events.filter(e => e.event === 'in-section' && e.at > heldSince).map(e => e.at)));
      expect(lostAt).toBeLessThan(nextElsewhere); // told before anyone else got in
      expect(report.acceptedWrites).toBeGreaterThanOrEqual(4);
    } finally {
      for (const proxy of proxies) proxy.setMode('pass');
      await Promise.all(workers.map(w => w.stop()));
      workers = [];
      await Promise.all(proxies.map(proxy => proxy.close()));
      await redis.stop();
    }
  }, 60_000);
});

describe('Redis restarted', () => {
  it('with AOF (appendfsync always): the queue, sessions and token counter survive; the workers ride it out safely', async () => {
    const redis = await startRedis({ appendOnly: true });
    try {
      await startWorkers(redis, 3);
      const report = await checkSafety({
        name: 'redis restart with AOF',
        admin,
        workers,
        prefix: PREFIX,
        cycles: 10,
        holdMs: 50,
        timeoutMs: 40_000,
        expectLocksClean: () => expectRedisClean(redis),
        expectedFailures: ['LOCK_TIMEOUT', 'LOCK_LOST', 'REDIS_UNAVAILABLE'],
        fault: async () => {
          await holdAnnounced(workers, 6);
          await redis.kill();
          await sleep(300); // well within the TTL: sessions need not expire
          await redis.start();
        },
      });
      expect(report.acceptedWrites).toBeGreaterThan(0);
    } finally {
      await redis.stop();
    }
  }, 60_000);

  it('without persistence: the token counter starts again, so tokens go backwards (recorded: Redis cannot promise more)', async () => {
    const redis = await startRedis();
    const locks = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: PREFIX, ttl: 2 });
    try {
      let before = 0n;
      for (let i = 0; i < 5; i++) await locks.withLock('restart', lock => void (before = lock.token));
      await redis.kill();
      await redis.start();
      // the session's key went with the data: the acquire finds it gone before it queued, and queues again on a new session
      const after: bigint | undefined = await locks.withLock('restart', lock => lock.token, { waitTimeout: 10_000 });
      expect(before).toBe(5n);
      expect(after).toBeDefined();
      expect(after!).toBeLessThan(before); // a fenced resource refuses it: the sign that the lock store lost data
    } finally {
      await locks.close();
      await redis.stop();
    }
  }, 30_000);
});

describe('Redis failover (asynchronous replication)', () => {
  it('a replica cut off and promoted after the primary is killed lacks the last lock: a second holder gets in while the first still holds, with a token that did not go up (recorded: Redis cannot promise more)', async () => {
    const primary = await startRedis();
    const replica = await startRedis({ replicaOf: primary.port });
    const primaryAdmin = new Redis(primary.url);
    const replicaAdmin = new Redis(replica.url);
    const first = new LockService({ backend: new RedisBackend({ url: primary.url }), prefix: PREFIX, ttl: 2, ownerId: 'first' });
    const second = new LockService({ backend: new RedisBackend({ url: replica.url }), prefix: PREFIX, ttl: 2, ownerId: 'second' });
    try {
      for (let i = 0; i < 50 && !/master_link_status:up/.test(await replicaAdmin.info('replication')); i++) await sleep(100);
      for (let i = 0; i < 3; i++) await first.withLock('warm-up', () => undefined);
      expect(await primaryAdmin.wait(1, 2_000)).toBe(1); // the replica has all of it so far
      // the replication link breaks (a paused replica would still read what the kernel buffered for it): the
      // replica misses what the primary acknowledges from now on, and is promoted once the primary dies
      await replicaAdmin.replicaof('NO', 'ONE');
      const held = await first.acquire('order:1');
      const lost = new Promise<unknown>(resolve => held.signal.addEventListener('abort', () => resolve(held.signal.reason), { once: true }));
      await primary.kill();

      const taken = await second.acquire('order:1', { waitTimeout: 5_000 });
      const overlap = held.isHeld; // the first holder has not been told yet: it still believes it holds the lock
      console.info(`[failover] first holder token ${held.token}, second holder token ${taken.token}; both held at once: ${overlap}`);
      expect(overlap).toBe(true);
      expect(taken.token).toBeLessThanOrEqual(held.token); // not higher: a fence that saw the first token refuses the second
      expect(await lost).toMatchObject({ reason: 'session-expired' }); // the first learns at its deadline, within the TTL
      await taken.release();
    } finally {
      await Promise.all([first.close(), second.close()]);
      primaryAdmin.disconnect();
      replicaAdmin.disconnect();
      await Promise.all([primary.stop(), replica.stop()]);
    }
  }, 30_000);
});

describe('a holder removed while its subscription was down', () => {
  it('force-unlocked while its subscribed connection reconnects (the message reaches nobody): it learns of the loss once back, not only at its release', async () => {
    const redis = await startRedis();
    const holder = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: PREFIX, ttl: 10 });
    const operator = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: PREFIX });
    const client = new Redis(redis.url);
    try {
      const held = await holder.acquire('order:1');
      await operator.getLockInfo('order:1'); // connected: its force-unlock below takes one round trip
      const told = new Promise<unknown>(resolve => held.signal.addEventListener('abort', () => resolve(held.signal.reason), { once: true }));
      // every subscribed connection dropped; the force-unlock runs before the holder's resubscribes
      expect(Number(await client.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThan(0);
      expect(await operator.forceUnlock('order:1')).toHaveLength(1);
      // its TTL is 10 s and it writes nothing more: only a look after the reconnect can tell it
      const reason = await Promise.race([told, sleep(3_000).then(() => 'not told within 3 s')]);
      expect(reason).toBeInstanceOf(LockLostError);
      // a removal missed in a reconnect cannot be told apart from a deleted entry
      expect((reason as LockLostError).reason).toBe('key-deleted');
      expect(() => held.assertHeld()).toThrow(LockLostError);
      await held.release();
    } finally {
      client.disconnect();
      await Promise.all([holder.close(), operator.close()]);
      await redis.stop();
    }
  });
});
