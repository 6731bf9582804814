// LockService.events$ and @OnLockEvent handlers in a real Nest app against a real etcd:
// type and key filters, discovery on providers and controllers, `lost` on a deleted key,
// handler isolation (throwing, rejecting, slow handlers).
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Inject, Injectable, type INestApplication, type LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { EtcdLockModule, LockLostError, LockService, LockTimeoutError, OnLockEvent, type LockEvent } from '../../lib/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { rejection } from '../support/rejection.js';

const PREFIX = 'events-spec/';
const OWNER = 'events-spec-owner';
let etcd: EtcdHandle;
let admin: Etcd3;
let app: INestApplication;
let locks: LockService;

// ---- fixtures ----------------------------------------------------------------------------

/** Handlers of every kind of filter, each recording what it received. */
@Injectable()
class LockAuditor {
  readonly acquired: LockEvent[] = [];
  readonly endings: LockEvent[] = [];
  readonly all: LockEvent[] = [];
  readonly orders: LockEvent[] = [];
  readonly oneChar: LockEvent[] = [];
  readonly literalDot: LockEvent[] = [];

  @OnLockEvent('acquired')
  onAcquired(event: LockEvent): void {
    this.acquired.push(event);
  }

  @OnLockEvent(['released', 'lost'])
  onEnded(event: LockEvent): void {
    this.endings.push(event);
  }

  @OnLockEvent('*')
  onAny(event: LockEvent): void {
    this.all.push(event);
  }

  @OnLockEvent('*', { key: 'order:*' })
  onOrder(event: LockEvent): void {
    this.orders.push(event);
  }

  @OnLockEvent('*', { key: 'job:?' })
  onOneCharJob(event: LockEvent): void {
    this.oneChar.push(event);
  }

  @OnLockEvent('acquired', { key: 'v1.?' })
  onVersion(event: LockEvent): void {
    this.literalDot.push(event);
  }
}

/** Handlers on a controller are discovered too. */
@Controller('audit')
class AuditController {
  readonly acquired: LockEvent[] = [];

  @OnLockEvent('acquired')
  onAcquired(event: LockEvent): void {
    this.acquired.push(event);
  }
}

/** One handler that throws, one that rejects, one that behaves; only for `faulty:*` locks. */
@Injectable()
class FaultyHandlers {
  readonly thrower: LockEvent[] = [];
  readonly rejecter: LockEvent[] = [];
  readonly healthy: LockEvent[] = [];

  @OnLockEvent('*', { key: 'faulty:*' })
  throwsSync(event: LockEvent): void {
    this.thrower.push(event);
    throw new Error(`sync boom on ${event.type}`);
  }

  @OnLockEvent('*', { key: 'faulty:*' })
  async rejectsAsync(event: LockEvent): Promise<void> {
    this.rejecter.push(event);
    await sleep(1);
    throw new Error(`async boom on ${event.type}`);
  }

  @OnLockEvent('*', { key: 'faulty:*' })
  behaves(event: LockEvent): void {
    this.healthy.push(event);
  }
}

/** Slow handlers on `slow:*` locks; `sequence` interleaves with what the test records. */
@Injectable()
class SlowHandlers {
  readonly sequence: string[] = [];
  private busyLooped = false;

  @OnLockEvent('acquired', { key: 'slow:*' })
  busyLoopOnce(): void {
    this.sequence.push('sync-handler-started');
    if (!this.busyLooped) {
      this.busyLooped = true;
      for (const end = performance.now() + 300; performance.now() < end; ) {
        // hold the event loop, as CPU-heavy handler code would
      }
    }
    this.sequence.push('sync-handler-finished');
  }

  @OnLockEvent('acquired', { key: 'slow:*' })
  async sleepTwoSeconds(): Promise<void> {
    this.sequence.push('async-handler-started');
    await sleep(2_000);
    this.sequence.push('async-handler-finished');
  }
}

/** Collects what the app logs at error level. */
class RecordingLogger implements LoggerService {
  readonly errors: unknown[][] = [];
  log(): void {}
  warn(): void {}
  debug(): void {}
  verbose(): void {}
  error(...args: unknown[]): void {
    this.errors.push(args);
  }
}
const logger = new RecordingLogger();

/** A provider injecting LockService explicitly, as an app would (no decorator metadata needed). */
@Injectable()
class Locker {
  constructor(@Inject(LockService) readonly locks: LockService) {}
}

// ---- helpers -----------------------------------------------------------------------------

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !condition(); await sleep(5)) {
    if (Date.now() > end) throw new Error(`not in time: ${what}`);
  }
}

/** Lets anything already scheduled (asap handlers, timers of 0) run. */
const settle = () => sleep(20);

const ofKey = (events: LockEvent[], key: string) => events.filter(e => e.key === key);
const typesOf = (events: LockEvent[], key: string) => ofKey(events, key).map(e => e.type);

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
  const moduleRef = await Test.createTestingModule({
    imports: [EtcdLockModule.forRoot({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 1, ownerId: OWNER })],
    controllers: [AuditController],
    providers: [LockAuditor, FaultyHandlers, SlowHandlers, Locker],
  }).compile();
  app = moduleRef.createNestApplication({ logger });
  await app.init();
  locks = app.get(Locker).locks;
});

