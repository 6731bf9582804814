// Locks shared with every client of etcd's own lock recipe (keys `<name>/<lease hex>`, the
// lowest create revision holds): `etcdctl lock` as real child processes, and etcd's Lock
// service through its JSON gateway. Both directions, every lock kind, one FIFO queue.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstValueFrom, filter, type Observable } from 'rxjs';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import { LockConfigurationError, LockService, type LockEvent, type LockHandle } from '../../lib/index.js';
import { EtcdctlLock, GatewayLock } from '../support/etcdctl.js';
import { runCli } from '../support/run-cli.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import type { Etcd3 } from 'etcd3';

const PREFIX = 'interop/';
let etcd: EtcdHandle;
let admin: Etcd3;
const services: LockService[] = [];
const foreign: EtcdctlLock[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  admin = createEtcdClient({ hosts: etcd.endpoints });
});

afterEach(async () => {
  await Promise.all(foreign.splice(0).map(f => f.stop()));
  await Promise.all(services.splice(0).map(s => s.close()));
});

afterAll(async () => {
  admin?.close();
  await etcd?.stop();
});

/** A LockService of ours on the shared prefix (closed after the test). */
function service(ownerId: string, watch = false): LockService {
  const locks = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 2, ownerId, ...(watch && { watch: true }) });
  services.push(locks);
  return locks;
}

/** `etcdctl lock <prefix><name>`: the same lock as our `name` (stopped after the test). */
function etcdctl(name: string): EtcdctlLock {
  const lock = EtcdctlLock.start(etcd.endpoints, `${PREFIX}${name}`);
  foreign.push(lock);
  return lock;
}

/** Resolves once `locks` has queued an acquire of `key` behind a holder. */
function waiting(locks: LockService, key: string): Promise<LockEvent> {
  return firstValueFrom((locks.events$ as Observable<LockEvent>).pipe(filter(e => e.type === 'waiting' && e.key === key)));
}

/** Resolves once `count` keys are queued for `name` (ours or a foreign client's). */
async function queued(name: string, count: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await admin.getAll().prefix(`${PREFIX}${name}/`).keys()).length >= count) return;
    await sleep(25);
  }
  throw new Error(`${count} keys never queued for ${name}`);
}

const createRevision = async (key: string) => BigInt((await admin.get(key).exec()).kvs[0].create_revision);

