import type { LockLossReason } from '../core/lock.errors.js';

/** @publicApi */
export type LockEventType = 'waiting' | 'acquired' | 'released' | 'lost' | 'timeout';

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
  /** 'local': a lock of this LockService. */
  readonly origin: 'local' | 'remote';
  readonly at: Date;
  /** On `acquired` and `timeout`: how long the acquire waited. */
  readonly waitedMs?: number;
  /** On `released` and `lost`: how long the lock was held. */
  readonly heldMs?: number;
  /** On `lost`: why. */
  readonly reason?: LockLossReason;
}
