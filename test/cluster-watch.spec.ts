// The cluster-wide watch (`watch` option): a process sees other processes' locks come and go
// as `origin: 'remote'` events, each once, through crashes, etcd restarts and compaction.
// Every lock is held by a real worker process (test/workers/lock.worker.ts).
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdLockModule, LockService, OnLockEvent, type LockEvent } from '../lib/index.js';
import { createEtcdClient } from '../lib/backends/etcd/etcd-client.js';
import { expectEtcdClean, metric } from './support/etcd-state.js';
import type { LockWorker, WorkerEvent } from './support/lock-worker.js';
import { useEtcdAndWorkers } from './support/worker-fixture.js';

const PREFIX = 'watch-spec/';
const TTL = 3;
const fixture = useEtcdAndWorkers(PREFIX, TTL, { restartable: true });
let operator: LockService;

beforeAll(() => {
  operator = new LockService({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, ttl: TTL, ownerId: 'operator' });
});

afterAll(async () => {
  await operator?.close();
});

/** A worker with the watch option, watching once this resolves. */
async function startWatcher(watch: true | { prefix: string } = true): Promise<LockWorker> {
  const [watcher] = await fixture.startWorkers(1, watch);
  await watcher.request({ op: 'watching' });
  return watcher;
}

/** The watcher's remote events, as `type key pid token` lines (pid of the process the event is about). */
function remote(watcher: LockWorker, workers: LockWorker[], key?: string): string[] {
  const pidOf = (e: WorkerEvent) => workers.find(w => e.owner?.includes(`:${w.process.pid}:`))?.process.pid ?? e.owner;
  return watcher.events
    .filter(e => e.origin === 'remote' && (key === undefined || e.key === key))
    .map(e => `${e.event} ${e.key} ${pidOf(e)} ${e.token}${e.reason ? ` ${e.reason}` : ''}`);
}

const waitRemote = (watcher: LockWorker, event: string, key: string, timeoutMs?: number) =>
  watcher.waitForEvent(e => e.origin === 'remote' && e.event === event && e.key === key, timeoutMs);

/** Freezes the watcher (SIGSTOP) and restarts etcd: its watch is cut, and it cannot see what happens next. */
async function freezeThroughRestart(watcher: LockWorker): Promise<void> {
  await watcher.signal('SIGSTOP');
  const member = fixture.etcd.members[0];
  await member.stop();
  await member.start();
}

/** Resumes the watcher and waits until it reported `lastKey` acquired, and a little more for any repeat. */
async function thaw(watcher: LockWorker, lastKey: string): Promise<void> {
  await watcher.signal('SIGCONT');
  await waitRemote(watcher, 'acquired', lastKey, 15_000);
  await sleep(500);
}

/** Acquires and returns the token. */
const acquire = async (worker: LockWorker, key: string, options?: { autoRenew: false; ttl: number }) =>
  (await worker.request<{ token: bigint }>({ op: 'acquire', key, options })).token;

/** Remote and local ends of locks, as a Nest app's handlers receive them. */
@Injectable()
class LockMonitor {
  readonly remote: LockEvent[] = [];
  readonly local: LockEvent[] = [];

  @OnLockEvent(['acquired', 'released', 'expired'], { origin: 'remote' })
  onRemote(event: LockEvent): void {
    this.remote.push(event);
  }

  @OnLockEvent(['acquired', 'released'], { origin: 'local' })
  onLocal(event: LockEvent): void {
    this.local.push(event);
  }
}

