// The lock against a real 3-member etcd cluster on loopback (harness startEtcdCluster).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdHandle } from '../harness/etcd.js';
import { LockService, type LockEvent } from '../lib/index.js';
import { expectEtcdClean } from './support/etcd-state.js';

const PREFIX = 'cluster-spec/';
let cluster: EtcdHandle;
let admin: Etcd3;

beforeAll(async () => {
  cluster = await startEtcdCluster(3);
  admin = new Etcd3({ hosts: cluster.endpoints });
});

afterAll(async () => {
  admin?.close();
  await cluster?.stop();
});

describe('3-member cluster', () => {
  it('hands one lock between services pinned to different members, in queue order', async () => {
    expect(cluster.members).toHaveLength(3);
    // each service talks to one member only, so the handoff crosses members through raft
    const [a, b, c] = cluster.members.map(m => new LockService({ etcd: { hosts: m.clientUrl }, prefix: PREFIX, ttl: 1 }));
    try {
      const order: string[] = [];
      const waiting = (service: LockService) =>
        new Promise<void>(resolve => service.events$.subscribe((e: LockEvent) => e.type === 'waiting' && resolve()));
      const first = await a.acquire('shared');
      const bGot = b.withLock('shared', lock => order.push(`b:${lock.token}`));
      await waiting(b);
      const cGot = c.withLock('shared', lock => order.push(`c:${lock.token}`));
      await waiting(c);
      expect(await c.tryAcquire('shared')).toBeNull();
      order.push(`a:${first.token}`);
      await first.release();
      await Promise.all([bGot, cGot]);
      expect(order.map(o => o[0])).toEqual(['a', 'b', 'c']);
      const tokens = order.map(o => BigInt(o.slice(2)));
      expect(tokens[1]).toBeGreaterThan(tokens[0]);
      expect(tokens[2]).toBeGreaterThan(tokens[1]);
    } finally {
      await Promise.all([a, b, c].map(s => s.close()));
    }
    await expectEtcdClean(admin, PREFIX);
  });
});