describe('our locks and etcd\'s lock recipe exclude each other', () => {
  it('exclusive, their hold: our acquire waits behind etcdctl, sees it as a foreign holder, and gets the lock once it releases, with a higher token', async () => {
    const locks = service('ours');
    const theirs = etcdctl('order:1');
    const { key } = await theirs.acquired;
    const info = await locks.getLockInfo('order:1');
    expect(info?.holder).toMatchObject({ etcdKey: key, foreign: true, owner: '(another etcd client)', token: await createRevision(key) });
    const shown = await runCli(['info', 'order:1'], { ETCDCTL_ENDPOINTS: etcd.endpoints.join(','), NESTJS_ETCD_LOCK_PREFIX: PREFIX });
    expect(shown.stdout).toMatch(new RegExp(`^holder\\s+\\(another etcd client\\)\\s+0\\s+${info!.holder!.token}\\s+exclusive\\s+held \\?`, 'm'));

    const queuedUp = waiting(locks, 'order:1');
    const ours = locks.acquire('order:1');
    await queuedUp;
    await sleep(300); // time enough to take a lock it should not
    expect(theirs.holding).toBe(true);
    await theirs.release();
    const lock = await ours;
    expect(theirs.holding).toBe(false);
    expect(lock.token).toBeGreaterThan(info!.holder!.token);
    await lock.release();
  });

  it('exclusive, our hold: etcdctl waits behind our key until we release', async () => {
    const locks = service('ours');
    const lock = await locks.acquire('order:2');
    const theirs = etcdctl('order:2');
    await queued('order:2', 2);
    await sleep(300);
    expect(theirs.holding).toBe(false);
    expect((await locks.getLockInfo('order:2'))?.waiters).toEqual([expect.objectContaining({ foreign: true })]);
    const releasedAt = Date.now();
    await lock.release();
    const { key, at } = await theirs.acquired;
    expect(at).toBeGreaterThanOrEqual(releasedAt);
    expect(await createRevision(key)).toBeGreaterThan(lock.token);
    await theirs.release();
  });

  it('shared: our readers wait behind etcdctl and then hold together; etcdctl waits for every reader', async () => {
    const [r1, r2] = [service('reader-1'), service('reader-2')];
    const theirs = etcdctl('doc:1');
    await theirs.acquired;
    const bothQueued = Promise.all([waiting(r1, 'doc:1'), waiting(r2, 'doc:1')]);
    const reads = [r1.acquire('doc:1', { mode: 'shared' }), r2.acquire('doc:1', { mode: 'shared' })];
    await bothQueued;
    await sleep(300);
    await theirs.release();
    const [read1, read2] = await Promise.all(reads);

    const next = etcdctl('doc:1');
    await queued('doc:1', 3);
    await read1.release();
    await sleep(300);
    expect(next.holding).toBe(false); // one reader still in
    await read2.release();
    await next.acquired;
    await next.release();
  });

  it('semaphore: one refuses to queue behind etcdctl (a kind conflict, nothing left queued); etcdctl waits for every holder of ours', async () => {
    const [s1, s2] = [service('sem-1'), service('sem-2')];
    const theirs = etcdctl('pool:1');
    await theirs.acquired;
    await expect(s1.acquire('pool:1', { limit: 2 })).rejects.toBeInstanceOf(LockConfigurationError);
    expect(await admin.getAll().prefix(`${PREFIX}pool:1/`).keys()).toHaveLength(1); // theirs only
    await theirs.release();

    const held = [await s1.acquire('pool:1', { limit: 2 }), await s2.acquire('pool:1', { limit: 2 })];
    const next = etcdctl('pool:1');
    await queued('pool:1', 3);
    await held[0].release();
    await sleep(300);
    expect(next.holding).toBe(false);
    await held[1].release();
    await next.acquired;
    await next.release();
  });

  it('unfair (fair: false): ours waits outside the queue while etcdctl holds, and takes the lock once it is free', async () => {
    const locks = service('ours');
    const theirs = etcdctl('order:3');
    await theirs.acquired;
    const queuedUp = waiting(locks, 'order:3');
    const ours = locks.acquire('order:3', { fair: false });
    await queuedUp;
    await sleep(300);
    await theirs.release();
    const lock = await ours;
    expect(theirs.holding).toBe(false);
    await lock.release();
  });

  it('one FIFO queue: our waiters and etcdctl\'s get the lock in the order they queued', async () => {
    const [holder, ours] = [service('holder'), service('waiter')];
    const first = await holder.acquire('queue:1');
    const a = etcdctl('queue:1');
    await queued('queue:1', 2);
    const oursQueued = waiting(ours, 'queue:1');
    const b = ours.acquire('queue:1');
    await oursQueued;
    const c = etcdctl('queue:1');
    await queued('queue:1', 4);

    const order: string[] = [];
    void a.acquired.then(() => order.push('etcdctl A'));
    void b.then(() => order.push('ours B'));
    void c.acquired.then(() => order.push('etcdctl C'));
    await first.release();
    await a.acquired;
    await sleep(200);
    await a.release();
    const lockB = await b;
    await sleep(200);
    expect(c.holding).toBe(false);
    await lockB.release();
    await c.acquired;
    expect(order).toEqual(['etcdctl A', 'ours B', 'etcdctl C']);
    await c.release();
  });

  it('a name with "/" or "%": the recipe\'s name is our prefix plus the encoded name ("/" as %2F, "%" as %25)', async () => {
    const locks = service('ours');
    const theirs = etcdctl('tenant%252Forder%2F7'); // our name "tenant%2Forder/7"
    await theirs.acquired;
    expect((await locks.getLockInfo('tenant%2Forder/7'))?.holder?.foreign).toBe(true);
    expect(await locks.tryAcquire('tenant%2Forder/7')).toBeNull();
    await theirs.release();
    const lock = await locks.tryAcquire('tenant%2Forder/7');
    expect(lock).not.toBeNull();
    await lock!.release();
  });
});

