// Operating locks: getLockInfo, listLocks and forceUnlock against a real etcd, with the
// locks held and awaited by real processes (test/workers/lock.worker.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidLockKeyError, LockService } from '../lib/index.js';
import { expectEtcdClean, metric } from './support/etcd-state.js';
import { useEtcdAndWorkers } from './support/worker-fixture.js';
import type { LockWorker } from './support/lock-worker.js';

const PREFIX = 'admin-spec/';
const TTL = 2;
const fixture = useEtcdAndWorkers(PREFIX, TTL);
const { startWorkers } = fixture;
let locks: LockService;

/** Queues `worker` for `key` and waits until it is in the queue; `acquired` settles when it gets the lock. */
async function queue(worker: LockWorker, key: string): Promise<{ acquired: Promise<{ token: bigint }> }> {
  const acquired = worker.request<{ token: bigint }>({ op: 'acquire', key });
  await worker.waitForEvent(e => e.event === 'waiting' && e.key === key);
  return { acquired }; // wrapped: an async function would wait for a promise it returns
}

beforeAll(() => {
  locks = new LockService({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, ttl: TTL, ownerId: 'operator' });
});

afterAll(async () => {
  await locks?.close();
});

describe('getLockInfo and listLocks', () => {
  it('show the holder (owner, host, pid, token, acquired-at, TTL left) and the waiters in order, across processes', async () => {
    const [holder, first, second] = await startWorkers(3);
    const before = Date.now();
    const held = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'invoice:1' });
    const firstIn = await queue(first, 'invoice:1');
    const secondIn = await queue(second, 'invoice:1');
    await first.request({ op: 'acquire', key: 'invoice:2' }); // another lock, held by another process

    const info = (await locks.getLockInfo('invoice:1'))!;
    expect(info.key).toBe('invoice:1');
    expect(info.holder).toMatchObject({ pid: holder.process.pid, token: held.token, mode: 'exclusive' });
    expect(info.holder!.owner).toContain(`:${holder.process.pid}:`); // the worker's default ownerId
    expect(info.holder!.host).not.toBe('');
    expect(info.holder!.acquiredAt.getTime()).toBeGreaterThanOrEqual(before - 50);
    expect(info.holder!.acquiredAt.getTime()).toBeLessThanOrEqual(Date.now() + 50);
    expect(info.holder!.ttlRemaining).toBeGreaterThan(0);
    expect(info.holder!.ttlRemaining).toBeLessThanOrEqual(TTL);
    expect(info.holders).toHaveLength(1);
    expect(info.waiters.map(w => w.pid)).toEqual([first.process.pid, second.process.pid]);
    expect(info.waiters[0].token).toBeLessThan(info.waiters[1].token);

    const listed = await locks.listLocks();
    expect(listed.map(l => [l.key, l.holder!.pid, l.waiters.length])).toEqual([
      ['invoice:1', holder.process.pid, 2],
      ['invoice:2', first.process.pid, 0],
    ]);
    expect((await locks.listLocks('invoice:2')).map(l => l.key)).toEqual(['invoice:2']);
    expect(await locks.listLocks('nothing:')).toEqual([]);
    expect(await locks.isLocked('invoice:1')).toBe(true);

    // a holder that waited records when it got the lock
    await holder.request({ op: 'release', key: 'invoice:1' });
    const next = await firstIn.acquired;
    let now = (await locks.getLockInfo('invoice:1'))!;
    for (let i = 0; i < 50 && now.holder!.acquiredAt.getTime() === now.holder!.queuedAt.getTime(); i++) {
      await sleep(10);
      now = (await locks.getLockInfo('invoice:1'))!;
    }
    expect(now.holder).toMatchObject({ pid: first.process.pid, token: next.token });
    expect(now.holder!.acquiredAt.getTime()).toBeGreaterThan(now.holder!.queuedAt.getTime());
    expect(now.waiters.map(w => w.pid)).toEqual([second.process.pid]);

    await first.request({ op: 'release', key: 'invoice:1' });
    await secondIn.acquired;
    await second.request({ op: 'release', key: 'invoice:1' });
    await first.request({ op: 'release', key: 'invoice:2' });
    expect(await locks.getLockInfo('invoice:1')).toBeNull();
    expect(await locks.listLocks()).toEqual([]);
  });

  it('show every holder of a shared lock and of a semaphore, with the limit', async () => {
    const a = new LockService({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, ttl: TTL, ownerId: 'a' });
    const b = new LockService({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, ttl: TTL, ownerId: 'b' });
    try {
      const readers = [await a.acquire('catalog', { mode: 'shared' }), await b.acquire('catalog', { mode: 'shared' })];
      const writer = a.acquire('catalog');
      while ((await locks.getLockInfo('catalog'))!.waiters.length === 0) await sleep(5);
      const rw = (await locks.getLockInfo('catalog'))!;
      expect(rw.holders.map(h => [h.owner, h.mode])).toEqual([['a', 'shared'], ['b', 'shared']]);
      expect(rw.waiters.map(w => [w.owner, w.mode])).toEqual([['a', 'exclusive']]);
      for (const r of readers) await r.release();
      await (await writer).release();

      const places = [await a.acquire('exports', { limit: 2 }), await b.acquire('exports', { limit: 2 })];
      const third = b.acquire('exports', { limit: 2 });
      while ((await locks.getLockInfo('exports'))!.waiters.length === 0) await sleep(5);
      const sem = (await locks.getLockInfo('exports'))!;
      expect(sem.limit).toBe(2);
      expect(sem.holders.map(h => h.owner)).toEqual(['a', 'b']);
      expect(sem.waiters.map(w => w.owner)).toEqual(['b']);
      for (const p of places) await p.release();
      await (await third).release();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("listLocks asks etcd for a lease's TTL once, however many locks its process holds (the lock board lists every second)", async () => {
    const [holder, other] = await startWorkers(2);
    const keys = Array.from({ length: 20 }, (_, i) => `bulk:${i}`);
    for (const key of keys) await holder.request({ op: 'acquire', key });
    await other.request({ op: 'acquire', key: 'bulk:other' });
    const ttlRequests = async () => metric(await fixture.etcd.metrics(), 'grpc_server_handled_total', { grpc_method: 'LeaseTimeToLive' });
    const before = await ttlRequests();
    const listed = await locks.listLocks('bulk:');
    expect(listed).toHaveLength(21);
    expect(listed.every(l => l.holder!.ttlRemaining > 0)).toBe(true);
    expect((await ttlRequests()) - before).toBe(2); // two processes, two leases
    for (const key of keys) await holder.request({ op: 'release', key });
    await other.request({ op: 'release', key: 'bulk:other' });
  });

  it('reject a bad key with InvalidLockKeyError, before reaching etcd', async () => {
    await expect(locks.getLockInfo('')).rejects.toBeInstanceOf(InvalidLockKeyError);
    await expect(locks.forceUnlock('a\u0000b')).rejects.toBeInstanceOf(InvalidLockKeyError);
  });
});

describe('forceUnlock', () => {
  it("removes exactly the forced lock of a holder that holds two: its signal aborts with reason 'forced', the other lock stays, the next waiter gets in", async () => {
    const [holder, waiter] = await startWorkers(2);
    const forced = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'job:1' });
    await holder.request({ op: 'acquire', key: 'job:2' });
    const waiting = await queue(waiter, 'job:1');
    await sleep(300); // held past 100 ms: its holder watches its key

    const removed = await locks.forceUnlock('job:1');
    expect(removed.map(h => [h.pid, h.token])).toEqual([[holder.process.pid, forced.token]]);
    const lost = await holder.waitForEvent(e => e.event === 'lost');
    expect(lost).toMatchObject({ key: 'job:1', reason: 'forced' });
    expect(await holder.request({ op: 'probe', key: 'job:1' })).toMatchObject({ isHeld: false, reason: 'LOCK_LOST' });
    expect(await holder.request({ op: 'probe', key: 'job:2' })).toMatchObject({ isHeld: true, aborted: false });
    const next = await waiting.acquired;
    expect(next.token).toBeGreaterThan(forced.token);
    expect(holder.events.filter(e => e.event === 'lost')).toHaveLength(1);

    // the stale holder's release spares the new holder's key
    await holder.request({ op: 'release', key: 'job:1' });
    expect((await locks.getLockInfo('job:1'))!.holder!.pid).toBe(waiter.process.pid);
    expect(await locks.forceUnlock('job:3')).toEqual([]); // a free lock: nothing to remove
    await waiter.request({ op: 'release', key: 'job:1' });
    await holder.request({ op: 'release', key: 'job:2' });
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases in etcd', async () => {
    await fixture.stopWorkers();
    await locks.close();
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});
