// EtcdLockModule as a Nest app uses it: forRoot, forRootAsync (useFactory, useClass,
// useExisting), isGlobal, option validation at bootstrap, a supplied client, shutdown that
// releases locks at once, and conflictStatus over real HTTP. Real etcd (harness/etcd.ts).
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Inject,
  Injectable,
  Module,
  Param,
  Post,
  type DynamicModule,
  type INestApplication,
  type ModuleMetadata,
  type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import {
  EtcdLockModule,
  EtcdUnavailableError,
  LockConfigurationError,
  LockService,
  WithLock,
  type EtcdLockModuleOptions,
  type LockEvent,
} from '../../lib/index.js';
import { expectEtcdClean, lockKeys } from '../support/etcd-state.js';

const PREFIX = 'module-spec/';
let etcd: EtcdHandle;
let admin: Etcd3;
const apps: INestApplication[] = [];
const services: LockService[] = [];
const clients: Etcd3[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
});

afterAll(async () => {
  await Promise.all(apps.map(a => a.close()));
  await Promise.all(services.map(s => s.close()));
  clients.forEach(c => c.close());
  admin?.close();
  await etcd?.stop();
});

// ---- fixtures ----------------------------------------------------------------------------

const CONFIG = Symbol('CONFIG');
interface AppConfig {
  hosts: string[];
  prefix: string;
}

/** A small ConfigModule look-alike: exports one CONFIG provider. */
@Module({})
class ConfigModule {
  static register(config: AppConfig): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: CONFIG, useValue: config }], exports: [CONFIG] };
  }
}

/** For useClass: instantiated inside EtcdLockModule, injecting from its `imports`. */
@Injectable()
class LockOptionsFromConfig {
  constructor(@Inject(CONFIG) private readonly config: AppConfig) {}

  createEtcdLockOptions(): EtcdLockModuleOptions {
    return { etcd: { hosts: this.config.hosts }, prefix: this.config.prefix, ttl: 1 };
  }
}

/** For useExisting: a factory provider that lives (and is exported) in the user's own module. */
@Injectable()
class SharedLockOptions {
  calls = 0;

  constructor(@Inject(CONFIG) private readonly config: AppConfig) {}

  async createEtcdLockOptions(): Promise<EtcdLockModuleOptions> {
    this.calls++;
    return { etcd: { hosts: this.config.hosts }, prefix: this.config.prefix, ttl: 1 };
  }
}

@Module({})
class SharedOptionsModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: SharedOptionsModule,
      imports: [ConfigModule.register(config)],
      providers: [SharedLockOptions],
      exports: [SharedLockOptions],
    };
  }
}

/** A feature module that does NOT import EtcdLockModule but injects LockService. */
@Injectable()
class ReportsService {
  constructor(@Inject(LockService) readonly locks: LockService) {}

  build(name: string): Promise<string> {
    return this.locks.withLock(`report:${name}`, lock => `${lock.key}#${lock.token}`);
  }
}

@Controller('reports')
class ReportsController {
  constructor(@Inject(LockService) readonly locks: LockService) {}
}

@Module({ providers: [ReportsService], controllers: [ReportsController] })
class ReportsModule {}

@Controller('c')
class ContendedController {
  @Post(':id/fail')
  @WithLock('c:<<id>>', { onContention: 'fail' })
  fail(@Param('id') id: string): string {
    return `c ${id}`;
  }

  @Post(':id/wait')
  @WithLock('t:<<id>>', { waitTimeout: 100 })
  wait(@Param('id') id: string): string {
    return `t ${id}`;
  }
}

// ---- helpers -----------------------------------------------------------------------------

const hosts = () => etcd.endpoints;

type Imports = NonNullable<ModuleMetadata['imports']>;

async function boot(imports: Imports, controllers: Type[] = []): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports, controllers }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  apps.push(app);
  await app.init();
  return app;
}

