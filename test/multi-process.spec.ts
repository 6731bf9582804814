// Claims about concurrency and faults, tested with real OS processes (test/workers/lock.worker.ts),
// real signals (SIGSTOP, SIGCONT, SIGKILL) and a real etcd.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { createEtcdClient } from '../lib/backends/etcd/etcd-client.js';
import { LockService } from '../lib/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectEtcdClean, metric } from './support/etcd-state.js';
import { LockWorker } from './support/lock-worker.js';
import type { CriticalSection } from './workers/lock.worker.js';

const PREFIX = 'process-spec/';
const TTL = 1; // seconds; the harness's fast raft timings allow it
let etcd: EtcdHandle;
let admin: Etcd3;
let workers: LockWorker[] = [];

async function startWorkers(count: number, ttl = TTL): Promise<LockWorker[]> {
  const started = await Promise.all(Array.from({ length: count }, () => LockWorker.start(etcd.endpoints, PREFIX, ttl)));
  workers.push(...started);
  return started;
}

beforeAll(async () => {
  etcd = await startEtcd();
  admin = createEtcdClient({ hosts: etcd.endpoints }); // no 5 s circuit breaker after the restarts below
});

afterEach(async () => {
  await Promise.all(workers.map(w => w.stop()));
  workers = [];
});

afterAll(async () => {
  admin?.close();
  await etcd?.stop();
});

describe('across processes', () => {
  it('mutual exclusion: 3 processes x 200 unsafe read-pause-write increments end exact, with no overlap', async () => {
    const procs = await startWorkers(3);
    const runs = await Promise.all(
      procs.map(w => w.request<CriticalSection[]>({ op: 'counter', key: 'counter', counterKey: `${PREFIX}data/counter`, cycles: 200 })),
    );
    // each process's wall clock differs from ours by up to a millisecond or so: compare on our clock
    const clocks = await Promise.all(procs.map(w => w.clockOffset()));
    const onOurClock = (section: CriticalSection, i: number) => ({ ...section, enter: section.enter - clocks[i].offset, exit: section.exit - clocks[i].offset });
    const slack = 2 * Math.max(...clocks.map(c => c.uncertainty)); // what the offsets cannot tell
    const sections = runs.flatMap((run, i) => run.map(section => onOurClock(section, i))).sort((a, b) => (a.token < b.token ? -1 : 1));
    expect(sections).toHaveLength(600);
    expect(Number(await admin.get(`${PREFIX}data/counter`).string())).toBe(600);
    for (let i = 1; i < sections.length; i++) {
      expect(sections[i].token).toBeGreaterThan(sections[i - 1].token); // unique, increasing fencing tokens
      expect(sections[i].enter).toBeGreaterThanOrEqual(sections[i - 1].exit - slack); // in token order, never overlapping
      expect(sections[i].read).toBe(i); // each section saw every earlier write
    }
    await admin.delete().key(`${PREFIX}data/counter`);
  });

  it('FIFO: processes acquire in the order they queued, with increasing tokens', async () => {
    const procs = await startWorkers(5);
    const [holder, ...waiters] = procs;
    await holder.request({ op: 'acquire', key: 'fifo' });
    const acquired: Promise<{ token: bigint; at: number }>[] = [];
    for (const waiter of waiters) {
      acquired.push(waiter.request({ op: 'acquire', key: 'fifo' }));
      await waiter.waitForEvent(e => e.event === 'waiting');
    }
    await holder.request({ op: 'release', key: 'fifo' });
    const order: { at: number; who: number; token: bigint }[] = [];
    for (let i = 0; i < waiters.length; i++) {
      // each releases only after the next one queued, so the order is the queue's, not chance
      const got = await acquired[i];
      order.push({ ...got, who: i });
      await waiters[i].request({ op: 'release', key: 'fifo' });
    }
    expect([...order].sort((a, b) => a.at - b.at).map(o => o.who)).toEqual([0, 1, 2, 3]);
    for (let i = 1; i < order.length; i++) expect(order[i].token).toBeGreaterThan(order[i - 1].token);
  });

  it('SIGSTOP of the holder past its TTL: a waiter acquires; on SIGCONT the holder stops before more work and spares the new key', async () => {
    const [holder, waiter] = await startWorkers(2);
    // the two processes' wall clocks differ (by ms on a loaded machine): compare on ours
    const [holderClock, waiterClock] = await Promise.all([holder.clockOffset(), waiter.clockOffset()]);
    const held = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'paused' });
    await holder.request({ op: 'work', key: 'paused' }); // checks assertHeld() every 10 ms
    const waiting = waiter.request<{ token: bigint; at: number }>({ op: 'acquire', key: 'paused', waitTimeout: 15_000 });
    await waiter.waitForEvent(e => e.event === 'waiting');
    await holder.signal('SIGSTOP');
    const next = await waiting; // the paused holder's lease expired in etcd
    expect(next.token).toBeGreaterThan(held.token);
    await holder.signal('SIGCONT');
    const stopped = await holder.waitForEvent(e => e.event === 'work-stopped');
    expect(stopped.code).toBe('LOCK_LOST');
    const successorIn = next.at - waiterClock.offset + waiterClock.uncertainty + holderClock.uncertainty; // beyond what the offsets leave unknown
    expect(stopped.passes!.filter(t => t - holderClock.offset >= successorIn)).toEqual([]); // no step of work after the successor got in
    expect(await holder.request({ op: 'probe', key: 'paused' })).toEqual({
      isHeld: false,
      aborted: true,
      reason: 'LOCK_LOST',
      assertError: 'LOCK_LOST',
    });
    expect(holder.events.find(e => e.event === 'lost')).toMatchObject({ key: 'paused', reason: 'session-expired' });
    await holder.request({ op: 'release', key: 'paused' });
    const keys = await admin.getAll().prefix(`${PREFIX}paused/`).keys();
    expect(keys).toHaveLength(1); // the successor's key survived the stale release
    expect(await waiter.request({ op: 'probe', key: 'paused' })).toMatchObject({ isHeld: true });
  });

  it('SIGKILL of the holder: a waiter acquires once the TTL runs out', async () => {
    const [holder, waiter] = await startWorkers(2);
    await holder.request({ op: 'acquire', key: 'killed' });
    const waiting = waiter.request({ op: 'acquire', key: 'killed', waitTimeout: TTL * 1000 + 1_500 });
    await waiter.waitForEvent(e => e.event === 'waiting');
    await holder.signal('SIGKILL');
    await expect(waiting).resolves.toMatchObject({ token: expect.any(BigInt) });
  });

  it('close() in the holder process revokes its lease: a waiter acquires long before the TTL', async () => {
    const [holder, waiter] = await startWorkers(2, 30);
    await holder.request({ op: 'acquire', key: 'closed' });
    const waiting = waiter.request({ op: 'acquire', key: 'closed', waitTimeout: 3_000 }); // TTL is 30 s
    await waiter.waitForEvent(e => e.event === 'waiting');
    await holder.request({ op: 'close' });
    await expect(waiting).resolves.toMatchObject({ token: expect.any(BigInt) });
  });
});

