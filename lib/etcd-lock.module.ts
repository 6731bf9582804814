import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR, DiscoveryModule } from '@nestjs/core';
import { GATEWAYS_PREPARED } from './etcd-lock.constants.js';
import { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } from './etcd-lock.module-definition.js';
import type { EtcdLockModuleOptions } from './interfaces/etcd-lock-module-options.interface.js';
import { LockEventsExplorer } from './lock-events.explorer.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockService } from './lock.service.js';
import { WithLockExplorer } from './with-lock.explorer.js';
import { WithLockInterceptor } from './with-lock.interceptor.js';
import { WithLockRunner } from './with-lock.runner.js';

/**
 * Distributed locks on etcd for a Nest app: provides LockService, runs @WithLock methods
 * under their lock and @OnLockEvent handlers on lock events.
 *
 * `EtcdLockModule.forRoot({ etcd: { hosts } })` or `forRootAsync({ imports, inject, useFactory })`
 * (also useClass / useExisting), with `isGlobal` to skip importing it in every module.
 * On shutdown (`app.enableShutdownHooks()` or `app.close()`) every lock is released, with
 * one lease revoke, before the etcd client the module created is closed; a client you
 * passed as `client` is never closed.
 * @publicApi
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: LockService,
      useFactory: (options: EtcdLockModuleOptions) => new LockService(options),
      inject: [MODULE_OPTIONS_TOKEN],
    },
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
    { provide: APP_INTERCEPTOR, useClass: WithLockInterceptor },
  ],
  exports: [LockService],
})
export class EtcdLockModule extends ConfigurableModuleClass {}
