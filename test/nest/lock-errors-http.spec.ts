// What HTTP clients are told about lock errors, in a real Nest app (express) with real
// requests (supertest) against a real etcd. LockExceptionFilter answers a LockError thrown
// by a service under a route without @WithLock exactly as the interceptor answers one of a
// @WithLock route; etcd unreachable after startup (a TCP proxy in front of etcd, closed) is
// 503 with Retry-After on both, not 500.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Inject, Injectable, Param, Post, type INestApplication, type Type } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { EtcdLockModule, LockExceptionFilter, LockService, WithLock, type EtcdLockModuleOptions } from '../../lib/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { useEtcdAndWorkers } from '../support/worker-fixture.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const PREFIX = 'lock-errors-http-spec/';
const WAIT_MS = 100;
const fixture = useEtcdAndWorkers(PREFIX, 1);

/** Locks through LockService itself: its errors reach the exception filter, not the interceptor. */
@Injectable()
class RefundsService {
  constructor(@Inject(LockService) private readonly locks: LockService) {}

  refund(id: string): Promise<string> {
    return this.locks.withLock(`order:${id}`, () => `refunded ${id}`, { waitTimeout: WAIT_MS });
  }

  /** Holds the lock while an operator force-unlocks it: LockLostError. */
  refundLost(id: string): Promise<string> {
    return this.locks.withLock(`lost:${id}`, async lock => {
      await this.locks.forceUnlock(lock.key);
      await new Promise(resolve => lock.signal.addEventListener('abort', resolve, { once: true }));
      return 'too late';
    });
  }
}

@Controller('orders')
class OrdersController {
  constructor(
    @Inject(RefundsService) private readonly refunds: RefundsService,
    @Inject(LockService) private readonly locks: LockService,
  ) {}

  @Post(':id/pay')
  @WithLock('order:<<id>>', { waitTimeout: WAIT_MS })
  pay(@Param('id') id: string): string {
    return `paid ${id}`;
  }

  @Post('pay-by-body')
  @WithLock('order:<<body.id>>')
  payByBody(@Body() body: { id: string }): string {
    return `paid ${body.id}`;
  }

  @Post(':id/pay-lost')
  @WithLock('lost:<<id>>')
  async payLost(@Param('id') id: string): Promise<string> {
    const lock = this.locks.current()!;
    await this.locks.forceUnlock(lock.key);
    await new Promise(resolve => lock.signal.addEventListener('abort', resolve, { once: true }));
    return `paid ${id}`;
  }

  @Post(':id/refund')
  refund(@Param('id') id: string): Promise<string> {
    return this.refunds.refund(id);
  }

  @Post('refund-by-body')
  refundByBody(@Body() body: { id: string }): Promise<string> {
    return this.refunds.refund(body.id);
  }

  @Post(':id/refund-lost')
  refundLost(@Param('id') id: string): Promise<string> {
    return this.refunds.refundLost(id);
  }
}

async function boot(options: EtcdLockModuleOptions, controllers: Type[] = [OrdersController]): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [EtcdLockModule.forRoot(options)],
    controllers,
    providers: [RefundsService, { provide: APP_FILTER, useClass: LockExceptionFilter }],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

/** What a client sees of a response: status, Retry-After, body. */
async function post(app: INestApplication, path: string, body?: object) {
  const res = await request(app.getHttpServer()).post(path).send(body);
  return { status: res.status, retryAfter: res.headers['retry-after'], body: res.body as Record<string, unknown> };
}

describe('LockExceptionFilter answers a service\'s LockError as the interceptor answers a @WithLock route\'s', () => {
  let app: INestApplication;
  let locks: LockService;

  beforeAll(async () => {
    app = await boot({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, ttl: 2, conflictStatus: '423' });
    locks = app.get(LockService);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('not acquired within waitTimeout: the module\'s conflictStatus (423) with LOCK_TIMEOUT and the key, on both', async () => {
    const held = await locks.acquire('order:7');
    let route, service;
    try {
      [route, service] = [await post(app, '/orders/7/pay'), await post(app, '/orders/7/refund')];
    } finally {
      await held.release();
    }
    const expected = { status: 423, retryAfter: undefined, body: { statusCode: 423, error: 'LOCK_TIMEOUT', key: 'order:7', message: expect.stringContaining('Timed out') } };
    expect(route).toEqual(expected);
    expect(service).toEqual(expected);
    expect(await post(app, '/orders/7/refund')).toMatchObject({ status: 201 });
  });

  it('an invalid key: 400 with INVALID_KEY, on both', async () => {
    const route = await post(app, '/orders/pay-by-body', { id: '' });
    const service = await post(app, '/orders/refund-by-body', { id: 'a\u0001b' });
    for (const answer of [route, service]) expect(answer).toMatchObject({ status: 400, body: { statusCode: 400, error: 'INVALID_KEY', message: expect.stringMatching(/^Invalid lock key/) } });
  });

  it('a lock lost while held is a server fault: 500 and Nest\'s own body, on both', async () => {
    const route = await post(app, '/orders/1/pay-lost');
    const service = await post(app, '/orders/1/refund-lost');
    expect(route).toEqual({ status: 500, retryAfter: undefined, body: { statusCode: 500, message: 'Internal server error' } });
    expect(service).toEqual(route);
  });
});

describe('etcd unreachable after startup', () => {
  let proxy: TcpProxy;
  let app: INestApplication;

  beforeAll(async () => {
    proxy = await startTcpProxy(fixture.etcd.endpoints[0]);
    app = await boot({ etcd: { hosts: [proxy.url] }, prefix: PREFIX, ttl: 2, waitTimeout: 300 }); // etcd was reachable at startup
  });

  afterAll(async () => {
    await proxy?.close();
    await app?.close();
  });

  it('503 with Retry-After: 1 and ETCD_UNAVAILABLE, not 500, from a @WithLock route and from a service alike', async () => {
    expect((await post(app, '/orders/1/pay')).status).toBe(201);
    await proxy.close(); // connections reset, new ones refused
    const expected = {
      status: 503,
      retryAfter: '1',
      body: { statusCode: 503, error: 'ETCD_UNAVAILABLE', message: expect.stringMatching(/Retry in 1 s/) },
    };
    const route = await post(app, '/orders/1/pay');
    expect(route).toEqual(expected);
    expect(JSON.stringify(route.body)).not.toContain(String(proxy.port)); // etcd's address is for the logs, not for clients
    expect(await post(app, '/orders/1/refund')).toEqual(expected);
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases once the apps are closed (the cut-off app\'s lease expires on its own)', async () => {
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});
