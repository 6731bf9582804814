// Read/write locks, semaphores and unfair locks, against a real etcd with real processes
// (test/workers/lock.worker.ts): who may be inside together, in what order, and bad input.
import { afterEach, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockAlreadyHeldError, LockConfigurationError, LockService, type AcquireOptions } from '../lib/index.js';
import { expectEtcdClean, metric } from './support/etcd-state.js';
import { useEtcdAndWorkers } from './support/worker-fixture.js';
import type { LockWorker } from './support/lock-worker.js';
import { rejection } from './support/rejection.js';
import type { LockKindOptions, OccupancySection } from './workers/lock.worker.js';

const PREFIX = 'kinds-spec/';
const fixture = useEtcdAndWorkers(PREFIX, 2);
const { startWorkers } = fixture;
let services: LockService[] = [];

function newService(): LockService {
  const service = new LockService({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, ttl: 2 });
  services.push(service);
  return service;
}

const queueKeys = (name: string) => fixture.admin.getAll().prefix(`${PREFIX}${name}/`).keys();
const watchers = async () => metric(await fixture.etcd.metrics(), 'etcd_debugging_mvcc_watcher_total');

/** A pending acquire in a worker, and whether it has settled yet. */
function pending<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  void promise.finally(() => (settled = true)).catch(() => undefined);
  return { promise, settled: () => settled };
}

/** Waits until `worker` has reported `count` 'waiting' events. */
async function waitingCount(worker: LockWorker, count: number): Promise<void> {
  while (worker.events.filter(e => e.event === 'waiting').length < count) await sleep(5);
}

/** Runs the occupancy loop in every worker (`loops` at once in each) and returns all holds, in entry order. */
async function occupancy(procs: LockWorker[], loops: number, key: string, cycles: number, holdMs: number, options: (i: number) => LockKindOptions[]): Promise<OccupancySection[]> {
  const counterKey = `${PREFIX}data/${key}`;
  const runs = await Promise.all(
    procs.flatMap((w, p) =>
      Array.from({ length: loops }, (_, l) => w.request<OccupancySection[]>({ op: 'occupancy-loop', key, counterKey, cycles, holdMs, options: options(p * loops + l) })),
    ),
  ).finally(() => fixture.admin.delete().key(counterKey));
  return runs.flat().sort((a, b) => (a.enteredAt < b.enteredAt ? -1 : 1));
}

afterEach(async () => {
  await Promise.all(services.map(s => s.close()));
  services = [];
});

describe('read/write locks (mode)', () => {
  it('readers hold together; a writer waits for them; a reader behind a waiting writer waits for it (no writer starvation)', async () => {
    const procs = await startWorkers(4);
    const [r1, r2, writer, r3] = procs;
    for (const w of procs) await w.request({ op: 'tryAcquire', key: 'warm-up' }).then(() => w.request({ op: 'release', key: 'warm-up' })); // sessions open
    const shared: LockKindOptions = { mode: 'shared' };
    const first = await r1.request<{ token: bigint }>({ op: 'acquire', key: 'rw', options: shared });
    const second = await r2.request<{ token: bigint }>({ op: 'acquire', key: 'rw', options: shared }); // not blocked by r1
    expect(await r1.request({ op: 'probe', key: 'rw' })).toMatchObject({ isHeld: true });
    expect(await r2.request({ op: 'probe', key: 'rw' })).toMatchObject({ isHeld: true });

    await sleep(300); // the holders' own watches are on
    const before = await watchers();
    const writing = pending(writer.request<{ token: bigint }>({ op: 'acquire', key: 'rw' }));
    await writer.waitForEvent(e => e.event === 'waiting');
    const reading = pending(r3.request<{ token: bigint }>({ op: 'acquire', key: 'rw', options: shared }));
    await r3.waitForEvent(e => e.event === 'waiting'); // readers still hold, but a writer is ahead of it
    await sleep(100);
    expect(await watchers()).toBe(before + 2); // each waiter watches one key: the writer r2's, the reader the writer's

    await r1.request({ op: 'release', key: 'rw' });
    await sleep(150);
    expect(writing.settled()).toBe(false); // r2 still reads
    await r2.request({ op: 'release', key: 'rw' });
    const written = await writing.promise;
    await sleep(150);
    expect(reading.settled()).toBe(false); // the writer holds
    await writer.request({ op: 'release', key: 'rw' });
    const read = await reading.promise;
    await r3.request({ op: 'release', key: 'rw' });

    // fencing tokens keep increasing in queue order
    expect(second.token).toBeGreaterThan(first.token);
    expect(written.token).toBeGreaterThan(second.token);
    expect(read.token).toBeGreaterThan(written.token);
    expect(await queueKeys('rw')).toEqual([]);
  });

  it('4 processes mixing readers and writers: a writer is always alone, readers overlap, tokens increase past every writer', async () => {
    const procs = await startWorkers(4);
    // each loop takes shared, shared, exclusive in turn, starting at a different point
    const kinds: LockKindOptions[] = [{ mode: 'shared' }, { mode: 'shared' }, { mode: 'exclusive' }];
    const holds = await occupancy(procs, 1, 'rw-mix', 15, 5, i => [...kinds.slice(i % 3), ...kinds.slice(0, i % 3)]);
    expect(holds).toHaveLength(60);
    let newestWriter = 0n;
    let newestAny = 0n;
    for (const hold of holds) {
      if (hold.mode === 'other') {
        expect(hold.seen).toEqual({ shared: 0, other: 1 }); // nobody else inside
        expect(hold.token).toBeGreaterThan(newestAny); // later than every hold before it
        newestWriter = hold.token;
      } else {
        expect(hold.seen.other).toBe(0); // no writer inside
        expect(hold.token).toBeGreaterThan(newestWriter);
      }
      if (hold.token > newestAny) newestAny = hold.token;
    }
    expect(Math.max(...holds.map(h => h.seen.shared))).toBeGreaterThanOrEqual(2); // readers did hold together
    console.log(`[kinds] rw mix: ${holds.length} holds, ${holds.filter(h => h.mode === 'other').length} exclusive, up to ${Math.max(...holds.map(h => h.seen.shared))} readers at once`);
  });
});

