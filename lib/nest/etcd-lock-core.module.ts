import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR, DiscoveryModule } from '@nestjs/core';
import { GATEWAYS_PREPARED } from './etcd-lock.constants.js';
import { LockEventsExplorer } from './lock-events.explorer.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockServiceRegistry } from './lock-service.registry.js';
import { ShutdownHooksChecker } from './shutdown-hooks.checker.js';
import { WithLockExplorer } from './with-lock.explorer.js';
import { WithLockInterceptor } from './with-lock.interceptor.js';
import { WithLockRunner } from './with-lock.runner.js';

/**
 * What an app needs once, however many EtcdLockModule instances it imports: the registry of
 * their lock services, and the machinery of @WithLock and @OnLockEvent, which picks the
 * service a decorator names. Imported by every instance; Nest creates it once.
 */
@Global()
@Module({
  imports: [DiscoveryModule],
  providers: [
    LockServiceRegistry,
    LockMetadataAccessor,
    WithLockRunner,
    WithLockExplorer,
    {
      // must run while providers are created: app.init() registers gateways before any onModuleInit
      provide: GATEWAYS_PREPARED,
      useFactory: (explorer: WithLockExplorer) => explorer.prepareGateways(),
      inject: [WithLockExplorer],
    },
    LockEventsExplorer,
    ShutdownHooksChecker,
    { provide: APP_INTERCEPTOR, useClass: WithLockInterceptor },
  ],
  exports: [LockServiceRegistry],
})
export class EtcdLockCoreModule {}
