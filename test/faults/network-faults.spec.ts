// Network faults between a lock client and etcd, through a TCP proxy per worker process
// (test/support/tcp-proxy.ts), each run under the safety checker. The fenced register is
// reached directly: the protected resource stays reachable while the lock's etcd is not.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import { holdAnnounced, holdsSoFar, queueEntries } from '../support/fault-helpers.js';
import { LockWorker } from '../support/lock-worker.js';
import { checkSafety } from '../support/safety-checker.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const PREFIX = 'network-faults/';
let etcd: EtcdHandle;
let admin: Etcd3;
let workers: LockWorker[] = [];
let proxies: TcpProxy[] = [];

/** `count` workers, each talking to etcd through its own proxy. */
async function startProxiedWorkers(count: number, ttl: number): Promise<LockWorker[]> {
  proxies = await Promise.all(Array.from({ length: count }, () => startTcpProxy(etcd.endpoints[0])));
  workers = await Promise.all(proxies.map(p => LockWorker.start([p.url], PREFIX, ttl, etcd.endpoints)));
  return workers;
}

const proxyOf = (worker: LockWorker) => proxies[workers.indexOf(worker)];
const heal = (proxy: TcpProxy) => {
  proxy.setMode('pass');
  proxy.cut(); // connections that lost bytes cannot resume: the client reconnects
};
/** Wall time of the first hold announced by a worker other than `worker` after `after`. */
const nextHoldElsewhere = (worker: LockWorker, after: number) =>
  Math.min(...workers.filter(w => w !== worker).flatMap(w => w.events.filter(e => e.event === 'in-section' && e.at > after).map(e => e.at)));

beforeAll(async () => {
  etcd = await startEtcd();
  admin = createEtcdClient({ hosts: etcd.endpoints });
});

afterEach(async () => {
  for (const p of proxies) heal(p);
  await Promise.all(workers.map(w => w.stop()));
  await Promise.all(proxies.map(p => p.close()));
  workers = [];
  proxies = [];
});

afterAll(async () => {
  admin?.close();
  await etcd?.stop();
});

describe('safety under network faults (a proxy per client)', () => {
  it("blackholed holder (no RST): it declares the lock lost at its local deadline, before a waiter gets it; after healing one holder, the old lease gone", async () => {
    let holder: { worker: LockWorker; token: bigint } | undefined;
    let lostAt = 0;
    let oldLease = '';
    const report = await checkSafety({
      name: 'blackholed holder',
      admin,
      workers: await startProxiedWorkers(3, 1),
      prefix: PREFIX,
      cycles: 2,
      holdMs: 1_500, // longer than the TTL: the holder is still in its hold when its deadline passes
      fault: async () => {
        holder = await holdAnnounced(workers, 2);
        oldLease = (await queueEntries(admin, PREFIX))[0].lease;
        proxyOf(holder.worker).setMode('blackhole');
        lostAt = (await holder.worker.waitForEvent(e => e.event === 'lost' && e.token === holder!.token, 5_000)).at;
        await holdAnnounced(workers, holdsSoFar(workers) + 1, 10_000); // a waiter takes over
        heal(proxyOf(holder.worker));
      },
    });
    expect(holder!.worker.events.find(e => e.event === 'lost' && e.token === holder!.token)?.reason).toBe('session-expired');
    const heldSince = holder!.worker.events.find(e => e.event === 'in-section' && e.token === holder!.token)!.at;
    expect(lostAt).toBeLessThan(nextHoldElsewhere(holder!.worker, heldSince)); // told before anyone else got in
    expect((await admin.leaseClient.leaseLeases()).leases.map(l => l.ID)).not.toContain(oldLease);
    expect(report.acceptedWrites).toBeGreaterThanOrEqual(4);
  });

  it("500 ms on the holder's replies: no false loss, and when it is then cut off its deadline still comes before etcd expires its lease", async () => {
    let holder: { worker: LockWorker; token: bigint } | undefined;
    let leaseTtlAtLoss = -2;
    // TTL 5 s: its margin (0.5 s) leaves this test's own event delivery time to ask etcd
    const started = await startProxiedWorkers(3, 5);
    for (const p of proxies) p.setLatency(500, 'replies');
    const report = await checkSafety({
      name: '500 ms reply latency',
      admin,
      workers: started,
      prefix: PREFIX,
      cycles: 2,
      holdMs: 1_000,
      fault: async () => {
        holder = await holdAnnounced(workers, 3, 20_000);
        const lease = (await queueEntries(admin, PREFIX))[0].lease;
        proxyOf(holder.worker).setMode('blackhole');
        await holder.worker.waitForEvent(e => e.event === 'lost' && e.token === holder!.token, 10_000);
        // -1: etcd has expired the lease; anything else: it still lives on etcd's side
        leaseTtlAtLoss = Number((await admin.leaseClient.leaseTimeToLive({ ID: lease })).TTL);
        heal(proxyOf(holder.worker));
      },
    });
    expect(leaseTtlAtLoss).toBeGreaterThanOrEqual(0);
    // the only loss is the one the blackhole caused: latency alone lost nothing
    const losses = started.flatMap(w => w.events.filter(e => e.event === 'lost').map(e => e.token));
    expect(losses).toEqual([holder!.token]);
    expect(report.acceptedWrites).toBeGreaterThanOrEqual(5);
  }, 120_000); // 35 s in a full run on a 2-core machine: delayed replies and a cut-off under load

  it('replies to a release and to the next enqueue dropped (the requests reach etcd): no duplicate queue key, no leaked lease, no newer holder deleted', async () => {
    const duplicates: string[] = [];
    const faulted: bigint[] = [];
    const report = await checkSafety({
      name: 'dropped replies',
      admin,
      workers: await startProxiedWorkers(3, 2),
      prefix: PREFIX,
      cycles: 5,
      holdMs: 300,
      fault: async () => {
        for (let round = 1; round <= 3; round++) {
          const holder = await holdAnnounced(workers, 3 * round);
          faulted.push(holder.token);
          // from inside the hold, past its release and the holder's next enqueue
          proxyOf(holder.worker).setMode('drop-replies');
          for (let t = 0; t < 9; t++) {
            await sleep(100);
            const pids = (await queueEntries(admin, PREFIX)).map(e => e.pid);
            if (new Set(pids).size !== pids.length) duplicates.push(pids.join(','));
          }
          heal(proxyOf(holder.worker));
        }
      },
    });
    expect(duplicates).toEqual([]);
    // no newer holder's key was deleted: a key-deleted loss may only be a faulted holder's own
    // release, whose retry cannot tell its first (answered-into-the-void) delete from anyone else's
    const keyDeleted = workers.flatMap(w => w.events.filter(e => e.event === 'lost' && e.reason === 'key-deleted').map(e => e.token!));
    expect(keyDeleted.filter(t => !faulted.includes(t))).toEqual([]);
    expect(report.acceptedWrites).toBeGreaterThanOrEqual(10);
  });
});
