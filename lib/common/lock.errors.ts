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
  | 'ETCD_UNAVAILABLE'
  | 'SERVICE_CLOSED';

/** Why a held lock stopped being ours without a release. */
export type LockLossReason =
  | 'session-expired' // no keepalive was acknowledged within the TTL, or etcd reported the lease gone
  | 'key-deleted' // someone deleted the holder's key (admin, etcdctl)
  | 'forced' // an operator removed it with forceUnlock (the CLI's unlock)
  | 'max-hold' // held longer than its maxHold: released on purpose
  | 'ttl-expired'; // a hard-TTL lock (autoRenew: false) not renewed within its ttl

const LOSS_EXPLANATIONS: Record<LockLossReason, string> = {
  'session-expired': 'its etcd session (lease) expired',
  'key-deleted': 'its key was deleted in etcd',
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

/** etcd could not be reached (or did not answer in time); worth another try later. */
export class EtcdUnavailableError extends LockError {
  readonly code = 'ETCD_UNAVAILABLE';
  /** @param message what went wrong and what to check; by default, the cause's own message */
  constructor(
    readonly hosts: string,
    cause: unknown,
    message = messages.ETCD_UNAVAILABLE(hosts, cause instanceof Error ? cause.message : String(cause)),
  ) {
    super(message, { cause });
  }
}

/** The LockService was used after `close()`. */
export class LockServiceClosedError extends LockError {
  readonly code = 'SERVICE_CLOSED';
  constructor() {
    super(messages.SERVICE_CLOSED());
  }
}
