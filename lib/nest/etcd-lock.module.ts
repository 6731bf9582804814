import { Logger, Module, type DynamicModule } from '@nestjs/common';
import { DEFAULT_LOCK_INSTANCE, LOG_CONTEXT } from './etcd-lock.constants.js';
import { EtcdLockCoreModule } from './etcd-lock-core.module.js';
import { ASYNC_OPTIONS_TYPE, ConfigurableModuleClass, MODULE_OPTIONS_TOKEN, OPTIONS_TYPE } from './etcd-lock.module-definition.js';
import { resolveConflictStatus } from './with-lock.options.js';
import { getLockServiceToken } from './decorators/inject-lock-service.decorator.js';
import type { EtcdLockModuleOptions } from '../interfaces/etcd-lock-module-options.interface.js';
import type { LockLogger } from '../interfaces/lock-logger.interface.js';
import { LockServiceRegistry } from './lock-service.registry.js';
import { LockService } from '../engine/lock.service.js';

/**
 * Distributed locks on etcd for a Nest app: provides LockService, runs @WithLock methods
 * under their lock and @OnLockEvent handlers on lock events.
 *
 * `EtcdLockModule.forRoot({ etcd: { hosts } })` or `forRootAsync({ imports, inject, useFactory })`
 * (also useClass / useExisting), with `isGlobal` to skip importing it in every module.
 * Several instances (other clusters or prefixes) each take a `name`: inject one with
 * `@InjectLockService(name)` and pick it with `@WithLock(key, { lock: name })` and
 * `@OnLockEvent(type, { lock: name })`; the instance without a name is the default.
 * On shutdown (`app.enableShutdownHooks()` or `app.close()`) every lock is released, with
 * one lease revoke, before the etcd client the module created is closed; a client you
 * passed as `client` is never closed. It logs through Nest's Logger (context 'EtcdLockModule')
 * unless given another `logger` or `false`, and warns at startup when the app has no SIGTERM
 * handler (`enableShutdownHooks()` not called) and so would not release its locks.
 * @publicApi
 */
@Module({})
export class EtcdLockModule extends ConfigurableModuleClass {
  static forRoot(options: typeof OPTIONS_TYPE): DynamicModule {
    return instanceModule(super.forRoot(options), options.name);
  }

  static forRootAsync(options: typeof ASYNC_OPTIONS_TYPE): DynamicModule {
    return instanceModule(super.forRootAsync(options), options.name);
  }
}

/** Adds an instance's LockService (under its name's token) and its registration to the generated module. */
function instanceModule(base: DynamicModule, name = DEFAULT_LOCK_INSTANCE): DynamicModule {
  const token = getLockServiceToken(name);
  const registration = `${String(token)}:registered`;
  return {
    ...base,
    imports: [...(base.imports ?? []), EtcdLockCoreModule],
    providers: [
      ...(base.providers ?? []),
      { provide: token, useFactory: (options: EtcdLockModuleOptions) => new LockService({ ...options, logger: moduleLogger(options) }), inject: [MODULE_OPTIONS_TOKEN] },
      {
        provide: registration,
        useFactory: (registry: LockServiceRegistry, service: LockService, options: EtcdLockModuleOptions) =>
          registry.add(name, { service, conflictStatus: resolveConflictStatus(options.conflictStatus), logger: moduleLogger(options) || undefined }),
        inject: [LockServiceRegistry, token, MODULE_OPTIONS_TOKEN],
      },
    ],
    exports: [...(base.exports ?? []), token],
  };
}

/** An app logs through Nest's Logger unless told otherwise: unlike a bare LockService, a module has a logger at hand. */
function moduleLogger(options: EtcdLockModuleOptions): LockLogger | false {
  return options.logger ?? new Logger(LOG_CONTEXT);
}
