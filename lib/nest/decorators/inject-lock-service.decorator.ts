import { Inject } from '@nestjs/common';
import { DEFAULT_LOCK_INSTANCE } from '../etcd-lock.constants.js';
import { LockService } from '../../engine/lock.service.js';

/** The injection token of the LockService of the EtcdLockModule instance named `name`. @publicApi */
export function getLockServiceToken(name: string = DEFAULT_LOCK_INSTANCE): string | typeof LockService {
  return name === DEFAULT_LOCK_INSTANCE ? LockService : `EtcdLockService:${name}`;
}

/**
 * Injects the LockService of the EtcdLockModule instance named `name`
 * (`forRoot({ name, … })`); without a name, the default instance's (like `LockService` itself).
 * @publicApi
 */
export const InjectLockService = (name?: string): PropertyDecorator & ParameterDecorator => Inject(getLockServiceToken(name));
