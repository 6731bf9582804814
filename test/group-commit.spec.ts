// Group commit on a real etcd: concurrent enqueues and releases of one process's locks go out
// as one Txn of nested Txns while another is in flight; a lone one goes out by itself; two
// entries of one lock never share a batch (their tokens would tie); a busy lock in a batch
// does not fail the others.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { metric } from '../harness/etcd-metrics.js';
import { LockService, type LockHandle } from '../lib/index.js';
import { expectEtcdClean } from './support/etcd-state.js';

const PREFIX = 'group-commit/';
let etcd: EtcdHandle;
let admin: Etcd3;
let locks: LockService;

const txns = async () => metric(await etcd.metrics(), 'grpc_server_handled_total', { grpc_method: 'Txn' });

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
  locks = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 5 });
  await (await locks.acquire('warm-up')).release(); // the session and its streams, once
}, 60_000);

afterAll(async () => {
  await locks?.close();
  try {
    await expectEtcdClean(admin, PREFIX);
  } finally {
    admin?.close();
    await etcd?.stop();
  }
});

describe('group commit (etcd)', () => {
  it('64 concurrent acquires of distinct locks take far fewer Txns than 64, and so do their releases', async () => {
    const before = await txns();
    const held = await Promise.all(Array.from({ length: 64 }, (_, i) => locks.acquire(`distinct:${i}`)));
    const afterAcquire = await txns();
    await Promise.all(held.map(lock => lock.release()));
    const afterRelease = await txns();
    // one alone, then batches while one is in flight: a handful of Txns, not 64 each way
    expect(afterAcquire - before).toBeLessThan(16);
    expect(afterRelease - afterAcquire).toBeLessThan(16);
    expect(held.every(lock => lock.token > 0n)).toBe(true);
    for (const lock of held) expect(lock.isHeld).toBe(false);
  });

  it('loops that release as soon as they acquire keep sharing batches: 8 loops x 30 cycles take about 2 Txns per 8 cycles', async () => {
    const before = await txns();
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        for (let c = 0; c < 30; c++) await (await locks.acquire(`loop:${i}`)).release();
      }),
    );
    const perCycle = ((await txns()) - before) / 240;
    // a batch goes out once its answers' callers have sent what they send next (the releases,
    // then the next acquires): all 8 loops share each batch. Sent as soon as the answer came,
    // a batch would leave most callers for the next one (0.5 Txn per cycle)
    expect(perCycle).toBeLessThan(0.35);
  });

  it('a lone acquire + release is still 2 Txns', async () => {
    const before = await txns();
    await (await locks.acquire('alone')).release();
    expect((await txns()) - before).toBe(2);
  });

  it('entries of one lock never share a batch: 20 concurrent acquires of one lock get 20 distinct, FIFO tokens', async () => {
    const order: bigint[] = [];
    const runs = Array.from({ length: 20 }, () =>
      locks.withLock('same', lock => void order.push(lock.token), { reentrant: false }).catch((err: unknown) => err),
    );
    // the 20 calls share one async context here, so each must queue as its own entry (no reentrancy)
    const results = await Promise.all(runs);
    expect(results.filter(r => r instanceof Error)).toEqual([]);
    expect(new Set(order).size).toBe(20);
    expect([...order].sort((a, b) => (a < b ? -1 : 1))).toEqual(order); // granted in token order
  });

  it('a busy lock in a batch fails only its own try: the others in the batch are taken', async () => {
    const other = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 5 });
    try {
      const busy = await other.acquire('tried:busy');
      const tries = await Promise.all(['tried:busy', ...Array.from({ length: 15 }, (_, i) => `tried:${i}`)].map(key => locks.tryAcquire(key)));
      expect(tries[0]).toBeNull();
      expect(tries.slice(1).every(lock => lock !== null)).toBe(true);
      await Promise.all(tries.slice(1).map(lock => (lock as LockHandle).release()));
      await busy.release();
    } finally {
      await other.close();
    }
  });

  it('an etcd that allows fewer operations per Txn refuses a big batch once; the acquires go through in smaller ones', async () => {
    const small = await startEtcd({ args: ['--max-txn-ops', '8'] });
    const service = new LockService({ etcd: { hosts: small.endpoints }, prefix: PREFIX, ttl: 5 });
    try {
      await (await service.acquire('warm-up')).release();
      const held = await Promise.all(Array.from({ length: 40 }, (_, i) => service.acquire(`small:${i}`)));
      expect(held.every(lock => lock.isHeld)).toBe(true);
      await Promise.all(held.map(lock => lock.release()));
    } finally {
      await service.close();
      const client = new Etcd3({ hosts: small.endpoints });
      await expectEtcdClean(client, PREFIX).finally(() => client.close());
      await small.stop();
    }
  }, 60_000);
});
