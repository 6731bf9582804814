// LockService against a real etcd (harness/etcd.ts), in one process. Cross-process
// claims (mutual exclusion, FIFO, SIGSTOP/SIGKILL) live in multi-process.spec.ts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { createEtcdClient } from '../lib/backends/etcd/etcd-client.js';
import { EtcdMutex } from '../lib/backends/etcd/etcd-mutex.js';
import { TxnBatcher } from '../lib/backends/etcd/txn-batcher.js';
import { WatchStream } from '../lib/backends/etcd/watch-stream.js';
import { EXCLUSIVE } from '../lib/common/lock-kind.js';
import { queueKey } from '../lib/backends/etcd/lock-key.js';
import { ownerRecord } from '../lib/common/owner-record.js';
import { QueueSlots } from '../lib/backends/etcd/queue-slots.js';
import {
  EtcdUnavailableError,
  LockAbortedError,
  LockAlreadyHeldError,
  LockConfigurationError,
  LockLostError,
  LockNotHeldError,
  LockService,
  LockServiceClosedError,
  LockTimeoutError,
  type EtcdLockModuleOptions,
  type LockEvent,
  type LockHandle,
} from '../lib/index.js';
import { expectEtcdClean, metric } from './support/etcd-state.js';
import { rejection } from './support/rejection.js';

const PREFIX = 'service-spec/';
let etcd: EtcdHandle;
let admin: Etcd3;
const services: LockService[] = [];

function newService(options: EtcdLockModuleOptions = {}): LockService {
  const service = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 1, ...options });
  services.push(service);
  return service;
}

function record(service: LockService): LockEvent[] {
  const events: LockEvent[] = [];
  service.events$.subscribe(e => events.push(e));
  return events;
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !condition(); await sleep(5)) {
    if (Date.now() > end) throw new Error('condition not met in time');
  }
}

/** Queue keys of one lock name in etcd (holder first). */
async function queueKeys(name: string): Promise<string[]> {
  return admin.getAll().prefix(`${PREFIX}${name}/`).sort('Create', 'Ascend').keys();
}

beforeAll(async () => {
  etcd = await startEtcd();
  admin = createEtcdClient({ hosts: etcd.endpoints }); // no 5 s circuit breaker after the restarts below
});

afterAll(async () => {
  await Promise.all(services.map(s => s.close()));
  admin?.close();
  await etcd?.stop();
});