afterAll(async () => {
  await app?.close();
  admin?.close();
  await etcd?.stop();
});

// ---- tests -------------------------------------------------------------------------------

describe('@OnLockEvent type filters', () => {
  it("'acquired' and ['released', 'lost'] receive exactly those types; a controller's handler is discovered", async () => {
    const auditor = app.get(LockAuditor);
    const controller = app.get(AuditController);
    const lock = await locks.acquire('basic:1');
    await lock.release();
    await until(() => typesOf(auditor.all, 'basic:1').includes('released'), "'*' handler saw released");
    await settle();

    expect(typesOf(auditor.acquired, 'basic:1')).toEqual(['acquired']);
    expect(typesOf(auditor.endings, 'basic:1')).toEqual(['released']);
    expect(typesOf(controller.acquired, 'basic:1')).toEqual(['acquired']);
    expect(ofKey(auditor.acquired, 'basic:1')[0]).toMatchObject({ key: 'basic:1', token: lock.token, owner: OWNER, origin: 'local' });
    expect(ofKey(auditor.endings, 'basic:1')[0]).toMatchObject({ key: 'basic:1', token: lock.token });
    expect(ofKey(auditor.acquired, 'basic:1')[0].at).toBeInstanceOf(Date);
  });

  it("'*' receives every type: waiting, acquired, timeout, released, skipped", async () => {
    const auditor = app.get(LockAuditor);
    const holder = await locks.acquire('basic:2');
    expect(await rejection(locks.acquire('basic:2', { waitTimeout: 100 }))).toBeInstanceOf(LockTimeoutError);
    expect(await locks.tryWithLock('basic:2', () => 'never')).toEqual({ acquired: false });
    const waiter = locks.acquire('basic:2', { waitTimeout: 5_000 });
    await until(() => typesOf(auditor.all, 'basic:2').filter(t => t === 'waiting').length === 2, 'second waiting');
    await holder.release();
    await (await waiter).release();
    await until(() => typesOf(auditor.all, 'basic:2').filter(t => t === 'released').length === 2, 'both released');
    await settle();

    expect(typesOf(auditor.all, 'basic:2')).toEqual(['acquired', 'waiting', 'timeout', 'skipped', 'waiting', 'released', 'acquired', 'released']);
    // the narrower handlers saw only their own types of the same run
    expect(typesOf(auditor.acquired, 'basic:2')).toEqual(['acquired', 'acquired']);
    expect(typesOf(auditor.endings, 'basic:2')).toEqual(['released', 'released']);
    expect(typesOf(app.get(AuditController).acquired, 'basic:2')).toEqual(['acquired', 'acquired']);
  });
});

describe('@OnLockEvent key globs', () => {
  it("'order:*' receives order:1 but not invoice:1; '?' is exactly one character; '.' is literal", async () => {
    const auditor = app.get(LockAuditor);
    for (const name of ['order:1', 'invoice:1', 'job:1', 'job:12', 'job:', 'v1.2', 'v1x2', 'order', 'xorder:1']) {
      await (await locks.acquire(name)).release();
    }
    await until(() => typesOf(auditor.all, 'xorder:1').includes('released'), 'last lock released');
    await settle();

    expect(new Set(auditor.orders.map(e => e.key))).toEqual(new Set(['order:1']));
    expect(typesOf(auditor.orders, 'order:1')).toEqual(['acquired', 'released']);
    expect(new Set(auditor.oneChar.map(e => e.key))).toEqual(new Set(['job:1']));
    expect(auditor.literalDot.map(e => e.key)).toEqual(['v1.2']);
    // and every one of them did reach the unfiltered handler
    expect(typesOf(auditor.all, 'invoice:1')).toEqual(['acquired', 'released']);
    expect(typesOf(auditor.all, 'job:12')).toEqual(['acquired', 'released']);
  });
});

describe("'lost'", () => {
  it('a holder whose key is deleted behind its back: handler gets lost/key-deleted, the signal aborts', async () => {
    const auditor = app.get(LockAuditor);
    const lock = await locks.acquire('doomed');
    expect(lock.signal.aborted).toBe(false);
    await admin.delete().prefix(`${PREFIX}doomed/`);
    await until(() => typesOf(auditor.endings, 'doomed').includes('lost'), 'lost reached the handler');

    expect(ofKey(auditor.endings, 'doomed')[0]).toMatchObject({
      type: 'lost',
      key: 'doomed',
      reason: 'key-deleted',
      origin: 'local',
      owner: OWNER,
      token: lock.token,
    });
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
    expect(lock.isHeld).toBe(false);
    await lock.release(); // a lost lock is not "released" afterwards
    await settle();
    expect(typesOf(auditor.all, 'doomed')).toEqual(['acquired', 'lost']);
  });
});

