// Fault scenarios on one etcd member, each run under the safety checker (test/support/
// safety-checker.ts): worker processes loop on one lock and a fenced register while a holder
// is paused, a waiter is killed, etcd compacts or etcd itself is stopped past the TTL.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcdCluster, type EtcdHandle } from '../../harness/etcd.js';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import { LockService } from '../../lib/index.js';
import { expectEtcdClean, lockKeys, metric } from '../support/etcd-state.js';
import { rejection } from '../support/rejection.js';
import { LockWorker } from '../support/lock-worker.js';
import { checkSafety } from '../support/safety-checker.js';
import { holdAnnounced, holdsSoFar, queueOwners } from '../support/fault-helpers.js';

const PREFIX = 'process-faults/';
const TTL = 1; // seconds (fast raft timings)
let etcd: EtcdHandle;
let admin: Etcd3;
let workers: LockWorker[] = [];

async function startWorkers(count: number): Promise<LockWorker[]> {
  workers = await Promise.all(Array.from({ length: count }, () => LockWorker.start(etcd.endpoints, PREFIX, TTL)));
  return workers;
}

beforeAll(async () => {
  etcd = await startEtcdCluster(1); // a member the tests can stop and start
  admin = createEtcdClient({ hosts: etcd.endpoints });
});

afterEach(async () => {
  for (const w of workers) w.process.kill('SIGCONT');
  await Promise.all(workers.map(w => w.stop()));
  workers = [];
});

afterAll(async () => {
  admin?.close();
  await etcd?.stop();
});

describe('safety under process and etcd faults (one member)', () => {
  it('no fault: 4 processes x 40 holds, every write accepted, none rejected', async () => {
    const report = await checkSafety({ name: 'no fault', admin, workers: await startWorkers(4), prefix: PREFIX, cycles: 40 });
    expect(report.acceptedWrites).toBe(160);
    expect(report.rejectedStale).toBe(0);
  });

  it('a holder paused (SIGSTOP) past its TTL: a waiter takes over; resumed, its write is refused, its signal aborted, its release spares the new holder', async () => {
    const [w0, w1, w2] = await startWorkers(3);
    let paused: { worker: LockWorker; token: bigint } | undefined;
    const report = await checkSafety({
      name: 'SIGSTOP holder',
      admin,
      workers: [w0, w1, w2],
      prefix: PREFIX,
      cycles: 12,
      holdMs: 150, // the pause lands inside the hold, between entry and write
      fault: async () => {
        paused = await holdAnnounced(workers, 5);
        paused.worker.process.kill('SIGSTOP');
        // another process gets in once the paused one's lease expires on etcd's side
        const holds = holdsSoFar(workers);
        await holdAnnounced(workers, holds + 1, 10_000);
        await sleep(300);
        paused.worker.process.kill('SIGCONT');
      },
    });
    expect(paused).toBeDefined();
    const lost = paused!.worker.events.find(e => e.event === 'lost' && e.token === paused!.token);
    expect(lost?.reason).toBe('session-expired');
    expect(report.rejectedStale).toBeGreaterThanOrEqual(1);
    expect(report.acceptedWrites).toBeGreaterThan(0);
  });

  it('a waiter killed (SIGKILL) in the middle of the queue: the one behind it does not acquire early', async () => {
    const started = await startWorkers(4);
    let killedPid: number | undefined;
    const report = await checkSafety({
      name: 'SIGKILL middle waiter',
      admin,
      workers: started,
      prefix: PREFIX,
      cycles: 8,
      holdMs: 200, // the queue (holder + 3 waiters) stands still long enough to read it and kill
      fault: async () => {
        await holdAnnounced(workers, 4);
        // holder and three waiters (the last releaser may still be re-queueing)
        let queue = await queueOwners(admin, PREFIX);
        for (let i = 0; i < 100 && queue.length < 4; i++) queue = await sleep(10).then(() => queueOwners(admin, PREFIX));
        expect(queue.length).toBe(4);
        killedPid = queue[2];
        await workers.find(w => w.process.pid === killedPid)!.signal('SIGKILL');
      },
    });
    expect(killedPid).toBeDefined();
    expect(report.killed).toBe(1);
  });
});