/** Bootstraps (compile + init) and returns the error it fails with; closes whatever was created. */
async function bootstrapError(imports: Imports, controllers: Type[] = []): Promise<Error> {
  let app: INestApplication | undefined;
  try {
    const moduleRef = await Test.createTestingModule({ imports, controllers }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  } catch (err) {
    return err as Error;
  } finally {
    await app?.close();
  }
  throw new Error('expected the bootstrap to fail');
}

async function closeApp(app: INestApplication): Promise<void> {
  await app.close();
  apps.splice(apps.indexOf(app), 1);
}

async function queueKeys(prefix: string): Promise<string[]> {
  return lockKeys(admin, prefix);
}

/** Acquires through the app's LockService and checks the queue key lives under `prefix`. */
async function expectWorkingWithPrefix(app: INestApplication, prefix: string): Promise<void> {
  const locks = app.get(LockService);
  const lock = await locks.acquire('probe');
  try {
    expect(lock.isHeld).toBe(true);
    const keys = await queueKeys(PREFIX);
    expect(keys).toHaveLength(1);
    expect(keys[0].startsWith(`${prefix}probe/`)).toBe(true);
    expect(await locks.isLocked('probe')).toBe(true);
  } finally {
    await lock.release();
  }
  expect(await queueKeys(PREFIX)).toEqual([]);
}

async function closedPort(): Promise<number> {
  return new Promise(resolve => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// ---- tests -------------------------------------------------------------------------------

describe('forRoot', () => {
  it('provides a working LockService (acquire, release)', async () => {
    const app = await boot([EtcdLockModule.forRoot({ etcd: { hosts: hosts() }, prefix: `${PREFIX}root/`, ttl: 1 })]);
    const locks = app.get(LockService);
    expect(locks).toBeInstanceOf(LockService);
    const first = await locks.acquire('a');
    expect(await locks.tryAcquire('a')).toBeNull(); // another async context: really held in etcd
    await first.release();
    const second = await locks.acquire('a');
    expect(second.token).toBeGreaterThan(first.token);
    await second.release();
    expect(await locks.isLocked('a')).toBe(false);
    await closeApp(app);
  });
});

describe('forRootAsync', () => {
  it('useFactory with imports and inject', async () => {
    const prefix = `${PREFIX}factory/`;
    const app = await boot([
      EtcdLockModule.forRootAsync({
        imports: [ConfigModule.register({ hosts: hosts(), prefix })],
        inject: [CONFIG],
        useFactory: (config: AppConfig) => ({ etcd: { hosts: config.hosts }, prefix: config.prefix, ttl: 1 }),
      }),
    ]);
    await expectWorkingWithPrefix(app, prefix);
    await closeApp(app);
  });

  it('useClass: a class implementing createEtcdLockOptions()', async () => {
    const prefix = `${PREFIX}class/`;
    const app = await boot([
      EtcdLockModule.forRootAsync({ imports: [ConfigModule.register({ hosts: hosts(), prefix })], useClass: LockOptionsFromConfig }),
    ]);
    await expectWorkingWithPrefix(app, prefix);
    await closeApp(app);
  });

  it('useExisting: an options factory exported from an imported module', async () => {
    const prefix = `${PREFIX}existing/`;
    const shared = SharedOptionsModule.register({ hosts: hosts(), prefix });
    const app = await boot([shared, EtcdLockModule.forRootAsync({ imports: [shared], useExisting: SharedLockOptions })]);
    await expectWorkingWithPrefix(app, prefix);
    // the instance living in the user's module was asked, once; the lock module made no copy
    expect(app.get(SharedLockOptions, { strict: false }).calls).toBe(1);
    await closeApp(app);
  });
});

describe('isGlobal', () => {
  it('a module that does not import EtcdLockModule injects LockService when isGlobal is true', async () => {
    const app = await boot([EtcdLockModule.forRoot({ etcd: { hosts: hosts() }, prefix: `${PREFIX}global/`, ttl: 1, isGlobal: true }), ReportsModule]);
    const reports = app.get(ReportsService);
    const controller = app.get(ReportsController);
    expect(reports.locks).toBe(app.get(LockService));
    expect(controller.locks).toBe(app.get(LockService));
    expect(await reports.build('daily')).toMatch(/^report:daily#\d+$/);
    await closeApp(app);
  });

  it('without isGlobal, that module fails to bootstrap: LockService is not in its scope', async () => {
    const err = await bootstrapError([EtcdLockModule.forRoot({ etcd: { hosts: hosts() }, prefix: `${PREFIX}global/`, ttl: 1 }), ReportsModule]);
    expect(err.message).toMatch(/LockService/);
    expect(err.message).toMatch(/ReportsModule/);
  });
});

describe('options are validated at startup', () => {
  it('ttl: 1.5 → LockConfigurationError naming "ttl"', async () => {
    const err = await bootstrapError([EtcdLockModule.forRoot({ etcd: { hosts: hosts() }, prefix: PREFIX, ttl: 1.5 })]);
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect(err.message).toContain('"ttl"');
  });

  it('conflictStatus: 200 → LockConfigurationError naming conflictStatus', async () => {
    const err = await bootstrapError([EtcdLockModule.forRoot({ etcd: { hosts: hosts() }, prefix: PREFIX, ttl: 1, conflictStatus: 200 })]);
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect(err.message).toContain('conflictStatus');
  });

  it('waitTimeout: -1 → LockConfigurationError naming waitTimeout', async () => {
    const err = await bootstrapError([EtcdLockModule.forRoot({ etcd: { hosts: hosts() }, prefix: PREFIX, ttl: 1, waitTimeout: -1 })]);
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect(err.message).toContain('waitTimeout');
  });

  it('an invalid option from forRootAsync is refused the same way', async () => {
    const err = await bootstrapError([
      EtcdLockModule.forRootAsync({ useFactory: async () => ({ etcd: { hosts: hosts() }, prefix: PREFIX, ttl: 0 }) }),
    ]);
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect(err.message).toContain('"ttl"');
  });

  it('numbers as strings, as the environment gives them (ttl, waitTimeout, connectTimeout, conflictStatus), are taken as whole numbers', async () => {
    const env = { LOCK_TTL: '2', LOCK_WAIT_MS: '100', ETCD_CONNECT_MS: '2000', LOCK_CONFLICT_STATUS: '423' };
    const app = await boot(
      [
        EtcdLockModule.forRootAsync({
          imports: [ConfigModule.register({ hosts: hosts(), prefix: `${PREFIX}env/` })],
          inject: [CONFIG],
          useFactory: (config: AppConfig) => ({
            etcd: { hosts: config.hosts },
            prefix: config.prefix,
            ttl: env.LOCK_TTL,
            waitTimeout: env.LOCK_WAIT_MS,
            connectTimeout: env.ETCD_CONNECT_MS,
            conflictStatus: env.LOCK_CONFLICT_STATUS,
          }),
        }),
      ],
      [ContendedController],
    );
    const locks = app.get(LockService);
    const held = await locks.acquire('t:env');
    try {
      expect((await locks.getLockInfo('t:env'))!.holder!.ttlRemaining).toBeLessThanOrEqual(2); // ttl '2', not the default 10
      const res = await request(app.getHttpServer()).post('/c/env/wait'); // waits the module's waitTimeout, '100'
      expect(res.status).toBe(423);
      expect(res.body).toMatchObject({ statusCode: 423, error: 'LOCK_TIMEOUT', key: 't:env' });
    } finally {
      await held.release();
    }
    await closeApp(app);
  });

  it('a string that is no whole number is refused, showing it as given', async () => {
    const err = await bootstrapError([EtcdLockModule.forRootAsync({ useFactory: () => ({ etcd: { hosts: hosts() }, prefix: PREFIX, ttl: '10s' }) })]);
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect(err.message).toMatch(/"ttl".*got "10s"/);
  });

  it('a misspelt option is refused at startup, naming the one meant', async () => {
    const options = { etcd: { hosts: hosts() }, prefix: PREFIX, tll: 2 }; // not a literal: TypeScript would catch the typo in one
    const err = await bootstrapError([EtcdLockModule.forRoot(options)]);
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect(err.message).toMatch(/^Unknown option "tll": did you mean "ttl"\?/);
  });

  it('an unreachable etcd → app.init() rejects with EtcdUnavailableError within connectTimeout', async () => {
    const port = await closedPort();
    const moduleRef = await Test.createTestingModule({
      imports: [EtcdLockModule.forRoot({ etcd: { hosts: `http://127.0.0.1:${port}` }, prefix: PREFIX, ttl: 1, connectTimeout: 1_000 })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      const err = await app.init().then(
        () => new Error('expected app.init() to reject'),
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(EtcdUnavailableError);
      expect((err as EtcdUnavailableError).code).toBe('ETCD_UNAVAILABLE');
      expect(err.message).toContain(`127.0.0.1:${port}`);
    } finally {
      await app.close();
    }
  }, 15_000); // bounded: connectTimeout is 1 s
});

describe('a supplied client', () => {
  it('is used, and not closed by app.close()', async () => {
    const client = new Etcd3({ hosts: hosts() });
    clients.push(client);
    const prefix = `${PREFIX}client/`;
    const app = await boot([EtcdLockModule.forRoot({ client, prefix, ttl: 1 })]);
    const lock = await app.get(LockService).acquire('mine');
    expect(await queueKeys(prefix)).toHaveLength(1);
    await closeApp(app); // releases the lock (revokes the lease) but leaves the client open
    expect(lock.isHeld).toBe(false);
    expect(await queueKeys(prefix)).toEqual([]);
    expect((await admin.leaseClient.leaseLeases()).leases).toEqual([]);
    await client.put(`${PREFIX}client-data`).value('still open');
    expect(await client.get(`${PREFIX}client-data`).string()).toBe('still open');
    await client.delete().key(`${PREFIX}client-data`);
    client.close();
    clients.splice(clients.indexOf(client), 1);
  });
});

describe('app.close()', () => {
  it('releases held locks at once: a waiter elsewhere gets the lock long before the TTL', async () => {
    const prefix = `${PREFIX}shutdown/`;
    const appA = await boot([EtcdLockModule.forRoot({ etcd: { hosts: hosts() }, prefix, ttl: 30 })]);
    const eventsA: LockEvent[] = [];
    let completed = false;
    appA.get(LockService).events$.subscribe({ next: e => eventsA.push(e), complete: () => (completed = true) });
    const held = await appA.get(LockService).acquire('shutdown-lock');

    const other = new LockService({ etcd: { hosts: hosts() }, prefix, ttl: 1 });
    services.push(other);
    const otherEvents: LockEvent[] = [];
    other.events$.subscribe(e => otherEvents.push(e));
    const waiter = other.acquire('shutdown-lock', { waitTimeout: 3_000 }); // far below A's 30 s TTL
    for (const end = Date.now() + 5_000; !otherEvents.some(e => e.type === 'waiting'); await sleep(5)) {
      if (Date.now() > end) throw new Error('the waiter never queued');
    }

    await closeApp(appA);
    const next = await waiter; // a LockTimeoutError here means close() did not free the key
    expect(next.isHeld).toBe(true);
    expect(next.token).toBeGreaterThan(held.token);
    expect(held.isHeld).toBe(false);
    expect(eventsA.filter(e => e.key === 'shutdown-lock').map(e => e.type)).toEqual(['acquired', 'released']);
    expect(eventsA.at(-1)).toMatchObject({ type: 'released', key: 'shutdown-lock', token: held.token, origin: 'local' });
    expect(completed).toBe(true);
    await next.release();
  });
});

describe('conflictStatus', () => {
  let app: INestApplication;
  let locks: LockService;

  beforeAll(async () => {
    app = await boot([EtcdLockModule.forRoot({ etcd: { hosts: hosts() }, prefix: `${PREFIX}http/`, ttl: 1, conflictStatus: 423 })], [ContendedController]);
    locks = app.get(LockService);
  });

  it("423 with LOCK_ALREADY_HELD when onContention is 'fail' and the lock is held elsewhere", async () => {
    const held = await locks.acquire('c:1');
    try {
      const res = await request(app.getHttpServer()).post('/c/1/fail');
      expect(res.status).toBe(423);
      expect(res.body).toMatchObject({ statusCode: 423, error: 'LOCK_ALREADY_HELD', key: 'c:1' });
    } finally {
      await held.release();
    }
    const free = await request(app.getHttpServer()).post('/c/1/fail');
    expect(free.status).toBe(201);
    expect(free.text).toBe('c 1');
  });

  it('423 with LOCK_TIMEOUT when waitTimeout passes while the lock is held', async () => {
    const held = await locks.acquire('t:1');
    try {
      const res = await request(app.getHttpServer()).post('/c/1/wait');
      expect(res.status).toBe(423);
      expect(res.body).toMatchObject({ statusCode: 423, error: 'LOCK_TIMEOUT', key: 't:1' });
    } finally {
      await held.release();
    }
    const free = await request(app.getHttpServer()).post('/c/1/wait');
    expect(free.status).toBe(201);
    expect(free.text).toBe('t 1');
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases once everything is closed', async () => {
    await Promise.all(apps.map(a => a.close()));
    apps.length = 0;
    await Promise.all(services.map(s => s.close()));
    await expectEtcdClean(admin, PREFIX);
  });
});
