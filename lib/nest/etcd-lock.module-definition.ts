import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { EtcdLockModuleOptions } from '../interfaces/etcd-lock-module-options.interface.js';

/** Extras of forRoot/forRootAsync beside the options themselves. */
export interface EtcdLockModuleExtras {
  /** Make LockService injectable everywhere without importing the module again. @default false */
  isGlobal?: boolean;
  /**
   * Names this instance, for an app with several (other etcd clusters or prefixes): inject
   * its service with `@InjectLockService(name)`, pick it with the decorators' `lock` option.
   * @default 'default', injected as LockService
   */
  name?: string;
}

export const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN, OPTIONS_TYPE, ASYNC_OPTIONS_TYPE } =
  new ConfigurableModuleBuilder<EtcdLockModuleOptions>({ moduleName: 'EtcdLock' })
    .setClassMethodName('forRoot')
    .setFactoryMethodName('createEtcdLockOptions')
    .setExtras<EtcdLockModuleExtras>({ isGlobal: false, name: undefined }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
    .build();
