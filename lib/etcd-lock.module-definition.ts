import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { EtcdLockModuleOptions } from './interfaces/etcd-lock-module-options.interface.js';

/** Extras of forRoot/forRootAsync beside the options themselves. */
export interface EtcdLockModuleExtras {
  /** Make LockService injectable everywhere without importing the module again. @default false */
  isGlobal?: boolean;
}

export const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN, OPTIONS_TYPE, ASYNC_OPTIONS_TYPE } =
  new ConfigurableModuleBuilder<EtcdLockModuleOptions>({ moduleName: 'EtcdLock' })
    .setClassMethodName('forRoot')
    .setFactoryMethodName('createEtcdLockOptions')
    .setExtras<EtcdLockModuleExtras>({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
    .build();
