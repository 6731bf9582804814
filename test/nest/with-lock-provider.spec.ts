// @WithLock on methods of plain providers: the explorer wraps them at bootstrap (Nest
// interceptors never run on provider methods). A real Nest app, a real etcd, and two app
// instances in two OS processes (test/workers/nest-app.worker.ts) sharing that etcd.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import type { Subscription } from 'rxjs';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import {
  EtcdLockModule,
  InvalidLockKeyError,
  LockConfigurationError,
  LockLostError,
  LockService,
  WithLock,
  type LockContention,
  type LockEvent,
  type LockEventType,
} from '../../lib/index.js';
import { Ledger, PaymentsService, ordersModule, type Span } from '../fixtures/orders.app.js';
import { expectEtcdClean, lockKeys } from '../support/etcd-state.js';
import { NestAppProcess } from '../support/nest-app-process.js';
import { EventList } from '../support/event-list.js';

const PREFIX = 'provider-spec/';
const DATA = 'provider-spec-data/';
let etcd: EtcdHandle;
let admin: Etcd3;
let app: INestApplication;
let locks: LockService;
let payments: PaymentsService;
let ledger: Ledger;
let log: EventLog;
let processes: NestAppProcess[] = [];

/** Every event of a LockService, kept in order, with a bounded wait for one to come. */
class EventLog {
  private readonly list = new EventList<LockEvent>();
  private readonly subscription: Subscription;

  constructor(service: LockService) {
    this.subscription = service.events$.subscribe(event => this.list.push(event));
  }

  get events(): LockEvent[] {
    return this.list.items;
  }

  /** A mark to pass as `from`: only later events count. */
  get mark(): number {
    return this.events.length;
  }

  /** The types of the events of lock `key` since `from`, in order. */
  typesOf(key: string, from: number): LockEventType[] {
    return this.events.slice(from).filter(e => e.key === key).map(e => e.type);
  }

