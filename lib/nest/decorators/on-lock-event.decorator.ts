import { ON_LOCK_EVENT_METADATA } from '../etcd-lock.constants.js';
import type { LockEventType } from '../../interfaces/lock-event.interface.js';
import type { OnLockEventOptions } from '../../interfaces/on-lock-event-options.interface.js';

/** What @OnLockEvent stores on a method (a list: the decorator stacks). */
export interface OnLockEventMetadata {
  readonly type: LockEventType | readonly LockEventType[] | '*';
  readonly options: OnLockEventOptions;
}

/**
 * Calls the method with every matching `LockEvent` of the LockService, e.g.
 * `@OnLockEvent('lost')` or `@OnLockEvent('*', { key: 'order:*' })`. Handlers run after the
 * lock operation, never delaying it; one that throws is logged and the stream goes on.
 * @publicApi
 */
export const OnLockEvent =
  (type: OnLockEventMetadata['type'], options: OnLockEventOptions = {}): MethodDecorator =>
  (_target, _property, descriptor) => {
    const stacked: OnLockEventMetadata[] = Reflect.getMetadata(ON_LOCK_EVENT_METADATA, descriptor.value as object) ?? [];
    Reflect.defineMetadata(ON_LOCK_EVENT_METADATA, [...stacked, { type, options }], descriptor.value as object);
    return descriptor;
  };
