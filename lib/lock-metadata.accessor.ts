import { Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { OnLockEventMetadata } from './decorators/on-lock-event.decorator.js';
import type { WithLockMetadata } from './decorators/with-lock.decorator.js';
import { ON_LOCK_EVENT_METADATA, WITH_LOCK_METADATA } from './etcd-lock.constants.js';

/** Reads this library's metadata from methods; the one place that knows the keys. */
@Injectable()
export class LockMetadataAccessor {
  constructor(@Inject(Reflector) private readonly reflector: Reflector) {}

  getWithLock(method: unknown): WithLockMetadata | undefined {
    return typeof method === 'function' ? this.reflector.get(WITH_LOCK_METADATA, method) : undefined;
  }

  getOnLockEvents(method: unknown): OnLockEventMetadata[] {
    return (typeof method === 'function' && this.reflector.get(ON_LOCK_EVENT_METADATA, method)) || [];
  }
}