describe('handler isolation', () => {
  it('a handler that throws and one that rejects are logged; later events still reach every handler', async () => {
    const faulty = app.get(FaultyHandlers);
    await (await locks.acquire('faulty:1')).release();
    await until(() => typesOf(faulty.healthy, 'faulty:1').includes('released'), 'first run seen');
    await until(() => logger.errors.length >= 4, 'four failures logged');

    const messages = logger.errors.map(args => String(args[0]));
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/FaultyHandlers\.throwsSync.*"acquired".*"faulty:1"/),
        expect.stringMatching(/FaultyHandlers\.rejectsAsync.*"acquired".*"faulty:1"/),
        expect.stringMatching(/FaultyHandlers\.throwsSync.*"released".*"faulty:1"/),
        expect.stringMatching(/FaultyHandlers\.rejectsAsync.*"released".*"faulty:1"/),
      ]),
    );
    // the stack of the handler's error is logged with it
    expect(logger.errors.some(args => /sync boom on acquired/.test(String(args[1])))).toBe(true);
    expect(logger.errors.some(args => /async boom on acquired/.test(String(args[1])))).toBe(true);

    // the stream lives on: a later lock reaches every handler, the failing ones included
    await (await locks.acquire('faulty:2')).release();
    await until(() => typesOf(faulty.healthy, 'faulty:2').includes('released'), 'second run seen');
    await settle();
    expect(typesOf(faulty.thrower, 'faulty:2')).toEqual(['acquired', 'released']);
    expect(typesOf(faulty.rejecter, 'faulty:2')).toEqual(['acquired', 'released']);
    expect(typesOf(faulty.healthy, 'faulty:2')).toEqual(['acquired', 'released']);
    expect(typesOf(app.get(LockAuditor).all, 'faulty:2')).toEqual(['acquired', 'released']);
    expect(logger.errors).toHaveLength(8);
  });

  it('a slow handler never delays a lock operation: acquire() resolves before the handler starts', async () => {
    const slow = app.get(SlowHandlers);
    const { sequence } = slow;
    const lock = await locks.acquire('slow:1').then(handle => {
      sequence.push('acquire-resolved');
      return handle;
    });
    await until(() => sequence.includes('sync-handler-finished'), 'sync handler ran');
    await lock.release().then(() => sequence.push('release-resolved'));
    await until(() => sequence.includes('async-handler-finished'), 'async handler finished', 5_000);

    // the caller had its lock before the synchronous handler (300 ms of busy loop) even started
    const sync = sequence.filter(step => step === 'acquire-resolved' || step.startsWith('sync-'));
    expect(sync.slice(0, 3)).toEqual(['acquire-resolved', 'sync-handler-started', 'sync-handler-finished']);
    // and before the 2 s handler finished; that one was still running when the lock was released
    expect(sequence.indexOf('acquire-resolved')).toBeLessThan(sequence.indexOf('async-handler-finished'));
    expect(sequence.indexOf('release-resolved')).toBeLessThan(sequence.indexOf('async-handler-finished'));
  });
});

describe('LockService.events$', () => {
  it('waiting → acquired (waitedMs) when contended, timeout when timed out, released with heldMs', async () => {
    const events: LockEvent[] = [];
    const subscription = locks.events$.subscribe(e => events.push(e));
    try {
      const holder = await locks.acquire('direct');
      const waiter = locks.acquire('direct', { waitTimeout: 5_000 });
      await until(() => typesOf(events, 'direct').includes('waiting'), 'waiter queued');
      const late = await rejection(locks.acquire('direct', { waitTimeout: 50 }));
      expect(late).toBeInstanceOf(LockTimeoutError);
      await holder.release();
      const next = await waiter;
      await next.release();

      // events$ is synchronous with the operations: no waiting needed
      expect(typesOf(events, 'direct')).toEqual(['acquired', 'waiting', 'waiting', 'timeout', 'released', 'acquired', 'released']);
      const [first, , , timeout, released, second, last] = ofKey(events, 'direct');
      expect(first).toMatchObject({ token: holder.token, owner: OWNER, origin: 'local' });
      expect(timeout.waitedMs).toEqual(expect.any(Number));
      expect(released).toMatchObject({ token: holder.token });
      expect(released.heldMs).toEqual(expect.any(Number));
      expect(second).toMatchObject({ token: next.token });
      expect(second.waitedMs).toEqual(expect.any(Number));
      // by order, not by clock: the waiter started before the timed-out acquire and got the lock after its timeout
      expect(second.waitedMs!).toBeGreaterThan(timeout.waitedMs!);
      expect(last).toMatchObject({ type: 'released', token: next.token });
      expect(last.heldMs).toEqual(expect.any(Number));
      expect(next.token).toBeGreaterThan(holder.token);
    } finally {
      subscription.unsubscribe();
    }
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases after app.close(); events$ completes', async () => {
    let completed = false;
    locks.events$.subscribe({ complete: () => (completed = true) });
    await app.close();
    expect(completed).toBe(true);
    await expectEtcdClean(admin, PREFIX);
  });
});