describe('watch: remote lock events', () => {
  it('reports acquired and released of other processes, each once and in order; not its own locks, nor names outside its prefix', async () => {
    const watcher = await startWatcher();
    const orders = await startWatcher({ prefix: 'order:' });
    const [a, b] = await fixture.startWorkers(2);

    const t1 = await acquire(a, 'order:1');
    const queued = b.request<{ token: bigint }>({ op: 'acquire', key: 'order:1' });
    await b.waitForEvent(e => e.event === 'waiting');
    await a.request({ op: 'release', key: 'order:1' });
    const t2 = (await queued).token;
    await b.request({ op: 'release', key: 'order:1' });
    const t3 = await acquire(a, 'invoice:9');
    await a.request({ op: 'release', key: 'invoice:9' });
    // the watcher's own lock: local events only
    const own = await acquire(watcher, 'order:own');
    await watcher.request({ op: 'release', key: 'order:own' });

    await waitRemote(watcher, 'released', 'invoice:9');
    await waitRemote(orders, 'released', 'order:own');
    await sleep(300); // a repeated event would come by now
    const pa = a.process.pid;
    const pb = b.process.pid;
    const expected = [`acquired order:1 ${pa} ${t1}`, `released order:1 ${pa} ${t1}`, `acquired order:1 ${pb} ${t2}`, `released order:1 ${pb} ${t2}`];
    expect(remote(watcher, [a, b])).toEqual([...expected, `acquired invoice:9 ${pa} ${t3}`, `released invoice:9 ${pa} ${t3}`]);
    // the other watcher sees the first one's lock as remote
    const pw = watcher.process.pid;
    expect(remote(orders, [a, b, watcher])).toEqual([...expected, `acquired order:own ${pw} ${own}`, `released order:own ${pw} ${own}`]);
    expect(watcher.events.filter(e => e.key === 'order:own').map(e => `${e.event} ${e.origin}`)).toEqual(['acquired local', 'released local']);
  });

  it('reports expired when the holder is SIGKILLed or a hard-TTL lock runs out, released on a graceful close, lost on a force-unlock', async () => {
    const watcher = await startWatcher();
    const [killed, hard, closing, forced] = await fixture.startWorkers(4);
    const tokens = {
      killed: await acquire(killed, 'job:killed'),
      hard: await acquire(hard, 'job:hard', { autoRenew: false, ttl: 2 }),
      closing: await acquire(closing, 'job:closing'),
      forced: await acquire(forced, 'job:forced'),
    };
    await waitRemote(watcher, 'acquired', 'job:forced');

    await killed.signal('SIGKILL'); // its lease runs out after TTL
    await closing.request({ op: 'close' }); // releases, then revokes its lease
    expect((await operator.forceUnlock('job:forced')).map(h => h.token)).toEqual([tokens.forced]);

    await waitRemote(watcher, 'expired', 'job:killed', (TTL + 3) * 1000);
    await waitRemote(watcher, 'expired', 'job:hard', 5_000);
    await sleep(300);
    const workers = [killed, hard, closing, forced];
    const ends = (key: string) => remote(watcher, workers, key).slice(1);
    expect(ends('job:killed')).toEqual([`expired job:killed ${killed.process.pid} ${tokens.killed} session-expired`]);
    expect(ends('job:hard')).toEqual([`expired job:hard ${hard.process.pid} ${tokens.hard} ttl-expired`]);
    expect(ends('job:closing')).toEqual([`released job:closing ${closing.process.pid} ${tokens.closing}`]);
    expect(ends('job:forced')).toEqual([`lost job:forced ${forced.process.pid} ${tokens.forced} forced`]);
    // the holder of the hard-TTL lock saw it end too, and nothing was left behind
    await hard.waitForEvent(e => e.event === 'expired' && e.key === 'job:hard');
  });

  it('resumes after etcd restarts, with what happened while it was cut off, without losing or repeating an event', async () => {
    const watcher = await startWatcher();
    const [a, b] = await fixture.startWorkers(2);
    const t1 = await acquire(a, 'report:1');
    await waitRemote(watcher, 'acquired', 'report:1');

    // the watcher cannot read while etcd restarts and the others go on: it must catch up after
    await freezeThroughRestart(watcher);
    const queued = b.request<{ token: bigint }>({ op: 'acquire', key: 'report:1' });
    await b.waitForEvent(e => e.event === 'waiting' && e.key === 'report:1');
    await a.request({ op: 'release', key: 'report:1' });
    const t2 = (await queued).token;
    await b.request({ op: 'release', key: 'report:1' });
    const t3 = await acquire(b, 'report:2');
    await thaw(watcher, 'report:2');
    const [pa, pb] = [a.process.pid, b.process.pid];
    expect(remote(watcher, [a, b])).toEqual([
      `acquired report:1 ${pa} ${t1}`,
      `released report:1 ${pa} ${t1}`,
      `acquired report:1 ${pb} ${t2}`,
      `released report:1 ${pb} ${t2}`,
      `acquired report:2 ${pb} ${t3}`,
    ]);
  });

  it('after etcd compacted the revisions it would resume from, reads the locks afresh and reports the difference once', async () => {
    const watcher = await startWatcher();
    const [a, b] = await fixture.startWorkers(2);
    const t1 = await acquire(a, 'batch:1');
    const t2 = await acquire(a, 'batch:2');
    await waitRemote(watcher, 'acquired', 'batch:2');

    await freezeThroughRestart(watcher);
    await a.request({ op: 'release', key: 'batch:1' });
    const t3 = await acquire(b, 'batch:3');
    // a hold that begins and ends in the compacted revisions: etcd keeps no trace of it
    await acquire(b, 'batch:4');
    await b.request({ op: 'release', key: 'batch:4' });
    const current = (await fixture.admin.get('nothing').exec()).header.revision;
    await fixture.admin.kv.compact({ revision: current, physical: true });
    await thaw(watcher, 'batch:3');
    const [pa, pb] = [a.process.pid, b.process.pid];
    expect(remote(watcher, [a, b])).toEqual([
      `acquired batch:1 ${pa} ${t1}`,
      `acquired batch:2 ${pa} ${t2}`,
      `released batch:1 ${pa} ${t1}`,
      `acquired batch:3 ${pb} ${t3}`,
    ]); // not batch:4: the watch read the locks afresh rather than replaying revisions (it could not: they were compacted)
  });

  it('reaches @OnLockEvent handlers with origin remote in a Nest app (forRoot({ watch }))', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [EtcdLockModule.forRoot({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, ttl: TTL, watch: { prefix: 'nest:' } })],
      providers: [LockMonitor],
    }).compile();
    const app = await moduleRef.init(); // watching once init resolves
    try {
      const monitor = app.get(LockMonitor);
      const [worker] = await fixture.startWorkers(1);
      const token = await acquire(worker, 'nest:1');
      await worker.signal('SIGKILL');
      await (await app.get(LockService).acquire('nest:2')).release();
      const until = Date.now() + (TTL + 3) * 1000;
      while (monitor.remote.length < 2 && Date.now() < until) await sleep(50);
      await sleep(300);
      expect(monitor.remote.map(e => [e.type, e.key, e.token, e.reason])).toEqual([
        ['acquired', 'nest:1', token, undefined],
        ['expired', 'nest:1', token, 'session-expired'],
      ]);
      expect(monitor.remote[1].owner).toContain(`:${worker.process.pid}:`);
      expect(monitor.local.map(e => [e.type, e.key])).toEqual([
        ['acquired', 'nest:2'],
        ['released', 'nest:2'],
      ]);
    } finally {
      await app.close();
    }
  });

  it('a service closed while its watch starts leaves no watch behind on a client it was given', async () => {
    const client = createEtcdClient({ hosts: fixture.etcd.endpoints });
    const watchers = async () => metric(await fixture.etcd.metrics(), 'etcd_debugging_mvcc_watcher_total');
    try {
      const before = await watchers();
      const service = new LockService({ client, prefix: PREFIX, watch: true }); // reads the prefix now
      await service.close(); // before that read answers
      await sleep(300);
      expect(await watchers()).toBe(before);
    } finally {
      client.close();
    }
  });

  it('leaves etcd clean', async () => {
    await fixture.stopWorkers();
    await operator.close();
    await expectEtcdClean(fixture.admin, PREFIX, (TTL + 2) * 1000);
  });
});
