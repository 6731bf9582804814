// Faults of a 3-member etcd cluster on loopback (fast raft timings), each run under the
// safety checker: the leader killed while locks are held and waited for, and a rolling
// restart of every member under load. Clients know all three members.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcdCluster, type EtcdHandle, type EtcdMember } from '../../harness/etcd.js';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import { holdAnnounced } from '../support/fault-helpers.js';
import { LockWorker } from '../support/lock-worker.js';
import { checkSafety } from '../support/safety-checker.js';

const PREFIX = 'cluster-faults/';
const TTL = 2; // seconds: room for a client to fail over to another member
let cluster: EtcdHandle;
let admin: Etcd3;
let workers: LockWorker[] = [];

async function startWorkers(count: number): Promise<LockWorker[]> {
  workers = await Promise.all(Array.from({ length: count }, () => LockWorker.start(cluster.endpoints, PREFIX, TTL)));
  return workers;
}

/** The member that leads now, asked of each running member in turn. */
async function leader(): Promise<EtcdMember> {
  for (let attempt = 0; attempt < 50; attempt++) {
    for (const member of cluster.members) {
      const client = new Etcd3({ hosts: member.clientUrl, defaultCallOptions: () => ({ deadline: Date.now() + 500 }) });
      try {
        const status = await client.maintenance.status();
        if (status.leader === status.header.member_id) return member;
      } catch {
        // stopped or not answering: ask the next one
      } finally {
        client.close();
      }
    }
    await sleep(50);
  }
  throw new Error('no member says it leads the cluster');
}

beforeAll(async () => {
  cluster = await startEtcdCluster(3);
  admin = createEtcdClient({ hosts: cluster.endpoints });
});

afterEach(async () => {
  await Promise.all(workers.map(w => w.stop()));
  workers = [];
});

afterAll(async () => {
  admin?.close();
  await cluster?.stop();
});

describe('safety under cluster faults (3 members)', () => {
  it('the leader killed (SIGKILL) while the lock is held and waited for, then restarted', async () => {
    let killed: EtcdMember | undefined;
    const report = await checkSafety({
      name: 'leader killed',
      admin,
      workers: await startWorkers(4),
      prefix: PREFIX,
      cycles: 15,
      holdMs: 50,
      fault: async () => {
        await holdAnnounced(workers, 5);
        killed = await leader();
        await killed.kill();
        await holdAnnounced(workers, 15, 20_000); // the survivors elect a leader; the lock moves on
        await killed.start();
      },
    });
    expect(killed).toBeDefined();
    expect(report.acceptedWrites).toBeGreaterThanOrEqual(40);
  });

  it('a rolling restart of all three members under load: 6 processes x 100 holds', async () => {
    let restarted = 0;
    const window = { from: 0, to: 0 };
    const wall = () => performance.timeOrigin + performance.now();
    const report = await checkSafety({
      name: 'rolling restart',
      admin,
      workers: await startWorkers(6),
      prefix: PREFIX,
      cycles: 100,
      holdMs: 1,
      timeoutMs: 100_000,
      fault: async () => {
        await holdAnnounced(workers, 30);
        window.from = wall();
        for (const member of cluster.members) {
          await member.stop();
          await sleep(300);
          await member.start();
          restarted++;
          await sleep(300);
        }
        window.to = wall();
      },
    });
    expect(restarted).toBe(3);
    // the lock kept moving while members went down and came back
    const during = workers.flatMap(w => w.events).filter(e => e.event === 'in-section' && e.at > window.from && e.at < window.to);
    expect(during.length).toBeGreaterThan(10);
    expect(report.acceptedWrites).toBeGreaterThanOrEqual(500);
  }, 120_000);
});