describe('cost', () => {
  it('reuses queue key names: etcd does not collect one dead key per acquisition', async () => {
    const locks = newService();
    const names = new Set<string>();
    const watcher = await admin.watch().prefix(`${PREFIX}reuse/`).create();
    watcher.on('put', kv => names.add(kv.key.toString()));
    try {
      for (let i = 0; i < 20; i++) await (await locks.acquire('reuse')).release();
      await until(() => names.size > 0);
      expect(names.size).toBe(1); // 20 acquisitions, one name (a fresh name each would leave 20 in etcd's index)
      await Promise.all(Array.from({ length: 3 }, () => locks.withLock('reuse', () => sleep(5))));
      await sleep(100); // let the watch deliver the last puts
      expect(names.size).toBeLessThanOrEqual(3); // concurrent attempts need distinct names
      expect(names.size).toBeGreaterThan(1);
    } finally {
      await watcher.cancel();
    }
  });

  it('failed waits give their key names back: after 200 timeouts and aborts, a waiter still uses the first names', async () => {
    const holder = await newService().acquire('failed-waits');
    const waiter = newService();
    const names = new Set<string>();
    const watcher = await admin.watch().prefix(`${PREFIX}failed-waits/`).create();
    watcher.on('put', kv => names.add(kv.key.toString()));
    try {
      for (let i = 0; i < 100; i++) {
        // a timeout shorter than the enqueue's round trip, sometimes: the key is discarded once the put answers
        await rejection(waiter.acquire('failed-waits', { waitTimeout: i % 2 === 0 ? 1 : 15 }));
        const abort = new AbortController();
        const pending = waiter.acquire('failed-waits', { signal: abort.signal });
        setTimeout(() => abort.abort(new Error('gave up')), i % 3);
        await rejection(pending);
        expect(await waiter.tryAcquire('failed-waits')).toBeNull();
      }
      const events = record(waiter);
      const fresh = waiter.acquire('failed-waits');
      await until(() => events.some(e => e.type === 'waiting'));
      await sleep(100); // the watch delivers the fresh waiter's put
      const keys = await queueKeys('failed-waits');
      expect(keys).toHaveLength(2);
      // the fresh waiter's name: slot 0 or 1 of its session, not slot 200
      expect(Number.parseInt(keys[1].slice(keys[1].lastIndexOf('-') + 1), 16)).toBeLessThanOrEqual(1);
      // what every later read of this lock walks in etcd's index: the holder's name and a few of the waiter's, not one per failed wait
      expect(names.size).toBeLessThanOrEqual(3);
      await holder.release();
      await (await fresh).release();
    } finally {
      await watcher.cancel();
    }
  });

  it('an uncontended acquire + release is exactly 2 unary RPCs, no lease grant, no new stream', async () => {
    const locks = newService();
    await (await locks.acquire('cost')).release(); // opens the session: one lease grant, once
    const unary = (text: string) => metric(text, 'grpc_server_handled_total', { grpc_type: 'unary' });
    const streams = (text: string) => metric(text, 'grpc_server_started_total', { grpc_type: 'bidi_stream' });
    const byMethod = (text: string, method: string) => metric(text, 'grpc_server_handled_total', { grpc_method: method });
    const before = await etcd.metrics();
    for (let i = 0; i < 100; i++) await (await locks.acquire('cost')).release();
    const after = await etcd.metrics();
    expect(unary(after) - unary(before)).toBe(200);
    expect(byMethod(after, 'Txn') - byMethod(before, 'Txn')).toBe(200);
    expect(byMethod(after, 'LeaseGrant') - byMethod(before, 'LeaseGrant')).toBe(0);
    expect(byMethod(after, 'LeaseRevoke') - byMethod(before, 'LeaseRevoke')).toBe(0);
    expect(streams(after) - streams(before)).toBe(0);
    expect(await queueKeys('cost')).toEqual([]);
  });

  it('one release wakes one waiter: a handoff costs the same with 1 or 6 waiters', async () => {
    const holder = newService();
    const handoffCost = async (waiters: number) => {
      const name = `herd-${waiters}`;
      const first = await holder.acquire(name);
      const queued = Array.from({ length: waiters }, () => newService());
      const pending: Promise<LockHandle>[] = [];
      for (const service of queued) {
        const events = record(service);
        pending.push(service.acquire(name));
        await until(() => events.some(e => e.type === 'waiting'));
      }
      // every waiter's predecessor watch is in place, and the holder's own watch (from 100 ms
      // on, with one read as etcd moved on since it acquired) has started
      await sleep(250);
      const before = await etcd.metrics();
      await first.release();
      const next = await pending[0];
      // let any other waiter wake up, if one wrongly would; stop counting before the new
      // holder's own watch starts (at 100 ms), with its write of when it got the lock
      await sleep(60);
      const after = await etcd.metrics();
      const cost = {
        txn: metric(after, 'grpc_server_handled_total', { grpc_method: 'Txn' }) - metric(before, 'grpc_server_handled_total', { grpc_method: 'Txn' }),
        events: metric(after, 'etcd_debugging_mvcc_events_total') - metric(before, 'etcd_debugging_mvcc_events_total'),
      };
      // drain the queue
      await next.release();
      for (const p of pending.slice(1)) await (await p).release();
      return cost;
    };
    const one = await handoffCost(1);
    const six = await handoffCost(6);
    // the release (1 Txn) plus the next waiter's confirming read (1 Txn); nobody else reads
    expect(one.txn).toBe(2);
    expect(six.txn).toBe(2);
    // the next waiter's predecessor event, and at most the releasing holder's own-key event
    expect(one.events).toBeLessThanOrEqual(2);
    expect(six.events).toBeLessThanOrEqual(2);
  });
});