  /** The first event since `from` (already seen or coming) of lock `key` and `type`; rejects after timeoutMs. */
  waitFor(key: string, type: LockEventType, from: number, timeoutMs = 5_000): Promise<LockEvent> {
    return this.list.waitFor(
      e => e.key === key && e.type === type,
      timeoutMs,
      () => `no "${type}" event of ${key} within ${timeoutMs} ms; saw ${this.typesOf(key, from).join(', ') || 'none'}`,
      from,
    );
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

const overlaps = (a: Span, b: Span) => a.enter < b.exit && b.enter < a.exit;

/**
 * Critical sections of one lock that ran one at a time: in token order (distinct, strictly
 * increasing fencing tokens) each one starts after the previous one ended and read every
 * earlier write of the unsafe counter.
 */
function expectSerialized(spans: Span[], key: string): void {
  const sorted = [...spans].sort((a, b) => (BigInt(a.token) < BigInt(b.token) ? -1 : 1));
  expect(sorted.every(s => s.key === key)).toBe(true);
  expect(new Set(sorted.map(s => s.token)).size).toBe(spans.length);
  for (let i = 0; i < sorted.length; i++) {
    expect(sorted[i].read).toBe(i);
    if (i > 0) {
      expect(BigInt(sorted[i].token)).toBeGreaterThan(BigInt(sorted[i - 1].token));
      expect(sorted[i].enter).toBeGreaterThanOrEqual(sorted[i - 1].exit);
    }
  }
}

/** The IDs of every lease etcd has. */
async function leaseIds(): Promise<string[]> {
  return (await admin.leaseClient.leaseLeases()).leases.map(l => l.ID).sort();
}

/** etcd's current revision: it moves on every write, anywhere. */
async function revision(): Promise<string> {
  return (await admin.getAll().prefix(PREFIX).exec()).header.revision;
}

/** The queue keys of lock `name` in etcd, with their create revisions. */
async function queueOf(name: string): Promise<{ key: string; createRevision: string }[]> {
  const res = await admin.getAll().prefix(`${PREFIX}${name}/`).exec();
  return res.kvs.map(kv => ({ key: kv.key.toString(), createRevision: kv.create_revision }));
}

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
  const moduleRef = await Test.createTestingModule({
    imports: [ordersModule({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 1 }, etcd.endpoints, DATA)],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  locks = app.get(LockService);
  payments = app.get(PaymentsService);
  ledger = app.get(Ledger);
  log = new EventLog(locks);
});

afterAll(async () => {
  await Promise.all(processes.map(p => p.stop()));
  log?.stop();
  await app?.close();
  await admin?.delete().prefix(DATA);
  admin?.close();
  await etcd?.stop();
});

describe('@WithLock on a provider method (wrapped at bootstrap)', () => {
  it('serializes 8 concurrent charges of one order: exact unsafe counter, no overlap, distinct tokens', async () => {
    const spans = await Promise.all(Array.from({ length: 8 }, () => payments.charge('o1', 1)));
    expect(await ledger.read('charged-o1')).toBe(8);
    expectSerialized(spans, 'payment:o1');
    expect(await queueOf('payment:o1')).toEqual([]); // every holder released its key
  });

  it('{ limit: 2 }: of 5 concurrent exports of one report, 2 run together and never 3', async () => {
    const runs = await Promise.all(Array.from({ length: 5 }, () => payments.exportReport('r1')));
    const insideAt = (t: number) => runs.filter(r => r.enter <= t && t < r.exit).length;
    const most = Math.max(...runs.map(r => insideAt(r.enter)));
    expect(most).toBe(2);
    expect(new Set(runs.map(r => r.token)).size).toBe(5);
    expect(await queueOf('export:r1')).toEqual([]);
  });

  it('runs charges of different orders in parallel', async () => {
    const ids = ['pa', 'pb', 'pc', 'pd', 'pe', 'pf'];
    const spans = await Promise.all(ids.map(id => payments.charge(id, 1)));
    expect(spans.map(s => s.key)).toEqual(ids.map(id => `payment:${id}`));
    for (const id of ids) expect(await ledger.read(`charged-${id}`)).toBe(1);
    const overlapping = spans.some((s, i) => spans.some((t, j) => i !== j && overlaps(s, t)));
    expect(overlapping).toBe(true);
  });

  it("onContention 'skip' + minHold 300: one of two runs, the other skips; the lock stays held after a fast run until minHold", async () => {
    const from = log.mark;
    const runsBefore = payments.jobRuns;
    const results = await Promise.all([payments.runJob('nightly'), payments.runJob('nightly')]);
    expect([...results].sort()).toEqual(['nightly done', undefined]);
    expect(payments.jobRuns).toBe(runsBefore + 1);
    expect([...log.typesOf('job:nightly', from)].sort()).toEqual(['acquired', 'skipped']);

    // the job has returned, but minHold keeps its key in etcd: a third call right away skips
    const [acquired] = log.events.slice(from).filter(e => e.key === 'job:nightly' && e.type === 'acquired');
    expect((await queueOf('job:nightly')).map(k => k.createRevision)).toEqual([String(acquired.token)]);
    expect(await payments.runJob('nightly')).toBeUndefined();
    expect(payments.jobRuns).toBe(runsBefore + 1);
    const released = await log.waitFor('job:nightly', 'released', from);
    expect(released.token).toBe(acquired.token);
    // the third call was skipped before the deferred release, and wrote nothing to the queue
    expect(log.typesOf('job:nightly', from).slice(2)).toEqual(['skipped', 'released']);
    expect(await queueOf('job:nightly')).toEqual([]);

    // once minHold has passed and the key is gone, the job runs again
    const again = log.mark;
    expect(await payments.runJob('nightly')).toBe('nightly done');
    expect(payments.jobRuns).toBe(runsBefore + 2);
    await log.waitFor('job:nightly', 'released', again);
    expect(log.typesOf('job:nightly', again)).toEqual(['acquired', 'released']);
  });

  it('is reentrant: outer() calling inner() on the same key resolves with one token and one queue key', async () => {
    const watcher = await admin.watch().prefix(`${PREFIX}reentrant:r1/`).create();
    const puts: string[] = [];
    const deleted = new Promise<void>(resolve => watcher.on('delete', () => resolve()));
    watcher.on('put', kv => puts.push(kv.key.toString()));
    try {
      const from = log.mark;
      const [outerToken, innerToken] = await payments.outer('r1');
      expect(innerToken).toBe(outerToken);
      expect(log.typesOf('reentrant:r1', from)).toEqual(['acquired', 'released']);
      expect(String(log.events.slice(from).find(e => e.key === 'reentrant:r1')!.token)).toBe(outerToken);
      await deleted; // every put comes before the delete in etcd's order
      expect(puts).toHaveLength(1);
      expect(await queueOf('reentrant:r1')).toEqual([]);
    } finally {
      await watcher.cancel();
    }
  });

  it('maxHold 200: the lock is released at maxHold while the method runs on, which then rejects with LockLostError', async () => {
    const other = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 1 });
    try {
      const from = log.mark;
      let settled = false;
      const outcome = payments.overrun('m1').then(
        value => ({ value, error: undefined as unknown }),
        (error: unknown) => ({ value: undefined, error }),
      );
      void outcome.then(() => (settled = true));
      const acquired = await log.waitFor('maxhold:m1', 'acquired', from);

      // another LockService queues behind it and gets it once maxHold ends the hold
      const theirs = await other.acquire('maxhold:m1', { waitTimeout: 2_000 });
      expect(settled).toBe(false); // overrun (600 ms) is still running
      expect(theirs.token).toBeGreaterThan(acquired.token!);
      expect(log.events.slice(from).find(e => e.key === 'maxhold:m1' && e.type === 'expired')).toMatchObject({
        reason: 'max-hold',
        token: acquired.token,
      });

      const { value, error } = await outcome;
      expect(value).toBeUndefined();
      expect(error).toBeInstanceOf(LockLostError);
      expect(error).toMatchObject({ code: 'LOCK_LOST', reason: 'max-hold', key: 'maxhold:m1' });
      expect(log.typesOf('maxhold:m1', from)).toEqual(['acquired', 'expired']); // no release after the loss
      // the overrun's late release spared the new holder's key
      expect(theirs.isHeld).toBe(true);
      expect((await queueOf('maxhold:m1')).map(k => k.createRevision)).toEqual([String(theirs.token)]);
      await theirs.release();
      expect(await queueOf('maxhold:m1')).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('builds keys from a key function and from a deep path, URI-encoding values', async () => {
    const from = log.mark;
    expect(await payments.byFunction({ id: 'f1' })).toBe('fn:f1');
    expect(await payments.byPath({ id: '9', customer: { id: 'c/1' } })).toBe('deep:c%2F1:9');
    expect(log.typesOf('fn:f1', from)).toEqual(['acquired', 'released']);
    expect(log.typesOf('deep:c%2F1:9', from)).toEqual(['acquired', 'released']);
  });

  it('a missing template value rejects with InvalidLockKeyError (its own type) and writes nothing to etcd', async () => {
    const from = log.mark;
    const before = await revision();
    const missingPath = await payments.byPath({ id: '9' }).then(() => undefined, (err: unknown) => err);
    expect(missingPath).toBeInstanceOf(InvalidLockKeyError);
    expect(missingPath).toMatchObject({ code: 'INVALID_KEY', name: 'InvalidLockKeyError' });
    expect((missingPath as Error).message).toMatch(/<<order\.customer\.id>>/);

    const missingArg = await payments.charge(undefined as unknown as string, 1).then(() => undefined, (err: unknown) => err);
    expect(missingArg).toBeInstanceOf(InvalidLockKeyError);
    expect(missingArg).toMatchObject({ code: 'INVALID_KEY' });
    expect((missingArg as Error).message).toMatch(/<<orderId>>/);

    expect(await revision()).toBe(before); // not even a put and delete
    expect(await lockKeys(admin, PREFIX)).toEqual([]);
    expect(log.events.slice(from)).toEqual([]);
    expect(await ledger.read('charged-undefined')).toBe(0);
  });

  it("keeps the method's name, length and other decorators' metadata", () => {
    // locked on the prototype, when decorated: whoever takes the method, whenever, takes the locked one
    expect(Object.prototype.hasOwnProperty.call(payments, 'charge')).toBe(false);
    expect(payments.charge.name).toBe('charge');
    expect(payments.charge.length).toBe(2);
    expect(Reflect.getMetadata('fixture:audited', payments.charge)).toBe(true);
    expect(app.get(Reflector).get('fixture:audited', payments.charge)).toBe(true);
    // the options as given, and the name metrics know the lock by: its key template
    expect(Reflect.getMetadata('etcd-lock:with_lock', payments.charge)).toEqual({ key: 'payment:<<orderId>>', options: { telemetryName: 'payment:<<orderId>>' } });
    expect(Reflect.getMetadata('etcd-lock:with_lock', payments.runJob)).toEqual({
      key: 'job:<<0>>',
      options: { onContention: 'skip', minHold: 300, telemetryName: 'job:<<0>>' },
    });
  });
});

@Injectable()
class BadPlaceholderService {
  @WithLock('x:<<nope>>')
  m(id: string): string {
    return id;
  }
}

@Injectable()
class BadOptionService {
  @WithLock('x:<<0>>', { onContention: 'later' as unknown as LockContention })
  m(id: string): string {
    return id;
  }
}

/** Boots an app with EtcdLockModule and `provider`; returns why init failed (undefined if it did not), closing the app either way. */
async function bootError(provider: new () => unknown): Promise<unknown> {
  const moduleRef = await Test.createTestingModule({
    imports: [EtcdLockModule.forRoot({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 1 })],
    providers: [provider],
  }).compile();
  const bad = moduleRef.createNestApplication({ logger: false });
  try {
    await bad.init();
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await bad.close(); // the failed app's LockService may have opened a session: revoke it
  }
}

describe('@WithLock configuration errors fail bootstrap', () => {
  it('an unknown placeholder: LockConfigurationError naming the class, the method and the placeholder', async () => {
    const leasesBefore = await leaseIds();
    const error = await bootError(BadPlaceholderService);
    expect(error).toBeInstanceOf(LockConfigurationError);
    expect(error).toMatchObject({ code: 'INVALID_OPTIONS' });
    expect((error as Error).message).toContain('BadPlaceholderService.m');
    expect((error as Error).message).toContain('<<nope>>');
    expect(await leaseIds()).toEqual(leasesBefore); // closing the failed app left no lease behind
  });

  it('a bad option: LockConfigurationError naming the method and the option', async () => {
    const leasesBefore = await leaseIds();
    const error = await bootError(BadOptionService);
    expect(error).toBeInstanceOf(LockConfigurationError);
    expect((error as Error).message).toContain('BadOptionService.m');
    expect((error as Error).message).toContain('onContention');
    expect((error as Error).message).toContain('later');
    expect(await leaseIds()).toEqual(leasesBefore);
  });
});

describe('two app instances in two processes sharing one etcd', () => {
  let leasesBefore: string[];
  let leasesOfProcesses: string[];

  beforeAll(async () => {
    leasesBefore = await leaseIds();
    processes = await Promise.all([0, 1].map(() => NestAppProcess.start(etcd.endpoints, PREFIX, DATA)));
    leasesOfProcesses = (await leaseIds()).filter(id => !leasesBefore.includes(id));
  });

  /** Fires `count` concurrent POSTs at `path`, alternating between the two instances. */
  async function postToBoth(path: string, count: number): Promise<{ status: number; span: Span; instance: number }[]> {
    return Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const res = await fetch(processes[i % 2].url(path), { method: 'POST' });
        return { status: res.status, span: (await res.json()) as Span, instance: i % 2 };
      }),
    );
  }

  it('each instance opened its own session (one lease each)', () => {
    expect(leasesOfProcesses).toHaveLength(2);
  });

  it('provider path: 20 concurrent POST /orders/o9/charge across both instances are serialized, counter exact', async () => {
    const responses = await postToBoth('/orders/o9/charge', 20);
    expect(responses.map(r => r.status)).toEqual(Array(20).fill(201));
    expect(Number(await admin.get(`${DATA}charged-o9`).string())).toBe(20);
    expectSerialized(
      responses.map(r => r.span),
      'payment:o9',
    );
    expect(await queueOf('payment:o9')).toEqual([]);
  });

  it('controller path: 20 concurrent POST /orders/p9/pay across both instances are serialized, counter exact', async () => {
    const responses = await postToBoth('/orders/p9/pay', 20);
    expect(responses.map(r => r.status)).toEqual(Array(20).fill(201));
    expect(Number(await admin.get(`${DATA}paid-p9`).string())).toBe(20);
    expectSerialized(
      responses.map(r => r.span),
      'order:p9',
    );
    expect(await queueOf('order:p9')).toEqual([]);
  });

  it('SIGTERM shuts each instance down gracefully: it exits by itself and its lease is revoked', async () => {
    const exits = await Promise.all(processes.map(p => p.stop()));
    for (const exit of exits) {
      expect(exit.graceful).toBe(true);
      expect(exit.signal === 'SIGTERM' || exit.code === 0).toBe(true);
    }
    // revoked on shutdown, not left to expire (the main app's lease is still there)
    const leases = await leaseIds();
    expect(leases.filter(id => leasesOfProcesses.includes(id))).toEqual([]);
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases once the apps are closed', async () => {
    await Promise.all(processes.map(p => p.stop()));
    log.stop();
    await app.close();
    await expectEtcdClean(admin, PREFIX);
    await admin.delete().prefix(DATA);
    expect(await admin.getAll().prefix(DATA).keys()).toEqual([]);
  });
});
