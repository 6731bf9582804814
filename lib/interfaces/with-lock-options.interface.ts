import type { AcquireOptions } from './acquire-options.interface.js';

/**
 * What @WithLock does when the lock is held by someone else.
 * - `wait`: queue (FIFO) up to `waitTimeout`, then LockTimeoutError (409 over HTTP);
 * - `fail`: LockAlreadyHeldError at once (409 over HTTP);
 * - `skip`: return `undefined` without running the method, and emit `skipped`.
 * @publicApi
 */
export type LockContention = 'wait' | 'fail' | 'skip';

/**
 * Options of @WithLock: those of `LockService.acquire` (waitTimeout, reentrant, maxHold,
 * minHold, retry, mode, limit, fair, autoRenew, ttl) and what to do on contention.
 * @publicApi
 */
export interface WithLockOptions extends Omit<AcquireOptions, 'signal'> {
  /** @default 'wait' */
  onContention?: LockContention;
  /** The EtcdLockModule instance whose lock service takes the lock (`forRoot({ name })`). @default the default instance */
  lock?: string;
}
