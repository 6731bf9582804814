import { Module, type DynamicModule } from '@nestjs/common';
import { MemoryBackend } from '../backends/memory/memory.backend.js';
import { DEFAULT_PREFIX } from '../engine/lock-options.js';
import { LockService } from '../engine/lock.service.js';
import type { EtcdLockModuleOptions } from '../interfaces/etcd-lock-module-options.interface.js';
import { EtcdLockModule } from '../nest/etcd-lock.module.js';
import { ANOTHER_PROCESS, LockTesting } from './lock-testing.js';

/** Options of LockTestingModule.forRoot: EtcdLockModule's, without where the locks are kept. */
export type LockTestingModuleOptions = Omit<EtcdLockModuleOptions, 'etcd' | 'client' | 'backend'> & {
  /** The EtcdLockModule instance name the code under test uses (`@InjectLockService(name)`, `{ lock: name }`). */
  name?: string;
};

/**
 * EtcdLockModule for unit tests, on a MemoryBackend of its own: `@WithLock`, `LockService` and
 * `@OnLockEvent` work as in the app, with no etcd. Provides `LockTesting` to drive it.
 * Global, like an app's `isGlobal` lock module.
 *
 * `Test.createTestingModule({ imports: [LockTestingModule.forRoot()], providers: [PaymentsService] })`
 * @publicApi
 */
@Module({})
export class LockTestingModule {
  static forRoot(options: LockTestingModuleOptions = {}): DynamicModule {
    const { name, ...lockOptions } = options;
    const backend = new MemoryBackend();
    const prefix = lockOptions.prefix ?? DEFAULT_PREFIX;
    return {
      module: LockTestingModule,
      global: true,
      imports: [EtcdLockModule.forRoot({ logger: false, ...lockOptions, backend, name, isGlobal: true })],
      providers: [
        { provide: MemoryBackend, useValue: backend },
        { provide: OtherProcess, useFactory: () => new OtherProcess({ backend, prefix, ownerId: ANOTHER_PROCESS }) },
        { provide: LockTesting, useFactory: (other: OtherProcess) => new LockTesting(backend, other, prefix), inject: [OtherProcess] },
      ],
      exports: [MemoryBackend, LockTesting],
    };
  }
}

/** The LockService LockTesting plays another process with; Nest closes it with the app, as it does the app's. */
class OtherProcess extends LockService {}