describe('queueing', () => {
  it('waiters acquire in the order they queued; fencing tokens strictly increase', async () => {
    const locks = newService();
    const events = record(locks);
    const first = await locks.acquire('fifo');
    const order: number[] = [];
    const tokens: bigint[] = [first.token];
    const waiters: Promise<void>[] = [];
    for (let i = 0; i < 5; i++) {
      const waiting = events.filter(e => e.type === 'waiting').length;
      waiters.push(
        locks.withLock('fifo', async lock => {
          order.push(i);
          tokens.push(lock.token);
          await sleep(5);
        }),
      );
      await until(() => events.filter(e => e.type === 'waiting').length > waiting);
    }
    await first.release();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
  });

  it('two async contexts of one process queue against each other like two processes', async () => {
    const locks = newService();
    const spans: [number, number][] = [];
    const section = () =>
      locks.withLock('contexts', async () => {
        const start = performance.now();
        await sleep(30);
        spans.push([start, performance.now()]);
      });
    await Promise.all([section(), section(), section()]);
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
  });

  it('a context that holds a key re-enters it; the last release frees it', async () => {
    const locks = newService();
    const other = newService();
    await locks.withLock('reentrant', async outer => {
      const inner = await locks.acquire('reentrant');
      expect(inner.token).toBe(outer.token);
      expect(await queueKeys('reentrant')).toHaveLength(1); // no second queue key
      await inner.release();
      expect(inner.isHeld).toBe(false);
      expect(outer.isHeld).toBe(true);
      expect(await other.tryAcquire('reentrant')).toBeNull();
      await expect(locks.acquire('reentrant', { reentrant: false })).rejects.toBeInstanceOf(LockAlreadyHeldError);
    });
    const after = await other.tryAcquire('reentrant');
    expect(after).not.toBeNull();
    await after!.release();
  });

  it('await using releases the lock at the end of the block', async () => {
    const locks = newService();
    {
      await using lock = await locks.acquire('using');
      expect(lock.isHeld).toBe(true);
      expect(await queueKeys('using')).toHaveLength(1);
    }
    expect(await queueKeys('using')).toEqual([]);
  });

  it('a lock being released is not re-entered: the same context queues for a new one', async () => {
    const locks = newService();
    await locks.withLock('releasing', async lock => {
      const releasing = lock.release(); // the last hold: the guarded delete is in flight
      const again = await locks.acquire('releasing');
      expect(again.token).toBeGreaterThan(lock.token);
      expect(again.isHeld).toBe(true);
      await releasing;
      expect(again.isHeld).toBe(true); // not ended by the release it would have joined
      await again.release();
    });
    expect(await queueKeys('releasing')).toEqual([]);
  });

  it('current() is the innermost lock of the calling context', async () => {
    const locks = newService();
    expect(locks.current()).toBeUndefined();
    await locks.withLock('outer', async outer => {
      expect(locks.current()).toBe(outer);
      await locks.withLock('inner', async inner => {
        expect(locks.current()).toBe(inner);
      });
      await Promise.resolve().then(() => expect(locks.current()).toBe(outer));
    });
    expect(locks.current()).toBeUndefined();
  });
});

