// An unreachable Redis, as a user meets it: a typed error that names the Redis and the cause,
// caught as RedisUnavailableError or, for any backend, LockStoreUnavailableError.
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts } from '../harness/etcd.js';
import { Redis } from 'ioredis';
import { startRedis } from '../harness/redis.js';
import { RedisBackend } from '../lib/backends/redis/index.js';
import { LockService, LockStoreUnavailableError, RedisUnavailableError } from '../lib/index.js';

describe('Redis unreachable', () => {
  it('the first acquire rejects with RedisUnavailableError (REDIS_UNAVAILABLE) once connectTimeout is out, not waitTimeout, naming the URL and ECONNREFUSED', async () => {
    const [port] = await freePorts(1); // nothing listens there
    const url = `redis://127.0.0.1:${port}`;
    const locks = new LockService({ backend: new RedisBackend({ url }), prefix: 'unreachable/', connectTimeout: 300 });
    try {
      const err = await locks.acquire('order:1', { waitTimeout: 60_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisUnavailableError);
      expect(err).toBeInstanceOf(LockStoreUnavailableError);
      expect(err).toMatchObject({ code: 'REDIS_UNAVAILABLE', where: `Redis at ${url}`, message: expect.stringMatching(new RegExp(`^Redis at ${url} did not answer: .*ECONNREFUSED.*Check that Redis is running and reachable\\.$`)) });
    } finally {
      await locks.close();
    }
  });

  it('a Redis that comes up within connectTimeout: the first acquire waits for it and gets the lock', async () => {
    const redis = await startRedis();
    await redis.kill(); // down when the service starts
    const locks = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: 'unreachable/', connectTimeout: 10_000 });
    try {
      const acquiring = locks.acquire('order:1');
      await sleep(300);
      await redis.start();
      await (await acquiring).release();
    } finally {
      await locks.close();
      await redis.stop();
    }
  });

  it('a Redis stopped under a running service: the acquire reports REDIS_UNAVAILABLE; started again, the same service locks and leaves nothing behind', async () => {
    const redis = await startRedis({ appendOnly: true }); // the session key survives the restart: the same session goes on
    const locks = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: 'unreachable/' });
    try {
      await (await locks.acquire('order:1')).release();
      await redis.kill();
      await expect(locks.acquire('order:2', { waitTimeout: 500 })).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
      await redis.start();
      await (await locks.acquire('order:3', { waitTimeout: 10_000 })).release();
      await locks.close();
      const admin = new Redis(redis.url);
      expect(await admin.keys('{unreachable/}:*').finally(() => admin.disconnect())).not.toContainEqual(expect.stringMatching(/:(q|m|s|e):|:sessions$/));
    } finally {
      await locks.close();
      await redis.stop();
    }
  });
});
