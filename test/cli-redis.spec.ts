// The operator CLI with --redis, as a child process, against a real Redis where apps keep their
// locks (here two LockServices on RedisBackend): list, info, unlock and watch, and an unreachable
// Redis named in the error.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startRedis, type RedisHandle } from '../harness/redis.js';
import { RedisBackend } from '../lib/backends/redis/index.js';
import { LockService, type LockHandle } from '../lib/index.js';
import { runCli, startCli } from './support/run-cli.js';

const PREFIX = 'cli-redis/';
let redis: RedisHandle;
let app: LockService;
let other: LockService;

const cli = (args: string[], stdin = '') => runCli([...args, '--redis', redis.url], { NESTJS_ETCD_LOCK_PREFIX: PREFIX, ETCDCTL_ENDPOINTS: 'http://127.0.0.1:1' }, stdin);
const lost = (lock: LockHandle) => new Promise<unknown>(resolve => lock.signal.addEventListener('abort', () => resolve(lock.signal.reason), { once: true }));

beforeAll(async () => {
  redis = await startRedis();
  app = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: PREFIX, ownerId: 'app-1' });
  other = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: PREFIX, ownerId: 'app-2' });
});

afterAll(async () => {
  await Promise.all([app?.close(), other?.close()]);
  await redis?.stop();
});

describe('nestjs-etcd-lock --redis', () => {
  it('list and info show a holder and its waiter; unlock --yes removes the holder, which learns it was forced', async () => {
    const held = await app.acquire('order:7');
    const waiting = other.acquire('order:7');
    for (let i = 0; i < 50 && (await app.getLockInfo('order:7'))?.waiters.length !== 1; i++) await new Promise(resolve => setTimeout(resolve, 20));

    const list = await cli(['list', '--json']);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as { key: string; holder: { owner: string; token: string }; waiters: { owner: string }[] }[];
    expect(listed.map(l => [l.key, l.holder.owner, l.holder.token, l.waiters.map(w => w.owner)])).toEqual([['order:7', 'app-1', held.token.toString(), ['app-2']]]);

    const info = await cli(['info', 'order:7']);
    expect(info.code).toBe(0);
    expect(info.stdout).toContain('app-1');
    expect(info.stdout).toContain('app-2');

    const gone = lost(held);
    const unlock = await cli(['unlock', 'order:7', '--yes']);
    expect(unlock.code).toBe(0);
    expect(unlock.stdout).toContain(`removed app-1 (token ${held.token})`);
    expect(await gone).toMatchObject({ reason: 'forced' });
    const next = await waiting;
    expect(next.token).toBeGreaterThan(held.token);
    await next.release();
    await held.release();
  });

  it('watch prints other processes\' locks as they are acquired and released, until Ctrl-C', async () => {
    const watch = startCli(['watch', 'ship:', '--json', '--redis', redis.url], { NESTJS_ETCD_LOCK_PREFIX: PREFIX });
    try {
      await watch.stderr.waitFor(line => line.startsWith('Watching locks under cli-redis/ whose name starts with "ship:"'), 15_000, () => 'the watch did not start');
      const lock = await app.acquire('ship:1');
      await (await app.acquire('dock:1')).release(); // outside the watched names
      await lock.release();
      await watch.stdout.waitFor(line => line.includes('"released"'), 10_000, () => `no released line: ${watch.stdout.items.join('\n')}`);
      const events = watch.stdout.items.map(line => JSON.parse(line) as { type: string; key: string; token: string; owner: string; origin: string });
      expect(events.map(e => [e.type, e.key, e.token, e.owner, e.origin])).toEqual([
        ['acquired', 'ship:1', lock.token.toString(), 'app-1', 'remote'],
        ['released', 'ship:1', lock.token.toString(), 'app-1', 'remote'],
      ]);
    } finally {
      expect(await watch.stop()).toBe(0);
    }
  });

  it('an unreachable Redis exits 1 naming it; nothing is left in Redis', async () => {
    const down = await runCli(['list', '--redis', 'redis://127.0.0.1:1'], { NESTJS_ETCD_LOCK_PREFIX: PREFIX });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/Redis at redis:\/\/127\.0\.0\.1:1 did not answer/);
    const admin = new Redis(redis.url);
    try {
      // what stays while the apps run: the token counter, their sessions (and their index), the sweep's marker
      expect((await admin.keys(`{${PREFIX}}:*`)).filter(key => !/:(seq|swept|sessions|s:[0-9a-f]+)$/.test(key))).toEqual([]);
    } finally {
      admin.disconnect();
    }
  });
});