describe('semaphores (limit)', () => {
  it('limit 3, 10 contenders in 5 processes: 3 get in, then each release of ANY holder lets in the next in queue order', async () => {
    const procs = await startWorkers(5);
    const semaphore: LockKindOptions = { limit: 3 };
    // contender i runs in process i % 5, as handle c<i>; they queue one after another
    const contenders = Array.from({ length: 10 }, (_, i) => ({ worker: procs[i % 5], as: `c${i}` }));
    const acquires: ReturnType<typeof pending<{ token: bigint }>>[] = [];
    const waits = new Map<LockWorker, number>();
    for (const [i, c] of contenders.entries()) {
      acquires.push(pending(c.worker.request<{ token: bigint }>({ op: 'acquire', key: 'sem', options: semaphore, as: c.as })));
      if (i < 3) {
        await acquires[i].promise;
      } else {
        waits.set(c.worker, (waits.get(c.worker) ?? 0) + 1);
        await waitingCount(c.worker, waits.get(c.worker)!);
      }
    }
    await sleep(100);
    expect(acquires.map(a => a.settled())).toEqual([true, true, true, false, false, false, false, false, false, false]);

    const inside = [0, 1, 2];
    for (let next = 3; next < 10; next++) {
      // release the middle holder, not the oldest: the first waiter must wake on any release
      const [leaving] = inside.splice(1, 1);
      await contenders[leaving].worker.request({ op: 'release', key: 'sem', as: contenders[leaving].as });
      await acquires[next].promise;
      inside.push(next);
      await sleep(100);
      expect(acquires.map(a => a.settled())).toEqual(acquires.map((_, i) => i <= next)); // exactly the next one got in
    }
    const tokens = await Promise.all(acquires.map(a => a.promise.then(r => r.token)));
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]); // queue order
    for (const i of inside) await contenders[i].worker.request({ op: 'release', key: 'sem', as: contenders[i].as });
    expect(await queueKeys('sem')).toEqual([]);
  });

  it('limit 3 under load, 10 looping contenders in 5 processes: never more than 3 inside, and 3 at times', async () => {
    const procs = await startWorkers(5);
    const holds = await occupancy(procs, 2, 'sem-load', 4, 20, () => [{ limit: 3 }]);
    expect(holds).toHaveLength(40);
    const most = Math.max(...holds.map(h => h.seen.other));
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBe(3); // the semaphore did let 3 in together
    console.log(`[kinds] semaphore: ${holds.length} holds, at most ${most} inside at once`);
  });

  it('tryAcquire takes a free place, and returns null when all are taken, leaving no key behind', async () => {
    const locks = newService();
    const a = await locks.tryAcquire('sem-try', { limit: 2 });
    const b = await locks.tryAcquire('sem-try', { limit: 2 });
    expect(a && b).toBeTruthy();
    expect(await locks.tryAcquire('sem-try', { limit: 2 })).toBeNull();
    expect(await queueKeys('sem-try')).toHaveLength(2);
    await a!.release();
    await b!.release();
    expect(await queueKeys('sem-try')).toEqual([]);
  });

  it('mixing limits, or a semaphore with a plain lock, on one name is INVALID_OPTIONS naming both, and leaves nothing queued', async () => {
    const holder = newService();
    const other = newService();
    const held = await holder.acquire('sem-mix', { limit: 3 });
    for (const options of [{ limit: 2 }, {}, { mode: 'shared' }] as AcquireOptions[]) {
      const err = await rejection(other.acquire('sem-mix', { ...options, waitTimeout: 1000 }));
      expect(err).toBeInstanceOf(LockConfigurationError);
      expect((err as LockConfigurationError).code).toBe('INVALID_OPTIONS');
      expect((err as Error).message).toContain('in use as a semaphore with limit 3');
    }
    await expect(other.tryAcquire('sem-mix', { limit: 2 })).rejects.toBeInstanceOf(LockConfigurationError);
    await expect(other.tryAcquire('sem-mix')).rejects.toBeInstanceOf(LockConfigurationError);
    expect(await queueKeys('sem-mix')).toHaveLength(1); // only the holder's key
    await held.release();
  });
});

