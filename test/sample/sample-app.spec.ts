// The sample app (sample-app/src) end to end: two instances of its real AppModule in this process,
// each with its own LockService (own etcd lease, like two replicas), real HTTP, a real etcd.
// 'nestjs-etcd-lock' maps to lib/ here (jest.config.js), so no build is needed.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import request from 'supertest';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { LockService } from '../../lib/index.js';
import { AppModule } from '../../sample-app/src/app.module.js';
import { SampleConfig } from '../../sample-app/src/config/sample.config.js';
import { SettlementJob } from '../../sample-app/src/jobs/settlement.job.js';
import type { PayResult } from '../../sample-app/src/payments/payments.service.js';
import { StatsService } from '../../sample-app/src/stats/stats.service.js';
import { EtcdStore, fenceValue } from '../../sample-app/src/store/etcd.store.js';
import { expectEtcdClean } from '../support/etcd-state.js';

const LOCKS = 'sample-spec/';
const DATA = 'sample-spec-data/';
let etcd: EtcdHandle;
let admin: Etcd3;
let a: INestApplication;
let b: INestApplication;

async function startApp(replica: string): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(SampleConfig)
    .useValue(new SampleConfig(etcd.endpoints, LOCKS, 2, DATA, 0, replica, 20, false))
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
  [a, b] = await Promise.all([startApp('A'), startApp('B')]);
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await admin?.delete().prefix(DATA);
  if (admin) await expectEtcdClean(admin, LOCKS);
  admin?.close();
  await etcd?.stop();
});

describe('sample app', () => {
  it('pays an order once when 12 requests pay it at the same time on two replicas', async () => {
    await request(a.getHttpServer()).post('/accounts').send({ id: 'alice', balance: 10_000 }).expect(201);
    await request(b.getHttpServer()).post('/orders').send({ id: 'o-1', accountId: 'alice', amount: 1_250 }).expect(201);

    const responses = await Promise.all(
      Array.from({ length: 12 }, (_, i) => request((i % 2 ? a : b).getHttpServer()).post('/orders/o-1/pay')),
    );
    expect(responses.map(r => r.status)).toEqual(Array(12).fill(200));
    const results = responses.map(r => (r.body as PayResult).result);
    expect(results.filter(r => r === 'paid')).toHaveLength(1);
    expect(results.filter(r => r === 'already-paid')).toHaveLength(11);

    const order = await request(a.getHttpServer()).get('/orders/o-1').expect(200);
    expect(order.body).toMatchObject({ status: 'paid', payments: [{ orderId: 'o-1', amount: 1_250 }] });
    expect(order.body.payments).toHaveLength(1);
    expect((await request(b.getHttpServer()).get('/accounts/alice').expect(200)).body.balance).toBe(8_750);
    const stats = [a, b].map(app => app.get(StatsService).snapshot());
    expect(stats.reduce((n, s) => n + s.paymentsMade, 0)).toBe(1);
    expect(stats.reduce((n, s) => n + s.payRequestsServed, 0)).toBe(12);
  });

  it('keeps balances exact when orders of one account are paid in parallel (account lock)', async () => {
    await request(a.getHttpServer()).post('/accounts').send({ id: 'bob', balance: 100_000 }).expect(201);
    const ids = Array.from({ length: 8 }, (_, i) => `bob-${i}`);
    for (const [i, id] of ids.entries()) {
      await request(a.getHttpServer()).post('/orders').send({ id, accountId: 'bob', amount: 100 * (i + 1) }).expect(201);
    }
    const responses = await Promise.all(ids.flatMap(id => [a, b].map(app => request(app.getHttpServer()).post(`/orders/${id}/pay`))));
    expect(responses.every(r => r.status === 200)).toBe(true);
    expect(responses.filter(r => (r.body as PayResult).result === 'paid')).toHaveLength(8);
    expect((await request(b.getHttpServer()).get('/accounts/bob')).body.balance).toBe(100_000 - 100 * 36);
  });

  it('fenced store: rejects a write whose token is lower than one already accepted, and counts it', async () => {
    const store = a.get(EtcdStore);
    const locks = a.get(LockService);
    await store.createOrder({ id: 'fenced', accountId: 'alice', amount: 1, status: 'unpaid' });
    const first = await locks.acquire('order:fenced');
    await first.release();
    const second = await locks.acquire('order:fenced');
    await second.release();
    expect(second.token).toBeGreaterThan(first.token);

    const write = (token: bigint, value: string) => store.fencedWrite([{ resource: 'order:fenced', token }], { [store.key('probe')]: value });
    expect(await write(second.token, 'by second')).toBe(true);
    const rejectedBefore = store.staleWritesRejected;
    expect(await write(first.token, 'by first, stale')).toBe(false); // the paused older holder wakes up
    expect(store.staleWritesRejected).toBe(rejectedBefore + 1);
    expect(await admin.get(store.key('probe')).string()).toBe('by second');
    expect(await admin.get(store.fenceKey('order:fenced')).string()).toBe(fenceValue(second.token));
    expect(await write(second.token, 'by second again')).toBe(true); // the same holder may write again
    // a resource without a fence (never created) is never written
    expect(await store.fencedWrite([{ resource: 'order:nope', token: second.token }], { [store.key('probe')]: 'x' })).toBe(false);
    // padding makes the Value compare numeric: 10 > 9 although '10' < '9' as strings
    expect(await store.fencedWrite([{ resource: 'order:fenced', token: 10n ** 12n }], {})).toBe(true);
    expect(await store.fencedWrite([{ resource: 'order:fenced', token: 9n * 10n ** 11n }], {})).toBe(false);
  });

  it('settlement job: one run per tick across two instances, the other skips', async () => {
    const jobs = [a, b].map(app => app.get(SettlementJob));
    const tick = 1_000; // a tick of our own, far from the live ones the intervals run
    const results = await Promise.all([...jobs, ...jobs, ...jobs].map(job => job.settle(tick)));
    expect(results.filter(r => r === true)).toHaveLength(1);
    expect(results.filter(r => r === undefined)).toHaveLength(5); // skipped: the tick's lock was busy

    // the live ticks, run by the intervals of both instances since bootstrap: wait for a few
    const store = a.get(EtcdStore);
    const runs = () => admin.getAll().prefix(store.key('jobs', 'settlement', '')).keys();
    while ((await runs()).length < 4) await new Promise(resolve => setTimeout(resolve, 200));
    expect(await admin.getAll().prefix(store.key('jobs', 'double', '')).keys()).toEqual([]);
    const stats = [a, b].map(app => app.get(StatsService).snapshot());
    expect(stats.reduce((n, s) => n + s.jobDoubleRuns, 0)).toBe(0);
    expect(stats.reduce((n, s) => n + s.jobSkips, 0)).toBeGreaterThan(0);
  });
});