describe('etcd compacts and restarts', () => {
  it('compaction to the current revision while waiters are queued: no waiter hangs', async () => {
    let compactions = 0;
    const done = { value: false };
    const report = await checkSafety({
      name: 'compaction',
      admin,
      workers: await startWorkers(4),
      prefix: PREFIX,
      cycles: 10,
      timeoutMs: 30_000,
      holdMs: 120, // held locks start their holder watch (100 ms) from a revision compaction removes
      fault: async () => {
        while (!done.value && compactions < 40) {
          await sleep(50);
          const revision = (await admin.kv.range({ key: Buffer.from('any'), limit: 1 })).header.revision;
          // refused when nothing was written since the last compaction: count only real ones
          if (await admin.kv.compact({ revision }).then(() => true, () => false)) compactions++;
          if (holdsSoFar(workers) >= 40) done.value = true;
        }
      },
    });
    expect(compactions).toBeGreaterThan(3);
    expect(report.acceptedWrites).toBe(40);
  });

  it('etcd stopped longer than the TTL: holders report loss, the re-extended leases are revoked on reconnect, acquires work again', async () => {
    const member = etcd.members[0];
    const started = await startWorkers(3);
    let oldLeases: string[] = [];
    let revokedAfterRestart = 0;
    let holder: { worker: LockWorker; token: bigint } | undefined;
    let restartedAt = Infinity;
    let killedAt = 0;
    const report = await checkSafety({
      name: 'etcd stopped past the TTL',
      admin,
      workers: started,
      prefix: PREFIX,
      cycles: 2,
      holdMs: 2_000, // twice the TTL: the holder is still in its hold when its deadline passes
      expectedFailures: ['LOCK_LOST', 'ETCD_UNAVAILABLE', 'LOCK_TIMEOUT'],
      fault: async () => {
        holder = await holdAnnounced(workers, 2);
        oldLeases = (await admin.leaseClient.leaseLeases()).leases.map(l => l.ID);
        killedAt = performance.timeOrigin + performance.now();
        await member.kill(); // at once, inside the hold (a graceful stop can outlast it)
        await sleep(TTL * 1000 * 2.5);
        await member.start();
        restartedAt = performance.timeOrigin + performance.now(); // a restarted etcd gives every lease a fresh TTL
        // the sessions declared lost revoke their old leases once etcd answers
        for (let i = 0; i < 100 && (await admin.leaseClient.leaseLeases()).leases.some(l => oldLeases.includes(l.ID)); i++) await sleep(20);
        revokedAfterRestart = await metric(await etcd.metrics(), 'grpc_server_handled_total', { grpc_method: 'LeaseRevoke', grpc_code: 'OK' });
      },
    });
    expect(oldLeases.length).toBe(3);
    expect(revokedAfterRestart).toBeGreaterThanOrEqual(oldLeases.length); // revoked, not left to expire
    const seen = holder!.worker.events.map(e => `${e.event} ${e.token ?? ''} ${e.reason ?? ''} at ${(e.at - killedAt).toFixed(0)} ms`);
    const lost = holder!.worker.events.find(e => e.event === 'lost' && e.token === holder!.token)?.reason;
    if (lost !== 'session-expired') console.error(`holder ${holder!.token}, its worker's events since etcd was killed:\n${seen.join('\n')}`);
    expect(lost).toBe('session-expired');
    // acquires work again after the restart
    expect(started.flatMap(w => w.events).filter(e => e.event === 'in-section' && e.at > restartedAt).length).toBeGreaterThan(0);
    expect(report.acceptedWrites).toBeGreaterThan(2);
  });
});

describe('transient etcd errors while acquiring', () => {
  const newService = (ttl = 3) => new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl });

  it('etcd stopped briefly during an acquire: it succeeds once etcd is back, within its waitTimeout, with one queue key', async () => {
    const member = etcd.members[0];
    const warm = newService(); // its session is open: its enqueue is what retries
    const cold = newService(); // no session yet: opening it is what retries
    try {
      await (await warm.acquire('warm-up')).release();
      await member.kill();
      const acquiring = [warm.acquire('transient-a', { waitTimeout: 10_000 }), cold.acquire('transient-b', { waitTimeout: 10_000 })];
      await sleep(500);
      await member.start();
      const [a, b] = await Promise.all(acquiring);
      expect(a.isHeld && b.isHeld).toBe(true);
      // exactly one key each, though their first tries failed
      expect(await lockKeys(admin, PREFIX)).toHaveLength(2);
      await Promise.all([a.release(), b.release()]);
    } finally {
      await Promise.all([warm.close(), cold.close()]);
    }
    await expectEtcdClean(admin, PREFIX);
  });

  it('startup while etcd is still starting: the session opens once etcd is up, within connectTimeout, with one lease', async () => {
    const member = etcd.members[0];
    await member.kill();
    const service = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 3, connectTimeout: 10_000 });
    try {
      const starting = service.onModuleInit(); // what Nest awaits at bootstrap
      await sleep(700); // its first grants fail: nothing listens yet
      await member.start();
      await starting;
      await (await service.acquire('after-start')).release();
      // the grant was retried with one lease id: a try whose answer was lost cannot leave a second lease
      expect((await admin.leaseClient.leaseLeases()).leases).toHaveLength(1);
    } finally {
      await service.close();
    }
    await expectEtcdClean(admin, PREFIX);
  });

  it('etcd down for the whole waitTimeout: ETCD_UNAVAILABLE when the time runs out; with retry: false, at the first failure', async () => {
    const member = etcd.members[0];
    const service = newService();
    try {
      await (await service.acquire('warm-up')).release();
      await member.kill();
      const startedAt = performance.now();
      const retried = await rejection(service.acquire('down', { waitTimeout: 1_500 }));
      const retriedMs = performance.now() - startedAt;
      const once = await rejection(service.acquire('down', { waitTimeout: 1_500, retry: false }));
      expect(retried).toMatchObject({ code: 'ETCD_UNAVAILABLE' });
      expect(once).toMatchObject({ code: 'ETCD_UNAVAILABLE' });
      expect(retriedMs).toBeGreaterThanOrEqual(1_400); // it kept trying until its waitTimeout
    } finally {
      await member.start();
      await service.close();
    }
    // the admin client reconnects on a call after its connection broke: let it
    for (let i = 0; i < 50 && !(await admin.get('any').then(() => true, () => false)); i++) await sleep(50);
    await expectEtcdClean(admin, PREFIX);
  });
});