describe('unfair locks (fair: false)', () => {
  it('3 processes, unfair and fair together: never two inside', async () => {
    const procs = await startWorkers(3);
    const holds = await occupancy(procs, 2, 'unfair', 15, 2, i => [{ fair: i % 3 === 0 }]);
    expect(holds).toHaveLength(90);
    for (const hold of holds) expect(hold.seen).toEqual({ shared: 0, other: 1 });
    for (let i = 1; i < holds.length; i++) expect(holds[i].token).toBeGreaterThan(holds[i - 1].token);
  });

  it('unfair waiters wait outside the queue, in a waiting room of their own, and take the lock once it is free', async () => {
    const [holder, first, second] = await startWorkers(3);
    const room = () => fixture.admin.getAll().prefix(`${PREFIX}barge%u/`).keys();
    await holder.request({ op: 'acquire', key: 'barge' });
    const waiting = [first, second].map(w => pending(w.request<{ token: bigint }>({ op: 'acquire', key: 'barge', options: { fair: false } })));
    await first.waitForEvent(e => e.event === 'waiting');
    await second.waitForEvent(e => e.event === 'waiting');
    while ((await room()).length < 2) await sleep(5);
    expect(await queueKeys('barge')).toHaveLength(1); // the holder's only: nothing queued stops a caller from taking it once free
    await holder.request({ op: 'release', key: 'barge' });
    const taken = await Promise.race(waiting.map((w, i) => w.promise.then(() => i)));
    await sleep(100);
    expect(waiting.map(w => w.settled())).toEqual([0, 1].map(i => i === taken)); // one release wakes one of them, not both
    expect(await room()).toHaveLength(1); // the taker left the room
    await [first, second][taken].request({ op: 'release', key: 'barge' });
    await waiting[1 - taken].promise;
    await [first, second][1 - taken].request({ op: 'release', key: 'barge' });
    expect(await room()).toEqual([]);
  });

  it('an unfair waiter that times out leaves the waiting room', async () => {
    const locks = newService();
    const holder = newService();
    const held = await holder.acquire('barge-timeout');
    await expect(locks.acquire('barge-timeout', { fair: false, waitTimeout: 300 })).rejects.toMatchObject({ code: 'LOCK_TIMEOUT' });
    expect(await fixture.admin.getAll().prefix(`${PREFIX}barge-timeout%u/`).keys()).toEqual([]);
    await held.release();
  });
});

describe('kinds in one async context, and bad options', () => {
  it('a shared acquire inside an exclusive hold re-enters; an exclusive one inside a shared hold is refused', async () => {
    const locks = newService();
    await locks.withLock('nest', async outer => {
      const inner = await locks.acquire('nest', { mode: 'shared' });
      expect(inner.token).toBe(outer.token);
      await inner.release();
    });
    await locks.withLock('nest', async () => {
      const err = await rejection(locks.acquire('nest', { waitTimeout: 500 }));
      expect(err).toBeInstanceOf(LockAlreadyHeldError);
      expect((err as LockAlreadyHeldError).heldBy).toBe('this-context-shared');
      await expect(locks.acquire('nest', { limit: 2 })).rejects.toBeInstanceOf(LockConfigurationError);
    }, { mode: 'shared' });
    expect(await queueKeys('nest')).toEqual([]);
  });

  it.each([
    [{ mode: 'read' }, 'mode'],
    [{ limit: 0 }, 'limit'],
    [{ limit: 2.5 }, 'limit'],
    [{ limit: 3, mode: 'shared' }, 'limit'],
    [{ fair: 'no' }, 'fair'],
    [{ fair: false, mode: 'shared' }, 'fair'],
    [{ fair: false, limit: 2 }, 'fair'],
  ])('%j is INVALID_OPTIONS naming %s, before anything reaches etcd', async (options, option) => {
    const locks = newService();
    const err = await rejection(locks.acquire('bad-kind', options as AcquireOptions));
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect((err as Error).message).toContain(`"${option}"`);
    expect(await queueKeys('bad-kind')).toEqual([]);
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases in etcd', async () => {
    await fixture.stopWorkers();
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});
