import { Inject, Injectable } from '@nestjs/common';
import { Observable } from 'rxjs';
import { LockAlreadyHeldError, LockLostError } from '../common/lock.errors.js';
import type { LockHandle } from '../engine/lock.handle.js';
import type { WithLockOptions } from '../interfaces/with-lock-options.interface.js';
import { LockServiceRegistry } from './lock-service.registry.js';
import type { LockService } from '../engine/lock.service.js';

/**
 * Carries out @WithLock's contention policy, with the lock service its `lock` option names;
 * shared by the interceptor and the provider wrapper.
 */
@Injectable()
export class WithLockRunner {
  constructor(@Inject(LockServiceRegistry) private readonly registry: LockServiceRegistry) {}

  /** Runs a provider method under the lock; `undefined` without running it when skipped. */
  async run<T>(key: string, options: WithLockOptions, method: () => T | Promise<T>): Promise<T | undefined> {
    const locks = this.locksFor(options);
    const lock = await this.take(locks, key, options);
    return lock ? locks.holdDuring(lock, method) : undefined;
  }

  /**
   * Runs a handler under the lock, held until its stream completes, errors or is
   * unsubscribed (streamed and SSE responses included). A lock lost meanwhile turns the
   * completion into a LockLostError.
   */
  observe<T>(key: string, options: WithLockOptions, handler: () => Observable<T>): Observable<T | undefined> {
    const locks = this.locksFor(options);
    return new Observable<T | undefined>(subscriber => {
      let lock: LockHandle | null | undefined;
      let closed = false;
      let inner: { unsubscribe(): void } | undefined;
      this.take(locks, key, options).then(
        taken => {
          lock = taken;
          if (closed) return void taken?.release(); // unsubscribed while waiting
          if (!taken) {
            subscriber.next(undefined); // skipped: the handler does not run
            return subscriber.complete();
          }
          // the handler runs in the lock's async scope: current() and reentrancy work inside
          inner = locks.enterScope(taken, () =>
            handler().subscribe({
              next: value => subscriber.next(value),
              error: err => subscriber.error(lostOr(taken, err)),
              // release first: the release itself may find the lock lost
              complete: () =>
                void taken.release().then(() =>
                  taken.signal.reason instanceof LockLostError ? subscriber.error(taken.signal.reason) : subscriber.complete(),
                ),
            }),
          );
        },
        err => subscriber.error(err),
      );
      return () => {
        closed = true;
        inner?.unsubscribe();
        void lock?.release();
      };
    });
  }

  private locksFor(options: WithLockOptions): LockService {
    return this.registry.get(options.lock, '@WithLock').service;
  }

  private async take(locks: LockService, key: string, { onContention = 'wait', lock: _name, ...options }: WithLockOptions): Promise<LockHandle | null> {
    if (onContention === 'wait') return locks.acquire(key, options);
    const { waitTimeout, ...tryOptions } = options; // tryAcquire never waits
    const lock = await locks.tryAcquire(key, tryOptions);
    if (lock) return lock;
    if (onContention === 'fail') throw new LockAlreadyHeldError(key, 'another-holder');
    locks.reportSkipped(key);
    return null;
  }
}

/** The handler's error, unless the lock was lost: then the loss, with the error as its cause. */
function lostOr(lock: LockHandle, err: unknown): unknown {
  const lost = lock.signal.reason;
  return lost instanceof LockLostError && err !== lost ? new LockLostError(lost.key, lost.reason, { cause: err }) : err;
}