describe('failing to acquire leaves nothing behind', () => {
  it('tryAcquire on a held key returns null without writing', async () => {
    const locks = newService();
    const other = newService();
    // its session opens first: the lease marker it puts moves etcd's revision, which would make
    // the holder's watch (attaching 100 ms after the acquire) read its key once, inside the count
    await other.onModuleInit();
    const holder = await locks.acquire('busy');
    const before = await etcd.metrics();
    expect(await other.tryAcquire('busy')).toBeNull();
    expect(await queueKeys('busy')).toHaveLength(1);
    const after = await etcd.metrics();
    // one transaction, and no put went through (no new revision for the queue)
    expect(metric(after, 'grpc_server_handled_total', { grpc_method: 'Txn' }) - metric(before, 'grpc_server_handled_total', { grpc_method: 'Txn' })).toBe(1);
    // even a JavaScript caller sneaking in a waitTimeout gets an answer at once
    const sneaky = { waitTimeout: 60_000 } as unknown as Parameters<LockService['tryAcquire']>[1];
    expect(await newService().tryAcquire('busy', sneaky)).toBeNull();
    const { acquired } = await newService().tryWithLock('busy', () => 'ran');
    expect(acquired).toBe(false);
    await holder.release();
    expect(await newService().tryWithLock('busy', () => 'ran')).toEqual({ acquired: true, result: 'ran' });
  });

  it('a timed-out acquire throws LockTimeoutError, emits timeout and removes its queue key', async () => {
    const holder = await newService().acquire('timeout');
    const waiter = newService();
    await (await waiter.acquire('timeout-warm-up')).release(); // its session opened: the timeout below counts the wait, not the session's start
    const events = record(waiter);
    // long enough for the enqueue to be answered on a loaded machine: this test is about what a timeout leaves, after queueing
    const err = await rejection(waiter.acquire('timeout', { waitTimeout: 1_000 }));
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect((err as LockTimeoutError).code).toBe('LOCK_TIMEOUT');
    expect(events.map(e => e.type)).toEqual(['waiting', 'timeout']);
    expect(await queueKeys('timeout')).toHaveLength(1);
    await holder.release();
  });

  it('an aborted signal, before or during the wait, rejects with LockAbortedError and removes the key', async () => {
    const holder = await newService().acquire('abort');
    const waiter = newService();
    const before = new AbortController();
    before.abort(new Error('not wanted'));
    const early = await rejection(waiter.acquire('abort', { signal: before.signal }));
    expect(early).toBeInstanceOf(LockAbortedError);
    expect(early.cause).toBe(before.signal.reason);

    const during = new AbortController();
    const events = record(waiter);
    const pending = waiter.acquire('abort', { signal: during.signal });
    await until(() => events.some(e => e.type === 'waiting'));
    expect(await queueKeys('abort')).toHaveLength(2);
    during.abort(new Error('client went away'));
    const late = await rejection(pending);
    expect(late).toBeInstanceOf(LockAbortedError);
    expect((late as LockAbortedError).code).toBe('LOCK_ABORTED');
    expect(await queueKeys('abort')).toHaveLength(1);
    await holder.release();
  });

  it('a waiter whose own queue key is deleted fails with LockLostError instead of acquiring', async () => {
    const holder = await newService().acquire('waiter-gone');
    const waiter = newService();
    const events = record(waiter);
    const pending = waiter.acquire('waiter-gone');
    await until(() => events.some(e => e.type === 'waiting'));
    const [, waiterKey] = await queueKeys('waiter-gone');
    await admin.delete().key(waiterKey);
    await holder.release(); // wakes the waiter, whose confirming read finds its key gone
    const err = await rejection(pending);
    expect(err).toBeInstanceOf(LockLostError);
    expect((err as LockLostError).reason).toBe('key-deleted');
    expect(await queueKeys('waiter-gone')).toEqual([]);
  });
});

