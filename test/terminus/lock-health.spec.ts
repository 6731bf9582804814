// The Terminus indicator in a real Nest HTTP app with the real TerminusModule, on a real etcd
// that is paused (SIGSTOP) past the session's deadline and resumed: 200, then 503, then 200
// again once a new session has opened.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { startRedis } from '../../harness/redis.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import { EtcdLockModule, LockLostError, LockService } from '../../lib/index.js';
import { LockHealthIndicator } from '../../lib/terminus/index.js';
import { MemoryBackend } from '../../lib/testing/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';

const PREFIX = 'health-spec/';
const TTL = 2;

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly locks: LockHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.locks.isHealthy('locks', { timeout: 500 })]);
  }
}

type HealthBody = { status: string; info?: Record<string, Record<string, unknown>>; error?: Record<string, Record<string, unknown>> };

async function appOn(options: Parameters<typeof EtcdLockModule.forRoot>[0]): Promise<{ app: INestApplication; get: () => Promise<{ status: number; body: HealthBody }> }> {
  const moduleRef = await Test.createTestingModule({
    imports: [TerminusModule.forRoot({ logger: false }), EtcdLockModule.forRoot({ ...options, logger: false })],
    controllers: [HealthController],
    providers: [LockHealthIndicator],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  const url = `${await app.getUrl()}/health`.replace('[::1]', '127.0.0.1');
  const get = async () => {
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as HealthBody };
  };
  return { app, get };
}

/** Polls until `accept` holds, up to `ms`; the last answer either way. */
async function until<T>(read: () => Promise<T>, accept: (value: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (accept(value) || Date.now() > end) return value;
    await sleep(100);
  }
}

describe('LockHealthIndicator (nestjs-etcd-lock/terminus)', () => {
  let etcd: EtcdHandle;

  beforeAll(async () => {
    etcd = await startEtcd();
  }, 60_000);

  afterAll(async () => {
    await etcd?.stop();
  });

  it('200 with headroom and counts; 503 while etcd is paused past the deadline; 200 again with a new session once it resumes', async () => {
    const { app, get } = await appOn({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: TTL });
    const locks = app.get(LockService);
    const member = etcd.members[0];
    try {
      const held = await locks.acquire('order:1');
      const up = await get();
      expect(up.status).toBe(200);
      expect(up.body.info!.locks).toMatchObject({ status: 'up', store: `etcd at ${etcd.endpoints[0]}`, held: 1, waiting: 0 });
      const first = up.body.info!.locks.session as string;
      expect(up.body.info!.locks.validForMs).toBeGreaterThan(0);
      expect(up.body.info!.locks.validForMs).toBeLessThanOrEqual(TTL * 1000);

      member.pause(); // SIGSTOP: etcd answers nothing, the session cannot be kept alive
      // at once, well before the deadline: the ping goes unanswered, the lock is still held
      const down = await get();
      expect(down.status).toBe(503);
      expect(down.body.error!.locks).toMatchObject({ status: 'down', message: `etcd at ${etcd.endpoints[0]} did not answer within 500 ms`, held: 1 });
      expect(down.body.error!.locks.validForMs).toBeGreaterThan(0);
      // past the deadline the lock is lost, and the report says so
      const past = await until(get, r => r.body.error?.locks?.held === 0, 15_000);
      expect(past.body.error!.locks).toMatchObject({ status: 'down', held: 0, validForMs: 0 });
      expect(() => held.assertHeld()).toThrow(LockLostError);

      member.resume();
      const again = await until(get, r => r.status === 200, 20_000);
      expect(again.status).toBe(200);
      expect(again.body.info!.locks).toMatchObject({ status: 'up', held: 0 });
      expect(again.body.info!.locks.session).not.toBe(first); // a new session: the old lease expired
      await held.release();
    } finally {
      member.resume();
      await app.close();
    }
    const admin = new Etcd3({ hosts: etcd.endpoints });
    await expectEtcdClean(admin, PREFIX).finally(() => admin.close());
  }, 90_000);

  it('Redis: 503 naming it while it is down; 200 again once it is back, on a new session (a restart without persistence lost the old one)', async () => {
    const redis = await startRedis();
    const { app, get } = await appOn({ backend: new RedisBackend({ url: redis.url }), prefix: PREFIX, ttl: TTL });
    try {
      const up = await get();
      expect(up.body.info!.locks).toMatchObject({ status: 'up', store: `Redis at ${redis.url}` });
      await redis.kill();
      const down = await get();
      expect(down.status).toBe(503);
      expect(down.body.error!.locks).toMatchObject({ status: 'down', message: expect.stringMatching(new RegExp(`^Redis at ${redis.url} did not answer`)) });
      await redis.start();
      const again = await until(get, r => r.status === 200 && r.body.info!.locks.session !== up.body.info!.locks.session, 20_000);
      expect(again.status).toBe(200);
      expect(again.body.info!.locks.session).not.toBe(up.body.info!.locks.session);
    } finally {
      await app.close();
      await redis.stop();
    }
  }, 60_000);

  it('the in-memory backend: up, with no deadline (validForMs null)', async () => {
    const { app, get } = await appOn({ backend: new MemoryBackend(), prefix: PREFIX });
    try {
      const up = await get();
      expect(up.status).toBe(200);
      expect(up.body.info!.locks).toMatchObject({ status: 'up', store: 'memory', validForMs: null, held: 0, waiting: 0 });
    } finally {
      await app.close();
    }
  });
});
