import { SetMetadata } from '@nestjs/common';
import { WITH_LOCK_METADATA } from '../etcd-lock.constants.js';
import type { WithLockOptions } from '../interfaces/with-lock-options.interface.js';
import type { LockKeySource } from '../lock-key.template.js';

/** What @WithLock stores on a method. */
export interface WithLockMetadata {
  readonly key: LockKeySource;
  readonly options: WithLockOptions;
}

/**
 * Runs the method holding the distributed lock `key`: on controller, gateway and
 * microservice handlers (through the module's interceptor, until the response stream
 * ends) and on methods of any singleton provider (wrapped at bootstrap).
 *
 * `key` is a template such as `'order:<<id>>'` (a parameter name, an index `<<0>>` or a path
 * `<<order.customer.id>>`; on HTTP handlers route params, query, body, or `headers.`/`user.`)
 * or a function of the arguments. Inside the method, `LockService.current()` is the lock.
 * @publicApi
 */
export const WithLock = (key: LockKeySource, options: WithLockOptions = {}): MethodDecorator =>
  SetMetadata<string, WithLockMetadata>(WITH_LOCK_METADATA, { key, options });
