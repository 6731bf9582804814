// The holder and waiter watches of a LockService share ONE watch stream with watch ids the
// library chooses, created without waiting for each other; a watch given up before etcd
// answered its create is cancelled right behind it. Counted from a real etcd's own gauges.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { metric } from '../harness/etcd-metrics.js';
import { LockAbortedError, LockService, type LockHandle } from '../lib/index.js';
import { expectEtcdClean } from './support/etcd-state.js';
import { rejection } from './support/rejection.js';

const PREFIX = 'watch-stream/';
let etcd: EtcdHandle;
let admin: Etcd3;

const watchers = async () => metric(await etcd.metrics(), 'etcd_debugging_mvcc_watcher_total');
const streams = async () => metric(await etcd.metrics(), 'etcd_debugging_mvcc_watch_stream_total');

/** Polls `read` until it returns `expected` (or 10 s pass); the last value read. */
async function settlesAt(read: () => Promise<number>, expected: number): Promise<number> {
  let value = await read();
  for (const end = Date.now() + 10_000; value !== expected && Date.now() < end; value = await read()) await sleep(20);
  return value;
}

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
}, 60_000);

afterAll(async () => {
  try {
    await expectEtcdClean(admin, PREFIX);
  } finally {
    admin?.close();
    await etcd?.stop();
  }
});

describe('one watch stream per LockService (etcd)', () => {
  it('200 held locks and 20 waiters watch on one stream, and every watch is gone after release', async () => {
    const streamsBefore = await streams();
    const watchersBefore = await watchers();
    const locks = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 5 });
    const held: LockHandle[] = [];
    try {
      held.push(...(await Promise.all(Array.from({ length: 200 }, (_, i) => locks.acquire(`held:${i}`)))));
      // 20 waiters in a row on one more lock, each watching the one ahead of it
      const first = await locks.acquire('queue');
      const waiters = Array.from({ length: 20 }, () => locks.acquire('queue', { waitTimeout: 30_000 }));
      // each held lock watches its own key once held past 100 ms; each waiter watches its predecessor
      expect(await settlesAt(watchers, watchersBefore + 201 + 20)).toBe(watchersBefore + 221);
      expect(await streams()).toBe(streamsBefore + 1);
      await first.release();
      for (const waiter of waiters) await (await waiter).release(); // each release wakes the next
      await Promise.all(held.map(lock => lock.release()));
      expect(await settlesAt(watchers, watchersBefore)).toBe(watchersBefore);
    } finally {
      await locks.close();
    }
    expect(await settlesAt(streams, streamsBefore)).toBe(streamsBefore);
  });

  it('waiters that give up before etcd answered their watch leave no watch behind', async () => {
    const locks = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 5 });
    const holder = await locks.acquire('busy');
    try {
      await sleep(300); // the holder's own watch is in place
      const watchersBefore = await watchers();
      // each waiter gives up a microtask after it starts waiting: its watch's create has gone out, etcd has not answered it
      const aborts = Array.from({ length: 100 }, () => new AbortController());
      let next = 0;
      const subscription = locks.events$.subscribe(event => {
        if (event.type === 'waiting') {
          const abort = aborts[next++];
          queueMicrotask(() => abort.abort());
        }
      });
      try {
        const outcomes = await Promise.all(aborts.map(abort => rejection(locks.acquire('busy', { waitTimeout: 30_000, signal: abort.signal }))));
        expect(outcomes.every(error => error instanceof LockAbortedError)).toBe(true);
      } finally {
        subscription.unsubscribe();
      }
      expect(next).toBe(100);
      expect(await settlesAt(watchers, watchersBefore)).toBe(watchersBefore);
    } finally {
      await holder.release();
      await locks.close();
    }
  });
});