describe('loss is never silent', () => {
  it('deleting the holder key behind its back aborts the signal and emits lost within one watch event', async () => {
    const locks = newService();
    const events = record(locks);
    const lock = await locks.acquire('deleted');
    await admin.delete().prefix(`${PREFIX}deleted/`);
    await until(() => lock.signal.aborted, 2_000);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    expect((lock.signal.reason as LockLostError).reason).toBe('key-deleted');
    expect(lock.isHeld).toBe(false);
    expect(() => lock.assertHeld()).toThrow(LockLostError);
    expect(events.map(e => e.type)).toEqual(['acquired', 'lost']);
    expect(events[1]).toMatchObject({ key: 'deleted', reason: 'key-deleted', token: lock.token, origin: 'local' });
    await lock.release(); // after loss: no error, no effect
    expect(events).toHaveLength(2);
  });

  it('withLock rejects with LockLostError when the lock is lost while fn runs, even if fn succeeds', async () => {
    const locks = newService();
    const err = await rejection(
      locks.withLock('lost-in-fn', async lock => {
        await admin.delete().prefix(`${PREFIX}lost-in-fn/`);
        await until(() => lock.signal.aborted, 2_000);
        return 'looks fine';
      }),
    );
    expect(err).toBeInstanceOf(LockLostError);
    expect((err as LockLostError).code).toBe('LOCK_LOST');
  });

  it('a short lock whose key is deleted before its holder watch starts is reported lost at release', async () => {
    const locks = newService();
    const events = record(locks);
    const err = await rejection(
      locks.withLock('short-deleted', async () => {
        await admin.delete().prefix(`${PREFIX}short-deleted/`); // well within HOLDER_WATCH_DELAY_MS
        return 'looks fine';
      }),
    );
    expect(err).toBeInstanceOf(LockLostError);
    expect((err as LockLostError).reason).toBe('key-deleted');
    expect(events.map(e => e.type)).toEqual(['acquired', 'lost']);
  });

  it('a stale release never removes the next holder key', async () => {
    const first = newService();
    const lock = await first.acquire('stale');
    await admin.delete().prefix(`${PREFIX}stale/`); // first loses it
    await until(() => lock.signal.aborted, 2_000);
    const second = await newService().acquire('stale');
    await lock.release();
    await lock.release();
    expect(await queueKeys('stale')).toHaveLength(1);
    expect(second.isHeld).toBe(true);
    expect(second.token).toBeGreaterThan(lock.token);
    await second.release();
  });

  it('release twice is a no-op; released handles report LockNotHeldError', async () => {
    const locks = newService();
    const events = record(locks);
    const lock = await locks.acquire('twice');
    await lock.release();
    const before = await etcd.metrics();
    await lock.release();
    const after = await etcd.metrics();
    const releaseRpcs = (text: string) =>
      metric(text, 'grpc_server_handled_total', { grpc_method: 'Txn' }) + metric(text, 'grpc_server_handled_total', { grpc_method: 'DeleteRange' });
    expect(releaseRpcs(after)).toBe(releaseRpcs(before));
    expect(events.map(e => e.type)).toEqual(['acquired', 'released']);
    expect(lock.signal.reason).toBeInstanceOf(LockNotHeldError);
    expect(() => lock.assertHeld()).toThrow(LockNotHeldError);
  });
});

describe('the queue key, directly', () => {
  it('a retried enqueue transaction finds its own key instead of queueing twice', async () => {
    const lease = await admin.lease(5, { autoKeepAlive: false }).grant();
    const mutex = new EtcdMutex(admin, new TxnBatcher(admin), new WatchStream(admin), `${PREFIX}retry/`, EXCLUSIVE, queueKey(`${PREFIX}retry/`, EXCLUSIVE, BigInt(lease).toString(16), 0), lease, ownerRecord('me'), new QueueSlots().claim('retry'), async () => null);
    expect(await mutex.tryAcquire(false)).toBe(true);
    const token = mutex.revision;
    expect(await mutex.tryAcquire(false)).toBe(true); // the same request again, as after an unknown outcome
    expect(mutex.revision).toBe(token);
    expect(await queueKeys('retry')).toHaveLength(1);
    await mutex.release();
    await admin.leaseClient.leaseRevoke({ ID: lease });
  });

  it('release deletes only the key it created: a key re-created under the same name survives', async () => {
    const lease = await admin.lease(5, { autoKeepAlive: false }).grant();
    const key = queueKey(`${PREFIX}guard/`, EXCLUSIVE, BigInt(lease).toString(16), 0);
    const mutex = new EtcdMutex(admin, new TxnBatcher(admin), new WatchStream(admin), `${PREFIX}guard/`, EXCLUSIVE, key, lease, ownerRecord('me'), new QueueSlots().claim('guard'), async () => null);
    await mutex.tryAcquire(false);
    await admin.delete().key(key);
    await admin.put(key).value('someone newer'); // a newer holder's key, same name, higher revision
    await mutex.release(); // a late or retried release
    expect(await admin.get(key).string()).toBe('someone newer');
    await admin.delete().key(key);
    await admin.leaseClient.leaseRevoke({ ID: lease });
  });
});

