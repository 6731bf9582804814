import { HttpException, HttpStatus } from '@nestjs/common';
import { LockError } from './core/lock.errors.js';

/**
 * The HTTP answer for a lock error of a @WithLock handler: not acquired (timeout, or held
 * with onContention 'fail') → `conflictStatus` (409), invalid key → 400, with a JSON body
 * naming the code and the key. Other errors pass unchanged. The LockError stays as `cause`.
 */
export function toHttpException(err: unknown, conflictStatus: number): unknown {
  if (!(err instanceof LockError)) return err;
  const status =
    err.code === 'INVALID_KEY'
      ? HttpStatus.BAD_REQUEST
      : err.code === 'LOCK_TIMEOUT' || err.code === 'LOCK_ALREADY_HELD'
        ? conflictStatus
        : undefined;
  if (status === undefined) return err;
  const key = (err as { key?: string }).key;
  return new HttpException({ statusCode: status, error: err.code, message: err.message, ...(key && { key }) }, status, { cause: err });
}
