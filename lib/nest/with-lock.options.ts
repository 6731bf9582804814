import { LockConfigurationError } from '../common/lock.errors.js';
import { INVALID_OPTION } from '../common/lock.messages.js';
import { fromString, resolveLockKind, resolveOwnLeaseTtl, resolveRetry, resolveTelemetryName, shown, validateDuration } from '../engine/lock-options.js';
import type { WithLockOptions } from '../interfaces/with-lock-options.interface.js';
import { BAD_WITH_LOCK_OPTION } from './etcd-lock.messages.js';

/** HTTP 409 Conflict: the status of a lock not acquired when the module sets no `conflictStatus`. */
export const DEFAULT_CONFLICT_STATUS = 409;

const CONTENTION_MODES = ['wait', 'fail', 'skip'];

/** Checks @WithLock options at bootstrap, naming the method; returns them unchanged. */
export function validateWithLockOptions(options: WithLockOptions, where: string): WithLockOptions {
  const fail = (option: string, why: string) => new LockConfigurationError(BAD_WITH_LOCK_OPTION(where, option, why));
  if (options.onContention !== undefined && !CONTENTION_MODES.includes(options.onContention)) {
    throw fail('onContention', `must be one of ${CONTENTION_MODES.join(', ')}, got ${JSON.stringify(options.onContention)}`);
  }
  if (options.reentrant !== undefined && typeof options.reentrant !== 'boolean') throw fail('reentrant', 'must be a boolean');
  if (options.lock !== undefined && (typeof options.lock !== 'string' || options.lock === '')) throw fail('lock', 'must name an EtcdLockModule instance');
  try {
    resolveTelemetryName(options.telemetryName);
  } catch (err) {
    throw fail('telemetryName', (err as Error).message);
  }
  try {
    resolveRetry(options.retry);
  } catch (err) {
    throw fail('retry', (err as Error).message);
  }
  try {
    resolveLockKind(options);
  } catch (err) {
    throw fail(/"(\w+)"/.exec((err as Error).message)![1], (err as Error).message);
  }
  try {
    resolveOwnLeaseTtl(options, 1);
  } catch (err) {
    throw fail(options.autoRenew !== undefined && typeof options.autoRenew !== 'boolean' ? 'autoRenew' : 'ttl', (err as Error).message);
  }
  for (const [option, allowInfinity] of [['waitTimeout', true], ['maxHold', true], ['minHold', false]] as const) {
    const value = options[option];
    if (value === undefined) continue;
    try {
      validateDuration(option, value, allowInfinity);
    } catch {
      throw fail(option, `must be milliseconds >= 0${allowInfinity ? ' or Infinity' : ''}, got ${String(value)}`);
    }
  }
  return options;
}

/** Checks the HTTP status answered when a lock is not acquired (409 by default; '423' from the environment is 423). */
export function resolveConflictStatus(given: unknown = DEFAULT_CONFLICT_STATUS): number {
  const status = fromString(given);
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
    throw new LockConfigurationError(INVALID_OPTION('conflictStatus', `expected an HTTP error status such as 409 or 423, got ${shown(given)}`));
  }
  return status;
}
