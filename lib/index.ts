export * from './core/lock.errors.js';
export type { LockHandle } from './core/lock.handle.js';
export { MAX_LOCK_KEY_LENGTH } from './core/lock-key.js';
export * from './interfaces/index.js';
export { LockService } from './lock.service.js';
