import { Injectable } from '@nestjs/common';
import { LockConfigurationError } from '../common/lock.errors.js';
import { DEFAULT_LOCK_INSTANCE } from './etcd-lock.constants.js';
import { DUPLICATE_LOCK_INSTANCE, UNKNOWN_LOCK_INSTANCE } from './etcd-lock.messages.js';
import { DEFAULT_CONFLICT_STATUS } from './with-lock.options.js';
import type { LockLogger } from '../interfaces/lock-logger.interface.js';
import type { LockService } from '../engine/lock.service.js';

/** One EtcdLockModule instance: its service, the HTTP status of a lock not acquired, its logger (none: `logger: false`). */
export interface LockInstance {
  readonly service: LockService;
  readonly conflictStatus: number;
  readonly logger?: LockLogger;
}

/**
 * The lock services of an app by name, filled in as each EtcdLockModule instance creates its
 * service; the decorators' `lock` option names one. Shared by all instances (one per app).
 */
@Injectable()
export class LockServiceRegistry {
  private readonly instances = new Map<string, LockInstance>();

  add(name: string, instance: LockInstance): LockInstance {
    if (this.instances.has(name)) throw new LockConfigurationError(DUPLICATE_LOCK_INSTANCE(name));
    this.instances.set(name, instance);
    return instance;
  }

  /**
   * The status of a lock not acquired where the error does not say which instance it came
   * from (the exception filters): the default instance's `conflictStatus`, else 409.
   */
  defaultConflictStatus(): number {
    return this.instances.get(DEFAULT_LOCK_INSTANCE)?.conflictStatus ?? DEFAULT_CONFLICT_STATUS;
  }

  /** Every instance, in the order they were created. */
  all(): LockInstance[] {
    return [...this.instances.values()];
  }

  /** The instance named `name` (the default one without a name); `where` names the caller in the error. */
  get(name: string | undefined, where: string): LockInstance {
    const instance = this.instances.get(name ?? DEFAULT_LOCK_INSTANCE);
    if (!instance) throw new LockConfigurationError(UNKNOWN_LOCK_INSTANCE(name ?? DEFAULT_LOCK_INSTANCE, where, [...this.instances.keys()]));
    return instance;
  }
}