describe('watch trouble', () => {
  it('etcd restarts and compacts while a waiter is paused: the waiter re-reads instead of trusting the resumed watch', async () => {
    if (etcd.members.length === 0) return expect(etcd.source).toBe('env'); // external etcd: not ours to restart
    const [holder, waiter] = await startWorkers(2, 3);
    await holder.request({ op: 'acquire', key: 'restart' });
    const watchers = async () => metric(await etcd.metrics(), 'etcd_debugging_mvcc_watcher_total');
    const before = await watchers();
    const waiting = waiter.request<{ token: bigint }>({ op: 'acquire', key: 'restart', waitTimeout: 10_000 });
    await waiter.waitForEvent(e => e.event === 'waiting');
    while ((await watchers()) < before + 2) await sleep(10); // the waiter's stream anchor and predecessor watch
    await waiter.signal('SIGSTOP'); // it cannot reconnect before the history it watches is compacted
    await etcd.members[0].stop();
    await etcd.members[0].start();
    await holder.request({ op: 'release', key: 'restart' }); // the delete the waiter's old watch would carry
    const { header } = await admin.kv.range({ key: Buffer.from(PREFIX) });
    await admin.kv.compact({ revision: header.revision, physical: true });
    await waiter.signal('SIGCONT');
    await expect(waiting).resolves.toMatchObject({ token: expect.any(BigInt) });
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases in etcd', async () => {
    await Promise.all(workers.map(w => w.stop()));
    const probe = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX });
    await probe.close(); // never opened a session: must not leave one
    await expectEtcdClean(admin, PREFIX);
  });
});
