// What HTTP clients are told about lock errors, in a real Nest app (express) with real
// requests (supertest) against a real etcd: etcd unreachable after startup (a TCP proxy in
// front of etcd, closed) is 503 with Retry-After, not 500.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Param, Post, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import request from 'supertest';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { EtcdLockModule, WithLock } from '../../lib/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const PREFIX = 'lock-errors-http-spec/';
let etcd: EtcdHandle;
let admin: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
});

afterAll(async () => {
  admin?.close();
  await etcd?.stop();
});

@Controller('orders')
class OrdersController {
  @Post(':id/pay')
  @WithLock('order:<<id>>')
  pay(@Param('id') id: string): string {
    return `paid ${id}`;
  }
}

describe('etcd unreachable after startup', () => {
  let proxy: TcpProxy;
  let app: INestApplication;

  beforeAll(async () => {
    proxy = await startTcpProxy(etcd.endpoints[0]);
    const moduleRef = await Test.createTestingModule({
      imports: [EtcdLockModule.forRoot({ etcd: { hosts: [proxy.url] }, prefix: PREFIX, ttl: 2, waitTimeout: 300 })],
      controllers: [OrdersController],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init(); // etcd was reachable at startup
  });

  afterAll(async () => {
    await proxy?.close();
    await app?.close();
  });

  it('a @WithLock route answers 503 with Retry-After: 1 and the code, not 500', async () => {
    expect((await request(app.getHttpServer()).post('/orders/1/pay')).status).toBe(201);
    await proxy.close(); // connections reset, new ones refused
    const res = await request(app.getHttpServer()).post('/orders/1/pay');
    expect({ status: res.status, retryAfter: res.headers['retry-after'], body: res.body }).toEqual({
      status: 503,
      retryAfter: '1',
      body: { statusCode: 503, error: 'ETCD_UNAVAILABLE', message: expect.stringMatching(/Retry in 1 s/) },
    });
    expect(res.text).not.toContain(String(proxy.port)); // etcd's address is for the logs, not for clients
  });

  it('leaves no lock keys and no leases once closed (the lease expires on its own)', async () => {
    await app.close();
    await expectEtcdClean(admin, PREFIX);
  });
});
