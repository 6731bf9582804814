// What the API promises whatever the backend, written once and run against every backend
// (etcd.conformance.spec.ts, memory.conformance.spec.ts). Several LockServices on one backend
// stand for several processes; the parts that need real processes run where the backend can be
// shared between processes.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstValueFrom, filter } from 'rxjs';
import {
  LockAbortedError,
  LockConfigurationError,
  LockLostError,
  LockService,
  LockTimeoutError,
  type EtcdLockModuleOptions,
  type LockEvent,
  type LockHandle,
  type LockHolderInfo,
} from '../../lib/index.js';
import { HOLDER_WATCH_DELAY_MS } from '../../lib/engine/holds.js';
import type { LockWorker } from '../support/lock-worker.js';

/** A backend under test. */
export interface ConformanceTarget {
  /** Starts what the backend needs (a server) and returns the options that select it. */
  start(): Promise<EtcdLockModuleOptions>;
  /** Expires the session that holds `holder`, behind its back (etcd: its lease revoked). */
  expireSession(holder: LockHolderInfo): Promise<void>;
  /** Asserts nothing is left under `prefix`: no entry, no session. */
  expectClean(prefix: string): Promise<void>;
  stop(): Promise<void>;
  /** Starts a process with a LockService of its own on this backend, where the backend can be shared between processes. */
  startProcess?(prefix: string): Promise<LockWorker>;
  /** For the multi-process count: where the processes keep a shared counter, read back here. */
  readCounter?(key: string): Promise<number>;
}

const TTL = 2;

/** A call left running while the test goes on: if the test fails first, its later rejection is not an unhandled one. */
function background<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

