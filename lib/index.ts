export * from './core/lock.errors.js';
export type { LockHandle } from './core/lock.handle.js';
export { MAX_LOCK_KEY_LENGTH } from './core/lock-key.js';
export * from './decorators/index.js';
export type { EtcdLockModuleExtras } from './etcd-lock.module-definition.js';
export { EtcdLockModule } from './etcd-lock.module.js';
export * from './interfaces/index.js';
export type { LockKeySource } from './lock-key.template.js';
export { LockService } from './lock.service.js';
