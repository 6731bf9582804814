import type { LockChange } from '../interfaces/lock-backend.interface.js';
import type { LockHolderInfo, LockInfo, LockOwnerInfo } from '../interfaces/lock-info.interface.js';

/**
 * What the board shows and sends, as JSON: tokens as decimal strings (a fencing token may
 * pass 2^53), times as ISO strings, durations in ms.
 */
export interface BoardEvent {
  /** Increasing: the page keeps its timeline in this order. */
  readonly id: number;
  /** `forced`: an operator force-unlocked it; `expired`: its session or TTL ran out; `released`: its holder let it go. */
  readonly type: 'acquired' | 'released' | 'expired' | 'forced' | 'lost';
  readonly key: string;
  readonly owner: string;
  readonly token: string;
  readonly at: string;
  readonly waitedMs?: number;
  readonly heldMs?: number;
  readonly reason?: string;
}

export interface BoardHolder extends BoardOwner {
  readonly acquiredAt: string;
  readonly ttlRemaining: number;
}

export interface BoardOwner {
  readonly owner: string;
  readonly host: string;
  readonly pid: number;
  readonly token: string;
  readonly mode: string;
  readonly queuedAt: string;
  /** A waiter of `fair: false`: not in the queue's order, any of them may get in next. */
  readonly unfair?: boolean;
}

export interface BoardLock {
  readonly key: string;
  readonly kind: 'exclusive' | 'shared' | 'semaphore';
  readonly limit?: number;
  readonly holders: readonly BoardHolder[];
  /** In queue order; unfair waiters last. */
  readonly waiters: readonly BoardOwner[];
}

/** A watch's change, as a timeline entry. */
export function boardEvent(id: number, change: LockChange, at: Date): BoardEvent {
  const type = change.type === 'lost' && change.reason === 'forced' ? 'forced' : change.type;
  return {
    id,
    type,
    key: change.key,
    owner: change.owner,
    token: change.token.toString(),
    at: at.toISOString(),
    ...(change.waitedMs !== undefined && { waitedMs: change.waitedMs }),
    ...(change.heldMs !== undefined && { heldMs: change.heldMs }),
    ...(change.reason !== undefined && { reason: change.reason }),
  };
}

export function boardLock(info: LockInfo): BoardLock {
  const kind = info.limit !== undefined ? 'semaphore' : [...info.holders, ...info.waiters].some(o => o.mode === 'shared') ? 'shared' : 'exclusive';
  return {
    key: info.key,
    kind,
    ...(info.limit !== undefined && { limit: info.limit }),
    holders: info.holders.map(holder),
    waiters: [...info.waiters.map(o => owner(o)), ...info.unfairWaiters.map(o => owner(o, true))],
  };
}

function holder(info: LockHolderInfo): BoardHolder {
  return { ...owner(info), acquiredAt: info.acquiredAt.toISOString(), ttlRemaining: info.ttlRemaining };
}

function owner(info: LockOwnerInfo, unfair = false): BoardOwner {
  return {
    owner: info.owner,
    host: info.host,
    pid: info.pid,
    token: info.token.toString(),
    mode: info.mode,
    queuedAt: info.queuedAt.toISOString(),
    ...(unfair && { unfair }),
  };
}