export function describeConformance(name: string, target: ConformanceTarget): void {
  const prefix = `conformance-${name}/`;
  let options: EtcdLockModuleOptions;
  const services: LockService[] = [];

  /** A service standing for one process. */
  const service = (ownerId: string, extra: EtcdLockModuleOptions = {}): LockService => {
    const created = new LockService({ ...options, prefix, ttl: TTL, ownerId, ...extra });
    services.push(created);
    return created;
  };
  const eventsOf = (locks: LockService, type?: LockEvent['type']): LockEvent[] => {
    const seen: LockEvent[] = [];
    locks.events$.subscribe(event => (type === undefined || event.type === type) && seen.push(event));
    return seen;
  };
  const waitingFor = (locks: LockService, key: string) => firstValueFrom(locks.events$.pipe(filter(e => e.type === 'waiting' && e.key === key)));
  const lostOf = (lock: LockHandle) => new Promise<unknown>(resolve => lock.signal.addEventListener('abort', () => resolve(lock.signal.reason), { once: true }));

  beforeAll(async () => {
    options = await target.start();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(services.map(s => s.close()));
    try {
      await target.expectClean(prefix);
    } finally {
      await target.stop();
    }
  }, 60_000);

  describe(`conformance: ${name}`, () => {
    it('one holder at a time: 3 services x 30 read-pause-write increments end exact', async () => {
      let counter = 0;
      let inside = 0;
      let most = 0;
      const run = async (locks: LockService) => {
        for (let i = 0; i < 30; i++) {
          await locks.withLock('count', async () => {
            most = Math.max(most, ++inside);
            const read = counter;
            await sleep(1);
            counter = read + 1;
            inside--;
          });
        }
      };
      await Promise.all(['a', 'b', 'c'].map(owner => run(service(`count-${owner}`))));
      expect(counter).toBe(90);
      expect(most).toBe(1);
    });

    it('waiters get the lock in the order they queued, across services, with strictly increasing fencing tokens', async () => {
      const holder = service('fifo-holder');
      const first = await holder.acquire('fifo');
      const order: string[] = [];
      const tokens: bigint[] = [first.token];
      const waiters: Promise<void>[] = [];
      for (const owner of ['w1', 'w2', 'w3', 'w4']) {
        const locks = service(`fifo-${owner}`);
        const queued = waitingFor(locks, 'fifo');
        waiters.push(background(locks.withLock('fifo', lock => void (order.push(owner), tokens.push(lock.token)))));
        await queued; // in the queue before the next one asks
      }
      await first.release();
      await Promise.all(waiters);
      expect(order).toEqual(['w1', 'w2', 'w3', 'w4']);
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
    });

    it('tryAcquire on a busy lock returns null and leaves nothing queued; tryWithLock reports skipped', async () => {
      const a = service('try-a');
      const b = service('try-b');
      const skipped = eventsOf(b, 'skipped');
      const held = await a.acquire('busy');
      expect(await b.tryAcquire('busy')).toBeNull();
      expect(await b.tryWithLock('busy', () => 'ran')).toEqual({ acquired: false });
      expect(skipped.map(e => e.key)).toEqual(['busy']);
      expect((await a.getLockInfo('busy'))?.waiters).toEqual([]);
      await held.release();
      expect(await b.isLocked('busy')).toBe(false);
    });

    it('a timed-out acquire rejects with LockTimeoutError, emits timeout, and leaves nothing queued', async () => {
      const a = service('timeout-a');
      const b = service('timeout-b');
      const timeouts = eventsOf(b, 'timeout');
      const held = await a.acquire('slow');
      await expect(b.acquire('slow', { waitTimeout: 200 })).rejects.toBeInstanceOf(LockTimeoutError);
      expect(timeouts).toHaveLength(1);
      expect((await a.getLockInfo('slow'))?.waiters).toEqual([]);
      await held.release();
    });

    it('an aborted acquire rejects with LockAbortedError and leaves nothing queued', async () => {
      const a = service('abort-a');
      const b = service('abort-b');
      const held = await a.acquire('aborted');
      const controller = new AbortController();
      const waiting = background(b.acquire('aborted', { signal: controller.signal }));
      await waitingFor(b, 'aborted');
      controller.abort(new Error('user left'));
      await expect(waiting).rejects.toBeInstanceOf(LockAbortedError);
      expect((await a.getLockInfo('aborted'))?.waiters).toEqual([]);
      await held.release();
    });

    it('shared: readers hold together, a writer waits for them, and a reader behind a waiting writer waits too', async () => {
      const [r1, r2, w, r3] = ['r1', 'r2', 'w', 'r3'].map(owner => service(`rw-${owner}`));
      const read1 = await r1.acquire('doc', { mode: 'shared' });
      const read2 = await r2.acquire('doc', { mode: 'shared' });
      expect(read1.isHeld && read2.isHeld).toBe(true);
      const order: string[] = [];
      const writerQueued = waitingFor(w, 'doc');
      const writer = background(w.withLock('doc', () => void order.push('writer')));
      await writerQueued;
      const readerQueued = waitingFor(r3, 'doc');
      const reader = background(r3.withLock('doc', () => void order.push('late reader'), { mode: 'shared' }));
      await readerQueued; // no writer starvation: it waits behind the writer
      await read1.release();
      await read2.release();
      await Promise.all([writer, reader]);
      expect(order).toEqual(['writer', 'late reader']);
    });

    it('semaphore: at most limit holders at once; another limit on the same name is refused', async () => {
      let inside = 0;
      let most = 0;
      const run = (owner: string) =>
        service(`sem-${owner}`).withLock('pool', async () => {
          most = Math.max(most, ++inside);
          await sleep(20);
          inside--;
        }, { limit: 2 });
      const held = await service('sem-holder').acquire('pool', { limit: 2 });
      const conflict = service('sem-other').acquire('pool', { limit: 3 });
      await expect(conflict).rejects.toBeInstanceOf(LockConfigurationError);
      await held.release();
      await Promise.all(['a', 'b', 'c', 'd', 'e'].map(run));
      expect(most).toBe(2);
    });

    it('an unfair waiter (fair: false) gets the lock once it is free', async () => {
      const a = service('unfair-a');
      const b = service('unfair-b');
      const held = await a.acquire('unfair');
      const queued = waitingFor(b, 'unfair');
      const waiting = background(b.acquire('unfair', { fair: false }));
      await queued;
      let unfair: string[] = [];
      for (let i = 0; i < 40 && unfair.length === 0; i++, await sleep(25)) unfair = (await a.getLockInfo('unfair'))?.unfairWaiters.map(w => w.owner) ?? [];
      expect(unfair).toEqual(['unfair-b']); // not in the queue: in the unfair waiters' room
      await held.release();
      const got = await waiting;
      expect(got.token).toBeGreaterThan(held.token);
      await got.release();
    });

    it('reentrancy: withLock inside withLock of the same name re-enters, current() is the innermost', async () => {
      const locks = service('reenter');
      const seen = await locks.withLock('outer', async outer =>
        locks.withLock('outer', async inner => [inner.token === outer.token, locks.current() === inner] as const),
      );
      expect(seen).toEqual([true, true]);
      await expect(locks.withLock('outer', () => locks.withLock('outer', () => 1, { reentrant: false }))).rejects.toMatchObject({ code: 'LOCK_ALREADY_HELD', heldBy: 'this-context' });
    });

    it('maxHold: the lock ends as expired, withLock rejects with LockLostError, and the next waiter gets it', async () => {
      const a = service('maxhold-a');
      const b = service('maxhold-b');
      const expired = eventsOf(a, 'expired');
      const held = firstValueFrom(a.events$.pipe(filter(e => e.type === 'acquired' && e.key === 'long')));
      const holding = background(a.withLock('long', () => sleep(600), { maxHold: 200 }));
      await held; // a holds it before b asks
      const next = await b.acquire('long', { waitTimeout: 2_000 });
      await expect(holding).rejects.toBeInstanceOf(LockLostError);
      expect(expired.map(e => e.reason)).toEqual(['max-hold']);
      await next.release();
    });

    it('hard TTL: a lock not renewed is lost at its ttl; renew() keeps it', async () => {
      const locks = service('hard-ttl');
      const renewed = await locks.acquire('renewed', { autoRenew: false, ttl: 1 });
      const dropped = await locks.acquire('dropped', { autoRenew: false, ttl: 1 });
      for (let i = 0; i < 4; i++) {
        await sleep(400);
        await renewed.renew();
      }
      expect(renewed.isHeld).toBe(true);
      expect(dropped.isHeld).toBe(false);
      expect(dropped.signal.reason).toMatchObject({ reason: 'ttl-expired' });
      await renewed.release();
    });

    it('forceUnlock: the holder learns it lost the lock (forced), and the next waiter gets it', async () => {
      const [holder, waiter, operator] = ['holder', 'waiter', 'operator'].map(owner => service(`force-${owner}`));
      const held = await holder.acquire('stuck');
      const lost = lostOf(held);
      const queued = waitingFor(waiter, 'stuck');
      const next = background(waiter.acquire('stuck'));
      await queued;
      await sleep(HOLDER_WATCH_DELAY_MS + 50); // a holder watches its entry once it has held it this long (see docs/operating.md)
      const removed = await operator.forceUnlock('stuck');
      expect(removed.map(h => [h.owner, h.token])).toEqual([['force-holder', held.token]]);
      expect(await lost).toMatchObject({ reason: 'forced' });
      const got = await next;
      expect(got.token).toBeGreaterThan(held.token);
      await got.release();
      await held.release(); // a late release of a lost lock never throws, nor touches the new holder's entry
    });

    it("forceUnlock with a token removes only that holder, if it still holds: one reader of a shared lock, not the other; a stale token removes nothing", async () => {
      const [r1, r2, operator] = ['reader-1', 'reader-2', 'operator'].map(owner => service(`force-token-${owner}`));
      const read1 = await r1.acquire('doc:forced', { mode: 'shared' });
      const read2 = await r2.acquire('doc:forced', { mode: 'shared' });
      const lost = lostOf(read2);
      await sleep(HOLDER_WATCH_DELAY_MS + 50);
      const removed = await operator.forceUnlock('doc:forced', { token: read2.token });
      expect(removed.map(h => [h.owner, h.token])).toEqual([['force-token-reader-2', read2.token]]);
      expect(await lost).toMatchObject({ reason: 'forced' });
      expect(await operator.forceUnlock('doc:forced', { token: read2.token })).toEqual([]); // gone already
      expect((await operator.getLockInfo('doc:forced'))?.holders.map(h => h.token)).toEqual([read1.token]);
      expect(read1.signal.aborted).toBe(false);
      await expect(operator.forceUnlock('doc:forced', { token: 7 as never })).rejects.toBeInstanceOf(LockConfigurationError);
      await read1.release();
      await read2.release();
    });

    it('getLockInfo and listLocks show the holder and the waiters in order, from any service', async () => {
      const [a, b, c] = ['a', 'b', 'c'].map(owner => service(`info-${owner}`));
      const held = await a.acquire('info:1');
      const bQueued = waitingFor(b, 'info:1');
      const bWaits = background(b.acquire('info:1'));
      await bQueued;
      const cQueued = waitingFor(c, 'info:1');
      const cWaits = background(c.acquire('info:1'));
      await cQueued;
      const info = await c.getLockInfo('info:1');
      expect(info?.holder?.owner).toBe('info-a');
      expect(info?.holder?.token).toBe(held.token);
      expect(info?.waiters.map(w => w.owner)).toEqual(['info-b', 'info-c']);
      expect((await b.listLocks('info:')).map(i => i.key)).toEqual(['info:1']);
      await held.release();
      await (await bWaits).release();
      await (await cWaits).release();
      expect(await a.getLockInfo('info:1')).toBeNull();
    });

    it('a session that expires loses its locks (signal, lost event), and others take them', async () => {
      const a = service('expire-a');
      const b = service('expire-b');
      const lostEvents = eventsOf(a, 'lost');
      const held = await a.acquire('expiring');
      const lost = lostOf(held);
      const info = await b.getLockInfo('expiring');
      await target.expireSession(info!.holder!);
      expect(await lost).toBeInstanceOf(LockLostError);
      expect(lostEvents.map(e => e.key)).toEqual(['expiring']);
      expect(() => held.assertHeld()).toThrow(LockLostError);
      const taken = await b.acquire('expiring', { waitTimeout: 5_000 });
      expect(taken.token).toBeGreaterThan(held.token);
      await taken.release();
      const again = await a.acquire('expiring-2', { waitTimeout: 5_000 }); // a new session serves the next acquire
      await again.release();
    });

    it('an acquire that finds its session gone before it queued gets the lock on a new session', async () => {
      const a = service('renew-a');
      const held = await a.acquire('renew-1');
      const lost = lostOf(held);
      const first = (await a.getLockInfo('renew-1'))!.holder!;
      await target.expireSession(first); // behind its back: the service may not know yet
      const next = await a.acquire('renew-2', { waitTimeout: 5_000 });
      expect(next.token).toBeGreaterThan(held.token);
      expect((await a.getLockInfo('renew-2'))!.holder!.lease).not.toBe(first.lease);
      expect(await lost).toBeInstanceOf(LockLostError);
      await next.release();
      await held.release();
    });

    it('the watch reports other services\' locks: acquired, released, and a force-unlock as lost', async () => {
      const watcher = service('watcher', { watch: { prefix: 'watched:' } });
      await watcher.onModuleInit();
      const remote = eventsOf(watcher);
      const other = service('watched-holder');
      const held = await other.acquire('watched:1');
      await held.release();
      const again = await other.acquire('watched:1');
      await service('watched-operator').forceUnlock('watched:1');
      await (await other.acquire('unwatched')).release(); // outside the watched names: not reported
      for (let i = 0; i < 200 && remote.length < 4; i++) await sleep(50); // remote events arrive asynchronously: up to 10 s
      expect(remote.map(e => `${e.origin} ${e.type} ${e.key} ${e.owner}`)).toEqual([
        'remote acquired watched:1 watched-holder',
        'remote released watched:1 watched-holder',
        'remote acquired watched:1 watched-holder',
        'remote lost watched:1 watched-holder',
      ]);
      await again.release();
    });

    it('close() releases what a service holds: a waiter elsewhere gets it at once, and later calls are refused', async () => {
      const closing = service('closing');
      const waiter = service('close-waiter');
      await closing.acquire('handed-over');
      const queued = waitingFor(waiter, 'handed-over');
      const next = background(waiter.acquire('handed-over', { waitTimeout: 1_000 })); // well within the TTL: no expiry needed
      await queued;
      await closing.close();
      await (await next).release();
      await expect(closing.acquire('x')).rejects.toThrow(/closed/i);
    });

    if (target.startProcess) {
      it('across processes: 3 processes x 50 read-pause-write increments end exact, tokens increasing', async () => {
        const workers = await Promise.all([0, 1, 2].map(() => target.startProcess!(prefix)));
        try {
          const runs = await Promise.all(workers.map(w => w.request<{ token: bigint }[]>({ op: 'counter', key: 'process-count', counterKey: `${prefix}data/counter`, cycles: 50 })));
          const tokens = runs.flat().map(section => section.token).sort((x, y) => (x < y ? -1 : 1));
          expect(new Set(tokens).size).toBe(150);
          expect(await target.readCounter!(`${prefix}data/counter`)).toBe(150);
        } finally {
          await Promise.all(workers.map(w => w.stop()));
        }
      }, 60_000);

      it('a killed process\'s entries go by themselves, in locks nobody touches again: the watch reports its hold expired', async () => {
        const watcher = service('abandon-watcher', { watch: { prefix: 'abandoned:' } });
        await watcher.onModuleInit();
        const remote = eventsOf(watcher);
        // the watcher holds both locks the worker will wait for: its session lives on, as any running app's does
        const busy = [await watcher.acquire('abandoned:busy'), await watcher.acquire('abandoned:busy-unfair')];
        const worker = await target.startProcess!(prefix);
        try {
          await worker.request({ op: 'acquire', key: 'abandoned:held' });
          void background(worker.request({ op: 'acquire', key: 'abandoned:busy' }));
          void background(worker.request({ op: 'acquire', key: 'abandoned:busy-unfair', options: { fair: false } }));
          await worker.waitForEvent(e => e.event === 'waiting' && e.key === 'abandoned:busy');
          await worker.waitForEvent(e => e.event === 'waiting' && e.key === 'abandoned:busy-unfair');
          for (let i = 0; i < 40 && !(await watcher.getLockInfo('abandoned:busy-unfair'))?.unfairWaiters.length; i++) await sleep(25);
          expect((await watcher.getLockInfo('abandoned:busy'))?.waiters).toHaveLength(1);
          expect((await watcher.getLockInfo('abandoned:busy-unfair'))?.unfairWaiters).toHaveLength(1);
          await worker.signal('SIGKILL');

          // nobody calls anything on these locks until the watch has reported the hold expired
          const expired = () => remote.find(e => e.type === 'expired' && e.key === 'abandoned:held');
          for (let i = 0; i < 300 && !expired(); i++) await sleep(50); // up to 15 s; the session TTL is 2 s
          expect(expired()).toMatchObject({ origin: 'remote', reason: 'session-expired' });
          expect(await watcher.isLocked('abandoned:held')).toBe(false);
          const left = await watcher.listLocks('abandoned:');
          expect(left.map(info => `${info.key} ${info.holder?.owner} ${info.waiters.length} ${info.unfairWaiters.length}`)).toEqual([
            'abandoned:busy abandon-watcher 0 0',
            'abandoned:busy-unfair abandon-watcher 0 0',
          ]);
        } finally {
          await worker.stop();
          await Promise.all(busy.map(lock => lock.release()));
        }
      }, 60_000);
    }
  });
}
