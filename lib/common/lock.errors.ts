import * as messages from './lock.messages.js';

/** The machine-readable kind of a {@link LockError}. */
export type LockErrorCode =
  | 'LOCK_TIMEOUT'
  | 'LOCK_ALREADY_HELD'
  | 'LOCK_NOT_HELD'
  | 'LOCK_LOST'
  | 'LOCK_ABORTED'
  | 'INVALID_KEY'
  | 'INVALID_OPTIONS'
  | 'STORE_UNAVAILABLE'
  | 'ETCD_UNAVAILABLE'
  | 'REDIS_UNAVAILABLE'
  | 'SERVICE_CLOSED';

/** Why a held lock stopped being ours without a release. */
export type LockLossReason =
  | 'session-expired' // no keepalive was acknowledged within the TTL, or the store reported the session gone
  | 'key-deleted' // someone deleted the holder's key (admin, etcdctl, redis-cli)
  | 'forced' // an operator removed it with forceUnlock (the CLI's unlock)
  | 'max-hold' // held longer than its maxHold: released on purpose
  | 'ttl-expired'; // a hard-TTL lock (autoRenew: false) not renewed within its ttl

const LOSS_EXPLANATIONS: Record<LockLossReason, string> = {
  'session-expired': 'its session (etcd lease, Redis session key) expired',
  'key-deleted': 'its key was deleted in the lock store',
  forced: 'an operator force-unlocked it (forceUnlock)',
  'max-hold': 'it was held longer than its maxHold and was released',
  'ttl-expired': 'its own lease ran out: renew() was not called within its ttl',
};

/** Base class of every error this library throws; switch on `code`. @publicApi */
export abstract class LockError extends Error {
  abstract readonly code: LockErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The lock was not acquired within `waitTimeout`. Nothing was left queued in etcd. */
export class LockTimeoutError extends LockError {
  readonly code = 'LOCK_TIMEOUT';
  constructor(
    readonly key: string,
    readonly waitedMs: number,
  ) {
    super(messages.LOCK_TIMEOUT(key, waitedMs));
  }
}

/**
 * The lock is held and the call would not wait: by another holder (`onContention: 'fail'`),
 * or by the calling async context itself with `reentrant: false`.
 */
export class LockAlreadyHeldError extends LockError {
  readonly code = 'LOCK_ALREADY_HELD';
  constructor(
    readonly key: string,
    /** 'this-context-shared': held shared here, and an exclusive acquire would wait for itself */
    readonly heldBy: 'this-context' | 'this-context-shared' | 'another-holder' = 'this-context',
  ) {
    super(
      heldBy === 'this-context' ? messages.LOCK_ALREADY_HELD(key) : heldBy === 'this-context-shared' ? messages.LOCK_UPGRADE(key) : messages.LOCK_BUSY(key),
    );
  }
}

/** The lock was released (by its holder or by closing the service); it is no longer held. */
export class LockNotHeldError extends LockError {
  readonly code = 'LOCK_NOT_HELD';
  constructor(readonly key: string) {
    super(messages.LOCK_RELEASED(key));
  }
}

/** The lock was lost while held: its session expired or its key was deleted. */
export class LockLostError extends LockError {
  readonly code = 'LOCK_LOST';
  constructor(
    readonly key: string,
    readonly reason: LockLossReason,
    options?: { cause?: unknown },
  ) {
    super(messages.LOCK_LOST(key, LOSS_EXPLANATIONS[reason]), options);
  }
}

/** The caller's AbortSignal fired before the lock was acquired; `cause` is the signal's reason. */
export class LockAbortedError extends LockError {
  readonly code = 'LOCK_ABORTED';
  constructor(
    readonly key: string,
    cause: unknown,
  ) {
    super(messages.LOCK_ABORTED(key), { cause });
  }
}

/** A lock key that is empty, not a string, too long or has control characters. */
export class InvalidLockKeyError extends LockError {
  readonly code = 'INVALID_KEY';
  constructor(why: string) {
    super(messages.INVALID_KEY(why));
  }
}

/** A configuration value that cannot work; the message names the option and the fix. */
export class LockConfigurationError extends LockError {
  readonly code = 'INVALID_OPTIONS';
}

/**
 * The store that keeps the locks could not be reached (or did not answer in time); worth another
 * try later. Catch this class for any backend; etcd and Redis throw the subclasses below, a
 * backend of your own may throw it as it is (`STORE_UNAVAILABLE`). An HTTP route answers 503.
 * @publicApi
 */
export class LockStoreUnavailableError extends LockError {
  readonly code: 'STORE_UNAVAILABLE' | 'ETCD_UNAVAILABLE' | 'REDIS_UNAVAILABLE' = 'STORE_UNAVAILABLE';
  /**
   * @param where the store as the message names it, e.g. `etcd at http://127.0.0.1:2379`
   * @param message what went wrong and what to check
   */
  constructor(
    readonly where: string,
    cause: unknown,
    message = `${where} did not answer: ${cause instanceof Error ? cause.message : String(cause)}`,
  ) {
    super(message, { cause });
  }
}

/** etcd could not be reached (or did not answer in time); worth another try later. @publicApi */
export class EtcdUnavailableError extends LockStoreUnavailableError {
  override readonly code = 'ETCD_UNAVAILABLE';
  /** @param message what went wrong and what to check; by default, the cause's own message */
  constructor(
    readonly hosts: string,
    cause: unknown,
    message = messages.ETCD_UNAVAILABLE(hosts, cause instanceof Error ? cause.message : String(cause)),
  ) {
    super(`etcd at ${hosts}`, cause, message);
  }
}

/** Redis could not be reached (or did not answer in time: down, loading, a failover under way); worth another try later. @publicApi */
export class RedisUnavailableError extends LockStoreUnavailableError {
  override readonly code = 'REDIS_UNAVAILABLE';
}

/** The LockService was used after `close()`. */
export class LockServiceClosedError extends LockError {
  readonly code = 'SERVICE_CLOSED';
  constructor() {
    super(messages.SERVICE_CLOSED());
  }
}