describe("etcd's Lock service (v3lock), through the JSON gateway", () => {
  it('excludes our locks both ways: its lock blocks until our release, ours waits until its unlock', async () => {
    const gateway = new GatewayLock(etcd.endpoints[0]);
    const locks = service('ours');
    const lease = await gateway.grantLease(10);
    const lock = await locks.acquire('invoice:1');
    let theirsHeld = false;
    const theirs = gateway.lock(`${PREFIX}invoice:1`, lease).then(key => ((theirsHeld = true), key));
    await queued('invoice:1', 2);
    await sleep(300);
    expect(theirsHeld).toBe(false);
    await lock.release();
    const key = await theirs;

    const queuedUp = waiting(locks, 'invoice:1');
    const ours = locks.acquire('invoice:1');
    await queuedUp;
    await gateway.unlock(key);
    await (await ours).release();
    await gateway.revokeLease(lease);
  });

  it('a foreign holder whose lease expires: shown as foreign, our waiter gets the lock, the watch reports it', async () => {
    const gateway = new GatewayLock(etcd.endpoints[0]);
    const watcher = service('watcher', true);
    await watcher.onModuleInit();
    const seen: LockEvent[] = [];
    watcher.events$.subscribe(e => e.origin === 'remote' && e.key === 'report:1' && seen.push(e));
    const key = await gateway.lock(`${PREFIX}report:1`, await gateway.grantLease(1)); // never kept alive
    const listed = await watcher.listLocks('report:');
    expect(listed.map(l => [l.key, l.holder?.foreign, l.holder?.etcdKey])).toEqual([['report:1', true, key]]);

    const ours = service('ours');
    const lock = await ours.acquire('report:1', { waitTimeout: 10_000 });
    expect(lock.token).toBeGreaterThan(await createRevision(key).catch(() => 0n));
    await lock.release();
    const foreignEvents = seen.filter(e => e.owner !== 'ours').map(e => e.type);
    expect(foreignEvents).toEqual(['acquired', 'released']); // etcd's watch cannot tell a foreign key's expiry from its deletion
  });
});

describe('foreign keys are never a crash', () => {
  it('forceUnlock removes a foreign holder: our waiter gets in, the watch reports it forced; etcdctl\'s late unlock touches nothing of ours', async () => {
    const watcher = service('watcher', true);
    await watcher.onModuleInit();
    const forced = firstValueFrom(watcher.events$.pipe(filter(e => e.type === 'lost' && e.key === 'stuck:1')));
    const theirs = etcdctl('stuck:1');
    const { key } = await theirs.acquired;
    const ours = service('ours');
    const queuedUp = waiting(ours, 'stuck:1');
    const next = ours.acquire('stuck:1');
    await queuedUp;
    const removed = await service('operator').forceUnlock('stuck:1');
    expect(removed.map(h => [h.etcdKey, h.foreign])).toEqual([[key, true]]);
    const lock = await next;
    expect(await forced).toMatchObject({ origin: 'remote', reason: 'forced', token: await Promise.resolve(removed[0].token) });
    await theirs.release(); // deletes its own key, long gone
    expect(lock.signal.aborted).toBe(false);
    expect(await ours.getLockInfo('stuck:1')).toMatchObject({ holder: { token: lock.token } });
    await lock.release();
  });

  it('keys another tool wrote under the prefix: one in a queue holds it as an exclusive holder; others are ignored; nothing throws', async () => {
    await admin.put(`${PREFIX}batch:1/written-by-hand`).value('ops');
    await admin.put(`${PREFIX}no-slash-at-all`).value('x');
    await admin.put(`${PREFIX}batch:1%u/odd-room-key`).value('');
    const locks = service('ours', true);
    await locks.onModuleInit();
    expect(await locks.getLockInfo('batch:1')).toMatchObject({ holder: { owner: 'ops', foreign: true } });
    expect((await locks.listLocks()).map(l => l.key)).toEqual(['batch:1']);
    expect(await locks.tryAcquire('batch:1')).toBeNull();
    expect(await locks.tryAcquire('batch:1', { mode: 'shared' })).toBeNull();
    const waiter = locks.acquire('batch:1', { waitTimeout: 5_000 });
    await sleep(200);
    await admin.delete().key(`${PREFIX}batch:1/written-by-hand`);
    const lock: LockHandle = await waiter;
    await lock.release();
    await admin.delete().prefix(PREFIX);
  });
});

describe('cleanup', () => {
  it('leaves no key and no lease', async () => {
    await expectEtcdClean(admin, PREFIX);
  });
});
