// The testing kit (nestjs-etcd-lock/testing) as users' unit tests use it: a Nest testing module
// with LockTestingModule, a service with @WithLock and @OnLockEvent, and LockTesting's controls.
// No etcd runs here, and none is reachable at the default endpoint: were anything to try etcd,
// bootstrap or the first lock would fail.
import 'reflect-metadata';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockAlreadyHeldError, LockLostError, LockService, LockTimeoutError, OnLockEvent, WithLock, type LockEvent } from '../lib/index.js';
import { ANOTHER_PROCESS, LockTesting, LockTestingModule } from '../lib/testing/index.js';

@Injectable()
class PaymentsService {
  readonly charged: string[] = [];
  readonly lost: LockEvent[] = [];

  @WithLock('order:<<orderId>>', { waitTimeout: 200 })
  async charge(orderId: string, work: () => Promise<void> = async () => undefined): Promise<string> {
    await work();
    this.charged.push(orderId);
    return `charged ${orderId}`;
  }

  @WithLock('report', { onContention: 'skip' })
  async report(): Promise<string> {
    return 'reported';
  }

  @WithLock('refund:<<0>>', { onContention: 'fail' })
  async refund(orderId: string): Promise<string> {
    return `refunded ${orderId}`;
  }

  @OnLockEvent('lost')
  onLost(event: LockEvent): void {
    this.lost.push(event);
  }
}

let app: INestApplicationContext;
let payments: PaymentsService;
let testing: LockTesting;

beforeEach(async () => {
  const moduleRef = await Test.createTestingModule({ imports: [LockTestingModule.forRoot()], providers: [PaymentsService] }).compile();
  app = await moduleRef.init();
  payments = app.get(PaymentsService);
  testing = app.get(LockTesting);
});

afterEach(async () => {
  await app.close();
});

describe('nestjs-etcd-lock/testing', () => {
  it('runs @WithLock methods under their lock with no etcd, and records what was locked in order', async () => {
    expect(await payments.charge('o-1')).toBe('charged o-1');
    expect(await payments.charge('o-2')).toBe('charged o-2');
    expect(testing.acquired()).toEqual(['order:o-1', 'order:o-2']);
    expect(testing.history().map(change => `${change.type} ${change.key}`)).toEqual(['acquired order:o-1', 'released order:o-1', 'acquired order:o-2', 'released order:o-2']);
  });

  it('serializes calls on one key: the second waits for the first', async () => {
    const order: string[] = [];
    const first = payments.charge('o-1', async () => {
      order.push('first in');
      await sleep(30);
      order.push('first out');
    });
    const second = payments.charge('o-1', async () => void order.push('second in'));
    await Promise.all([first, second]);
    expect(order).toEqual(['first in', 'first out', 'second in']);
  });

  it('holdElsewhere: the code under test meets a lock held by another process (timeout, fail, skip), then gets it once released', async () => {
    const held = await testing.holdElsewhere('order:o-1');
    await expect(payments.charge('o-1')).rejects.toBeInstanceOf(LockTimeoutError);
    const refundHeld = await testing.holdElsewhere('refund:o-9');
    await expect(payments.refund('o-9')).rejects.toBeInstanceOf(LockAlreadyHeldError);
    const reportHeld = await testing.holdElsewhere('report');
    expect(await payments.report()).toBeUndefined(); // skipped
    expect((await testing.info('order:o-1'))?.holder?.owner).toBe(ANOTHER_PROCESS);
    await Promise.all([held.release(), refundHeld.release(), reportHeld.release()]);
    expect(await payments.charge('o-1')).toBe('charged o-1');
    expect(payments.charged).toEqual(['o-1']);
  });

  it('expireSession: a method running under its lock is told it lost it, @OnLockEvent hears it, and the next call locks again', async () => {
    const charging = payments.charge('o-1', async () => {
      testing.expireSession(); // as if the process lost etcd past its TTL, mid-charge
    });
    await expect(charging).rejects.toBeInstanceOf(LockLostError);
    for (let i = 0; i < 50 && payments.lost.length === 0; i++) await sleep(10); // @OnLockEvent handlers run after the event, not inside it
    expect(payments.lost.map(event => [event.key, event.reason])).toEqual([['order:o-1', 'session-expired']]);
    expect(await payments.charge('o-2')).toBe('charged o-2'); // a new session
  });

  it('forceUnlock: the holder learns its lock was force-unlocked', async () => {
    const locks = app.get(LockService);
    const lock = await locks.acquire('order:o-5');
    const removed = await testing.forceUnlock('order:o-5');
    expect(removed.map(holder => holder.token)).toEqual([lock.token]);
    await sleep(0);
    expect(lock.signal.reason).toMatchObject({ reason: 'forced' });
    await lock.release();
  });

  it('leaves nothing held once the app closes', async () => {
    const locks = app.get(LockService);
    await locks.acquire('left-over');
    await testing.holdElsewhere('other-left-over');
    const backend = testing.backend;
    await app.close();
    const probe = backend.connect({ prefix: 'nestjs-etcd-lock/', ttl: 10, connectTimeout: 1_000, ownerId: 'probe' });
    expect(await probe.list('')).toEqual([]);
    expect(backend.expireSessions()).toBe(0);
    app = await (await Test.createTestingModule({ imports: [LockTestingModule.forRoot()] }).compile()).init(); // for afterEach
  });
});
