// Two EtcdLockModule instances in one Nest app, on two etcd servers: the default one and one
// named 'billing'. Each decorator and injection reaches the instance it names, and neither
// sees the other's locks or events.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Inject, Injectable, Module, Param, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import request from 'supertest';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { EtcdLockModule, InjectLockService, LockConfigurationError, LockService, OnLockEvent, WithLock, type LockEvent } from '../../lib/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { rejection } from '../support/rejection.js';

const PREFIX = 'named-spec/';
let main: EtcdHandle; // the default instance's etcd
let other: EtcdHandle; // the 'billing' instance's etcd
let mainAdmin: Etcd3;
let otherAdmin: Etcd3;
let app: INestApplication;

/** Queue keys of `name` in each etcd, counted while a locked method runs. */
async function keysOf(name: string): Promise<{ main: number; billing: number }> {
  const count = async (admin: Etcd3) => (await admin.getAll().prefix(`${PREFIX}${name}/`).keys()).length;
  return { main: await count(mainAdmin), billing: await count(otherAdmin) };
}

@Injectable()
class Jobs {
  readonly events: { instance: string; event: LockEvent }[] = [];

  constructor(
    @Inject(LockService) readonly mainLocks: LockService,
    @InjectLockService('billing') readonly billingLocks: LockService,
  ) {}

  @WithLock('job:<<0>>')
  async onMain(id: string) {
    return { keys: await keysOf(`job:${id}`), current: this.mainLocks.current()?.key, elsewhere: this.billingLocks.current() };
  }

  @WithLock('job:<<0>>', { lock: 'billing' })
  async onBilling(id: string) {
    return { keys: await keysOf(`job:${id}`), current: this.billingLocks.current()?.key, elsewhere: this.mainLocks.current() };
  }

  @OnLockEvent('acquired')
  mainAcquired(event: LockEvent): void {
    this.events.push({ instance: 'main', event });
  }

  @OnLockEvent('acquired', { lock: 'billing' })
  billingAcquired(event: LockEvent): void {
    this.events.push({ instance: 'billing', event });
  }
}

@Controller('invoices')
class InvoicesController {
  @Get(':id')
  @WithLock('invoice:<<id>>', { lock: 'billing', onContention: 'fail' })
  pay(@Param('id') id: string): { id: string } {
    return { id };
  }
}

function instances() {
  return [
    EtcdLockModule.forRoot({ etcd: { hosts: main.endpoints }, prefix: PREFIX, ttl: 2 }),
    EtcdLockModule.forRootAsync({ name: 'billing', useFactory: () => ({ etcd: { hosts: other.endpoints }, prefix: PREFIX, ttl: 2, conflictStatus: 423 }) }),
  ];
}

