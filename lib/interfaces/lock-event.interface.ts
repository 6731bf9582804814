import type { LockLossReason } from '../common/lock.errors.js';

/** @publicApi */
export type LockEventType =
  | 'waiting' // queued behind another holder
  | 'acquired'
  | 'released'
  | 'lost' // session expired, key deleted or force-unlocked while held (remote: force-unlocked)
  | 'expired' // held past its maxHold or a hard-TTL lock's ttl, the signal aborted (remote: the holder's lease ran out)
  | 'timeout' // waitTimeout passed while queued
  | 'skipped'; // tryWithLock or onContention 'skip': the lock was busy, the function did not run

/**
 * Something that happened to a lock, emitted on `LockService.events$`.
 * @publicApi
 */
export interface LockEvent {
  readonly type: LockEventType;
  /** The lock's name. */
  readonly key: string;
  /** The ownerId of the process the event is about. */
  readonly owner: string;
  /** Fencing token of the holder, when there is one. */
  readonly token?: bigint;
  /** 'local': a lock of this LockService; 'remote': another process's, reported by the `watch` option. */
  readonly origin: 'local' | 'remote';
  readonly at: Date;
  /**
   * On `acquired` and `timeout`: how long the acquire waited. Remote `acquired`: from the
   * holder's queued-at (by its clock) to when the watch saw it take the lock; absent for a
   * holder found by a read after the watch was away, or whose key is not this library's record.
   */
  readonly waitedMs?: number;
  /**
   * On `released`, `lost` and `expired`: how long the lock was held. Remote: since the holder
   * took it, even before the watch started (from the acquired-at in its key, by the holder's
   * clock); absent for a key whose value is not this library's record.
   */
  readonly heldMs?: number;
  /** On `lost` and `expired`: why. */
  readonly reason?: LockLossReason;
}