describe('close()', () => {
  it('revokes the lease so a waiter elsewhere gets the lock without waiting out the TTL', async () => {
    const closing = newService({ ttl: 30 });
    const held = await closing.acquire('close');
    const waiter = newService();
    const pending = waiter.acquire('close', { waitTimeout: 5_000 }); // far below the 30 s TTL
    const closingEvents = record(closing);
    const blocker = await newService().acquire('close-queued');
    const queuedInClosing = closing.acquire('close-queued');
    await until(() => closingEvents.some(e => e.type === 'waiting'));
    await closing.close();
    const next = await pending;
    expect(next.isHeld).toBe(true);
    expect(held.isHeld).toBe(false);
    expect(held.signal.reason).toBeInstanceOf(LockNotHeldError);
    expect(closingEvents.some(e => e.type === 'released' && e.key === 'close')).toBe(true);
    expect(await rejection(queuedInClosing)).toBeInstanceOf(LockServiceClosedError);
    expect(await queueKeys('close-queued')).toHaveLength(1);
    await blocker.release();
    await next.release();
  });

  it('a closed service refuses every call with SERVICE_CLOSED', async () => {
    const locks = newService();
    await locks.close();
    await locks.close(); // idempotent
    for (const call of [() => locks.acquire('x'), () => locks.tryAcquire('x'), () => locks.withLock('x', () => 1), () => locks.isLocked('x')]) {
      const err = await rejection(call());
      expect(err).toBeInstanceOf(LockServiceClosedError);
      expect((err as LockServiceClosedError).code).toBe('SERVICE_CLOSED');
    }
  });
});