beforeAll(async () => {
  [main, other] = await Promise.all([startEtcd(), startEtcd()]);
  mainAdmin = new Etcd3({ hosts: main.endpoints });
  otherAdmin = new Etcd3({ hosts: other.endpoints });
  const moduleRef = await Test.createTestingModule({ imports: instances(), providers: [Jobs], controllers: [InvoicesController] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  await app?.close();
  mainAdmin?.close();
  otherAdmin?.close();
  await Promise.all([main?.stop(), other?.stop()]);
});

describe('two named EtcdLockModule instances on two etcd servers', () => {
  it('LockService is the default instance, @InjectLockService(name) the named one: two services', () => {
    const jobs = app.get(Jobs);
    expect(jobs.mainLocks).toBeInstanceOf(LockService);
    expect(jobs.billingLocks).toBeInstanceOf(LockService);
    expect(jobs.billingLocks).not.toBe(jobs.mainLocks);
    expect(app.get(LockService)).toBe(jobs.mainLocks);
  });

  it('@WithLock takes its lock on the instance it names, and only there', async () => {
    const jobs = app.get(Jobs);
    expect(await jobs.onMain('1')).toEqual({ keys: { main: 1, billing: 0 }, current: 'job:1', elsewhere: undefined });
    expect(await jobs.onBilling('2')).toEqual({ keys: { main: 0, billing: 1 }, current: 'job:2', elsewhere: undefined });
    // the same name on both: two separate locks, held at once
    const [a, b] = await Promise.all([jobs.onMain('3'), jobs.onBilling('3')]);
    expect([a.keys, b.keys]).toEqual([{ main: 1, billing: expect.any(Number) }, { main: expect.any(Number), billing: 1 }]);
  });

  it('@OnLockEvent gets the events of the instance it names only', async () => {
    const jobs = app.get(Jobs);
    jobs.events.length = 0;
    await jobs.onMain('e1');
    await jobs.onBilling('e2');
    await new Promise(resolve => setTimeout(resolve, 50)); // handlers run in a later macrotask
    expect(jobs.events.map(e => [e.instance, e.event.key])).toEqual([
      ['main', 'job:e1'],
      ['billing', 'job:e2'],
    ]);
  });

  it("a route's @WithLock uses its instance's lock and conflictStatus (423 for 'billing')", async () => {
    const jobs = app.get(Jobs);
    const held = await jobs.billingLocks.acquire('invoice:9');
    try {
      await request(app.getHttpServer()).get('/invoices/9').expect(423);
      await request(app.getHttpServer()).get('/invoices/8').expect(200, { id: '8' });
      expect(await jobs.mainLocks.isLocked('invoice:9')).toBe(false); // the default instance's etcd never saw it
    } finally {
      await held.release();
    }
  });
});

describe('bad instance names fail bootstrap', () => {
  @Injectable()
  class Misnamed {
    @WithLock('x', { lock: 'biling' })
    async run(): Promise<void> {}
  }

  @Injectable()
  class MisnamedHandler {
    @OnLockEvent('lost', { lock: 'nope' })
    onLost(): void {}
  }

  async function bootstrapError(imports: ReturnType<typeof instances>, providers: unknown[]): Promise<Error> {
    @Module({ imports, providers: providers as never[] })
    class BadModule {}
    let bad: INestApplication | undefined;
    // the error comes when providers are created (compile) or at init, depending on the check
    return rejection(
      (async () => {
        const moduleRef = await Test.createTestingModule({ imports: [BadModule] }).compile();
        bad = moduleRef.createNestApplication({ logger: false });
        await bad.init();
      })().finally(() => bad?.close().catch(() => undefined)),
    );
  }

  it('@WithLock or @OnLockEvent naming an instance that was not imported: LockConfigurationError naming both', async () => {
    const withLock = await bootstrapError(instances(), [Misnamed]);
    expect(withLock).toBeInstanceOf(LockConfigurationError);
    expect(withLock.message).toContain('@WithLock on Misnamed.run names the lock service "biling"');
    expect(withLock.message).toContain('"default", "billing"');
    const onEvent = await bootstrapError(instances(), [MisnamedHandler]);
    expect(onEvent).toBeInstanceOf(LockConfigurationError);
    expect(onEvent.message).toContain('@OnLockEvent on MisnamedHandler.onLost names the lock service "nope"');
  });

  it('two instances with one name: LockConfigurationError', async () => {
    const twice = [
      EtcdLockModule.forRoot({ name: 'x', etcd: { hosts: main.endpoints }, prefix: PREFIX, ttl: 2 }),
      EtcdLockModule.forRoot({ name: 'x', etcd: { hosts: other.endpoints }, prefix: PREFIX, ttl: 2 }),
    ];
    const err = await bootstrapError(twice, []);
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect(err.message).toContain('EtcdLockModule "x" is imported twice');
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases in either etcd', async () => {
    await app.close();
    await expectEtcdClean(mainAdmin, PREFIX);
    await expectEtcdClean(otherAdmin, PREFIX);
  });
});
