import { performance } from 'node:perf_hooks';
import type { BackendSession, QueueEntry, TimedHold } from '../interfaces/lock-backend.interface.js';
import { LockLostError, LockNotHeldError, type LockLossReason } from '../common/lock.errors.js';

/**
 * A lock you hold. Release it with `release()` or `await using`.
 * @publicApi
 */
export interface LockHandle {
  /** The lock's name, as passed to acquire. */
  readonly key: string;
  /**
   * Fencing token (on etcd, the create revision of the holder's key). Strictly increasing across
   * holders of one lock; hand it to what you protect and reject writes with a lower token.
   */
  readonly token: bigint;
  /**
   * Aborted when the lock ends: its `reason` is a LockLostError when it was lost (session
   * expired, key deleted) or a LockNotHeldError when it was released.
   */
  readonly signal: AbortSignal;
  /** True until the lock is released or lost; checks the session deadline on every read. */
  readonly isHeld: boolean;
  /** Releases the lock (the last of reentrant holds frees it). Idempotent; never throws. */
  release(): Promise<void>;
  /**
   * A hard-TTL lock (`autoRenew: false`): gives it a fresh lease of `ttl` seconds (by
   * default its current ttl). Rejects with LockLostError if the lock is already gone (it is
   * never re-acquired) and LockNotHeldError after release. Other locks are kept alive by
   * the session: for them this only checks that the lock is held.
   */
  renew(ttl?: number): Promise<void>;
  /** Throws LockLostError if the lock was lost, LockNotHeldError if it was released. */
  assertHeld(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** One queue entry held in the backend, shared by the handles of reentrant holds on it. */
export class HeldLock {
  holds = 1;
  readonly acquiredAt = performance.now();
  /** The watch on its own entry, once started: a removal by anyone else is a loss. */
  holderWatch: { stop(): void } | undefined;
  maxHoldTimer: NodeJS.Timeout | undefined;
  /** A hard-TTL lock's own life; undefined: the session keeps the lock alive. */
  timed: TimedHold | undefined;
  /** Settles once the timed hold, if any, has ended after the lock ended. */
  timedEnded: Promise<void> | undefined;
  /** How the lock ended: a loss's error, or 'released'; undefined while held. */
  private endedBy: LockLostError | 'released' | undefined;
  /** Made when `signal` is first read: most locks are released without anyone listening. */
  private controller: AbortController | undefined;

  constructor(
    readonly key: string,
    readonly entry: QueueEntry,
    readonly session: BackendSession,
    /** ms from acquiredAt before which a release is deferred */
    readonly minHold = 0,
  ) {}

  get token(): bigint {
    return this.entry.token!;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.endedBy) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** The lock ended: released, or lost. */
  get ended(): boolean {
    return this.endedBy !== undefined;
  }

  /** Released by its holder (not lost). */
  get released(): boolean {
    return this.endedBy === 'released';
  }

  /** Why the lock ended, as its signal's reason says: a LockLostError, or a LockNotHeldError after the release; undefined while held. */
  get reason(): LockLostError | LockNotHeldError | undefined {
    if (this.endedBy !== 'released') return this.endedBy;
    // its stack would say nothing, and capturing one costs more than the rest of a release's work (assertHeld throws a fresh error)
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new LockNotHeldError(this.key);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  /** Checks the deadline too, so a paused process learns of the loss on its first look. */
  get isHeld(): boolean {
    return (this.timed ? this.timed.isValid : this.session.isValid) && this.endedBy === undefined;
  }

  /** Ends the lock as lost; false if it had already ended. */
  lose(reason: LockLossReason): boolean {
    return this.end(new LockLostError(this.key, reason));
  }

  /** Ends the lock as released; false if it had already ended. */
  release(): boolean {
    return this.end('released');
  }

  private end(how: LockLostError | 'released'): boolean {
    if (this.endedBy) return false;
    this.endedBy = how;
    this.holderWatch?.stop();
    clearTimeout(this.maxHoldTimer);
    if (this.timed) this.timedEnded = this.timed.end(); // its entry, if still there, goes with it
    this.controller?.abort(this.reason);
    return true;
  }
}

/** What a handle asks of the service that made it. */
export interface HoldOwner {
  releaseHold(held: HeldLock): Promise<void>;
  renewHold(held: HeldLock, ttl?: number): Promise<void>;
}

/** The handle of one acquisition; reentrant acquisitions get their own handle on one HeldLock. */
export class HeldLockHandle implements LockHandle {
  private released = false;

  constructor(
    /** @internal */ readonly held: HeldLock,
    private readonly owner: HoldOwner,
  ) {}

  get key(): string {
    return this.held.key;
  }

  get token(): bigint {
    return this.held.token;
  }

  get signal(): AbortSignal {
    return this.held.signal;
  }

  get isHeld(): boolean {
    return !this.released && this.held.isHeld;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.owner.releaseHold(this.held);
  }

  async renew(ttl?: number): Promise<void> {
    if (this.released) throw new LockNotHeldError(this.key);
    await this.owner.renewHold(this.held, ttl);
  }

  assertHeld(): void {
    if (this.held.isHeld && !this.released) return;
    const reason = this.held.reason;
    throw reason instanceof LockLostError ? reason : new LockNotHeldError(this.key); // with the caller's stack
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