describe('bad input', () => {
  it('rejects bad keys with INVALID_KEY before touching etcd', async () => {
    const locks = newService();
    for (const key of ['', 'a\nb', 'x'.repeat(513), 42 as unknown as string]) {
      const err = await rejection(locks.acquire(key));
      expect((err as { code?: string }).code).toBe('INVALID_KEY');
    }
  });

  it('rejects a negative or NaN waitTimeout with INVALID_OPTIONS', async () => {
    const locks = newService();
    for (const waitTimeout of [-1, NaN]) {
      const err = await rejection(locks.acquire('opts', { waitTimeout }));
      expect(err).toBeInstanceOf(LockConfigurationError);
      expect(err.message).toMatch(/"waitTimeout"/);
    }
    expect(() => new LockService({ ttl: 2.5 })).toThrow(/"ttl"/);
  });

  it('rejects a bad retry option with INVALID_OPTIONS, naming it, and queues nothing', async () => {
    const locks = newService();
    for (const retry of [{ initialMs: 0 }, { maxMs: NaN }, 'often'] as never[]) {
      const err = await rejection(locks.acquire('opts-retry', { retry }));
      expect(err).toMatchObject({ code: 'INVALID_OPTIONS' });
      expect(err.message).toMatch(/"retry/);
    }
    expect(await locks.isLocked('opts-retry')).toBe(false);
  });

  it('an unreachable etcd fails the first acquire with ETCD_UNAVAILABLE in bounded time', async () => {
    const port = await new Promise<number>(resolve => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const locks = new LockService({ etcd: { hosts: `127.0.0.1:${port}` }, connectTimeout: 1_000 });
    try {
      const err = await rejection(locks.acquire('nowhere'));
      expect(err).toBeInstanceOf(EtcdUnavailableError);
      expect(err.message).toContain(`127.0.0.1:${port}`);
    } finally {
      await locks.close();
    }
  });

  it('a TTL below the cluster minimum is refused, naming the minimum, and leaves no lease', async () => {
    const slow = await startEtcd({ fastRaft: false }); // etcd's default timings: minimum TTL 2 s
    const client = new Etcd3({ hosts: slow.endpoints });
    const locks = new LockService({ client, ttl: 1, prefix: PREFIX });
    try {
      const err = await rejection(locks.acquire('ttl'));
      expect(err).toBeInstanceOf(LockConfigurationError);
      expect(err.message).toMatch(/minimum lease TTL of 2 s/);
      expect((await client.leaseClient.leaseLeases()).leases).toEqual([]);
    } finally {
      await locks.close();
      client.close(); // given, so never closed by the service
      await slow.stop();
    }
  });
});

// Last: these stop or pause the file's etcd, and every session in the file is lost with it.
describe('etcd faults', () => {
  it('a paused etcd (stream open, no answers): every lock is lost at the local deadline', async () => {
    if (etcd.members.length === 0) return expect(etcd.source).toBe('env'); // external etcd: not ours to pause
    // ttl 2: the session that replaces the lost one must outlast a just-resumed etcd under a loaded CI machine
    const locks = newService({ ttl: 2 });
    const lock = await locks.acquire('deadline');
    etcd.members[0].pause();
    try {
      // the keepalive stream stays ESTABLISHED: only the deadline can tell
      await until(() => lock.signal.aborted, 4_000);
    } finally {
      etcd.members[0].resume();
    }
    expect((lock.signal.reason as LockLostError).reason).toBe('session-expired');
    // a new session replaces the lost one; the old lease is revoked once etcd answers
    const again = await locks.acquire('deadline');
    await again.release();
  });

  it('a lock rides out a paused etcd for 0.8 × TTL (1.6 s at TTL 2), wherever in the keepalive cycle the pause starts', async () => {
    if (etcd.members.length === 0) return expect(etcd.source).toBe('env'); // external etcd: not ours to pause
    const locks = newService({ ttl: 2 });
    const other = newService({ ttl: 2 });
    await other.onModuleInit(); // its session opens now, not while etcd is paused
    const lock = await locks.acquire('outage');
    const pauses: { pauseMs: number; held: boolean }[] = [];
    // three pauses at random points of the keepalive cycle: with a keepalive every TTL / 3, a 1.6 s pause is lost in most of them
    for (let i = 0; i < 3; i++) {
      await sleep(300 + Math.random() * 700);
      const pausedAt = performance.now();
      etcd.members[0].pause();
      try {
        await sleep(1_600);
      } finally {
        etcd.members[0].resume();
      }
      const pauseMs = Math.round(performance.now() - pausedAt);
      await sleep(300); // the answers to the keepalives sent meanwhile
      pauses.push({ pauseMs, held: lock.isHeld });
      if (!lock.isHeld) break;
    }
    expect(pauses).toEqual(pauses.map(p => ({ ...p, held: true })));
    expect(pauses.every(p => p.pauseMs >= 1_600)).toBe(true);
    expect(await other.tryAcquire('outage')).toBeNull(); // still ours in etcd, too
    await lock.release();
  });

  it('a lease declared lost is revoked once etcd is back, though a restarted etcd re-extends it', async () => {
    if (etcd.members.length === 0) return expect(etcd.source).toBe('env'); // external etcd: not ours to restart
    const leasesBefore = new Set((await admin.leaseClient.leaseLeases()).leases.map(l => l.ID));
    const locks = newService({ ttl: 2 });
    const lock = await locks.acquire('revoke-lost');
    const [lease] = (await admin.leaseClient.leaseLeases()).leases.map(l => l.ID).filter(id => !leasesBefore.has(id));
    await etcd.members[0].kill();
    try {
      await until(() => lock.signal.aborted, 5_000); // lost at the local deadline, etcd down
    } finally {
      await etcd.members[0].start(); // etcd grants every lease a fresh TTL on start
    }
    for (const end = Date.now() + 5_000; Date.now() < end; await sleep(50)) {
      const leases = await admin.leaseClient.leaseLeases().then(r => r.leases.map(l => l.ID), () => [lease]); // etcd may still be starting
      if (!leases.includes(lease)) break;
    }
    expect((await admin.leaseClient.leaseLeases()).leases.map(l => l.ID)).not.toContain(lease);
    // gone because we revoked it (etcd's own expiry is not a LeaseRevoke call); counters restart with etcd
    expect(metric(await etcd.metrics(), 'grpc_server_handled_total', { grpc_method: 'LeaseRevoke', grpc_code: 'OK' })).toBeGreaterThanOrEqual(1);
  });

});

describe('hard-TTL locks (autoRenew: false)', () => {
  it('end by themselves after their ttl without renew: signal, expired event, and only then the next holder', async () => {
    const [a, b] = [newService({ ttl: 3 }), newService({ ttl: 3 })];
    const log: string[] = [];
    a.events$.subscribe(e => log.push(`a:${e.type}:${e.reason ?? ''}`));
    b.events$.subscribe(e => log.push(`b:${e.type}`));
    const lock = await a.acquire('hard', { autoRenew: false, ttl: 1 });
    const next = b.acquire('hard', { waitTimeout: 10_000 });
    const reason = await new Promise(resolve => lock.signal.addEventListener('abort', () => resolve(lock.signal.reason)));
    expect(reason).toMatchObject({ code: 'LOCK_LOST', reason: 'ttl-expired' });
    expect(lock.isHeld).toBe(false);
    expect(() => lock.assertHeld()).toThrow(LockLostError);
    const successor = await next;
    expect(successor.token).toBeGreaterThan(lock.token);
    // told before anyone else got in
    expect(log.indexOf('a:expired:ttl-expired')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('a:expired:ttl-expired')).toBeLessThan(log.indexOf('b:acquired'));
    // renewing a lock that is gone never re-acquires it
    expect(await rejection(lock.renew())).toMatchObject({ code: 'LOCK_LOST', reason: 'ttl-expired' });
    expect(successor.isHeld).toBe(true);
    await successor.release();
    // the service's session, and its other locks, were not touched
    await (await a.acquire('after-hard')).release();
  });

  it('live on while renewed, with the same token; a released one is not renewed', async () => {
    const [a, b] = [newService({ ttl: 3 }), newService({ ttl: 3 })];
    const lock = await a.acquire('hard-renewed', { autoRenew: false, ttl: 1 });
    const token = lock.token;
    for (let i = 0; i < 6; i++) {
      await sleep(400); // 2.4 s in all: more than twice the ttl
      await lock.renew();
      expect(await b.tryAcquire('hard-renewed')).toBeNull();
    }
    expect(lock.isHeld).toBe(true);
    expect(lock.token).toBe(token);
    await lock.renew(2); // another ttl for the next stretch
    await lock.release();
    expect(await rejection(lock.renew())).toMatchObject({ code: 'LOCK_NOT_HELD' });
    const next = (await b.tryAcquire('hard-renewed'))!;
    expect(next.token).toBeGreaterThan(token);
    await next.release();
  });

  it('close() revokes their own leases too: a waiter elsewhere does not wait out the ttl', async () => {
    const [a, b] = [newService({ ttl: 3 }), newService({ ttl: 3 })];
    await a.acquire('hard-close', { autoRenew: false, ttl: 30 });
    await a.close();
    const next = await b.acquire('hard-close', { waitTimeout: 5_000 }); // far less than 30 s
    await next.release();
  });

  it('refuse a ttl without autoRenew: false, and a ttl that is not whole seconds >= 1', async () => {
    const locks = newService();
    expect(await rejection(locks.acquire('hard-opts', { ttl: 5 }))).toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringMatching(/"ttl".*autoRenew: false/) });
    expect(await rejection(locks.acquire('hard-opts', { autoRenew: false, ttl: 0.5 }))).toMatchObject({ code: 'INVALID_OPTIONS' });
    expect(await locks.isLocked('hard-opts')).toBe(false);
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases in etcd', async () => {
    await Promise.all(services.map(s => s.close()));
    await expectEtcdClean(admin, PREFIX);
  });
});
