// @WithLock on HTTP handlers through the module's interceptor: a real Nest app (express),
// real HTTP requests (supertest), a real etcd.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Param, Post, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import request from 'supertest';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { EtcdLockModule, LockConfigurationError, LockService, WithLock } from '../../lib/index.js';
import { Ledger, ordersModule, type Span } from '../fixtures/orders.app.js';
import { expectEtcdClean } from '../support/etcd-state.js';

const PREFIX = 'http-spec/';
const DATA = 'http-spec-data/';
let etcd: EtcdHandle;
let admin: Etcd3;
let app: INestApplication;
let locks: LockService;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
  const moduleRef = await Test.createTestingModule({
    imports: [ordersModule({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 1 }, etcd.endpoints, DATA)],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  locks = app.get(LockService);
});

afterAll(async () => {
  await app?.close();
  await admin?.delete().prefix(DATA);
  admin?.close();
  await etcd?.stop();
});

const overlaps = (a: Span, b: Span) => a.enter < b.exit && b.enter < a.exit;

describe('@WithLock on an HTTP route', () => {
  it('serializes concurrent requests for one id: the unsafe counter stays exact, no overlap', async () => {
    const responses = await Promise.all(Array.from({ length: 8 }, () => request(app.getHttpServer()).post('/orders/42/pay')));
    expect(responses.map(r => r.status)).toEqual(Array(8).fill(201));
    expect(await app.get(Ledger).read('paid-42')).toBe(8);
    const spans = responses.map(r => r.body as Span).sort((a, b) => a.enter - b.enter);
    for (let i = 1; i < spans.length; i++) expect(overlaps(spans[i - 1], spans[i])).toBe(false);
    expect(new Set(spans.map(s => s.token)).size).toBe(8); // a fencing token each, seen through current()
    expect(spans.every(s => s.key === 'order:42')).toBe(true);
  });

  it('runs requests for different ids in parallel', async () => {
    const responses = await Promise.all(['a', 'b', 'c', 'd'].map(id => request(app.getHttpServer()).post(`/orders/${id}/pay`)));
    const spans = responses.map(r => r.body as Span);
    const overlapping = spans.some((s, i) => spans.some((t, j) => i !== j && overlaps(s, t)));
    expect(overlapping).toBe(true);
  });

  it("answers 409 naming the key when onContention is 'fail' and the lock is held", async () => {
    const held = await locks.acquire('order:7');
    try {
      const res = await request(app.getHttpServer()).post('/orders/7/pay-now');
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ statusCode: 409, error: 'LOCK_ALREADY_HELD', key: 'order:7' });
    } finally {
      await held.release();
    }
    expect((await request(app.getHttpServer()).post('/orders/7/pay-now')).status).toBe(201);
  });

  it('answers 400 when a template names a missing body field, and writes nothing to etcd', async () => {
    const before = await admin.getAll().prefix(PREFIX).keys();
    const res = await request(app.getHttpServer()).post('/orders/refund').send({ reason: 'no orderId' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'INVALID_KEY' });
    expect(res.body.message).toMatch(/<<body\.orderId>>/);
    expect(await admin.getAll().prefix(PREFIX).keys()).toEqual(before);
    expect((await request(app.getHttpServer()).post('/orders/refund').send({ orderId: 'r1' })).text).toBe('refunded r1');
  });

  it('holds the lock of a streamed (Observable) response until the stream ends', async () => {
    const response = request(app.getHttpServer()).get('/orders/s1/stream');
    const done = response.then(r => r);
    await new Promise(resolve => setTimeout(resolve, 150)); // mid-stream
    expect(await locks.isLocked('order:s1')).toBe(true);
    const res = await done;
    expect(res.status).toBe(200);
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(await locks.isLocked('order:s1')).toBe(false);
  });

  it('a value is encoded: an id with "/" or ":" locks its own key and no other', async () => {
    const res = await request(app.getHttpServer()).post(`/orders/${encodeURIComponent('x/y:z')}/pay`);
    expect(res.status).toBe(201);
    expect((res.body as Span).key).toBe('order:x%2Fy%3Az');
  });
});

@Controller('shop/:shopId/orders')
class MisnamedController {
  @Post(':id/pay')
  @WithLock('order:<<orderId>>')
  pay(@Param('id') id: string): string {
    return id;
  }
}

@Controller('orders')
class QueryKeyController {
  @Post('search')
  @WithLock('search:<<query.term>>')
  search(): string {
    return 'ok';
  }
}

/** Why app.init() failed with this controller (undefined if it did not). */
async function bootError(controller: new () => unknown): Promise<unknown> {
  const moduleRef = await Test.createTestingModule({
    imports: [EtcdLockModule.forRoot({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 1 })],
    controllers: [controller],
  }).compile();
  const other = moduleRef.createNestApplication({ logger: false });
  try {
    await other.init();
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await other.close();
  }
}

describe('templates are checked against the route at bootstrap', () => {
  it('a bare name that is not a route param fails bootstrap naming the route, the placeholder and the params', async () => {
    const error = await bootError(MisnamedController);
    expect(error).toBeInstanceOf(LockConfigurationError);
    const message = (error as Error).message;
    expect(message).toContain('MisnamedController.pay (POST /shop/:shopId/orders/:id/pay)');
    expect(message).toContain('<<orderId>>');
    expect(message).toContain('its params: shopId, id');
    expect(message).toContain('<<query.orderId>>'); // says how to name a value from elsewhere
  });

  it('a value named by where it comes from (query., body., headers., user.) boots', async () => {
    expect(await bootError(QueryKeyController)).toBeUndefined();
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases after app.close()', async () => {
    await app.close();
    await expectEtcdClean(admin, PREFIX);
  });
});
