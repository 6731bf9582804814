import { applyDecorators, SetMetadata } from '@nestjs/common';
import { WITH_LOCK_METADATA } from '../etcd-lock.constants.js';
import type { WithLockOptions } from '../../interfaces/with-lock-options.interface.js';
import type { LockKeySource } from '../lock-key.template.js';
import { runUnderLock } from '../with-lock.method.js';

/** What @WithLock stores on a method. */
export interface WithLockMetadata {
  readonly key: LockKeySource;
  readonly options: WithLockOptions;
}

/**
 * Runs the method holding the distributed lock `key`: on controller, gateway and
 * microservice handlers (through the module's interceptor, until the response stream
 * ends) and on methods of any provider.
 *
 * The method is locked however it is reached (a `@Cron`, `@OnEvent` or queue processor that
 * took it before the app finished bootstrapping included); called on an instance that no app
 * with EtcdLockModule owns, it rejects rather than run unlocked (see `withoutLocks` for unit
 * tests).
 *
 * `key` is a template such as `'order:<<id>>'` (a parameter name, an index `<<0>>` or a path
 * `<<order.customer.id>>`; on HTTP handlers a route param, or `query.`/`body.`/`headers.`/`user.`)
 * or a function of the arguments. Inside the method, `LockService.current()` is the lock.
 * @publicApi
 */
export const WithLock =
  (key: LockKeySource, options: WithLockOptions = {}): MethodDecorator =>
  (target, method, descriptor) => {
    // metrics name the lock by its template, never by a key: one series per decorated method at most
    const telemetryName = options.telemetryName ?? (typeof key === 'string' ? key : `${target.constructor.name}.${String(method)}`);
    // the metadata first: the wrapper copies it
    applyDecorators(SetMetadata<string, WithLockMetadata>(WITH_LOCK_METADATA, { key, options: { ...options, telemetryName } }), runUnderLock())(target, method, descriptor);
  };
