import { performance } from 'node:perf_hooks';
import type { BackendConnection, BackendSession, QueueEntry } from '../interfaces/lock-backend.interface.js';
import { LockLostError, type LockLossReason } from '../common/lock.errors.js';
import { retryWithBackoff } from '../util/retry.js';
import { resolveOwnLeaseTtl } from './lock-options.js';
import type { LockEvents } from './lock-events.js';
import { HeldLock, type HoldOwner } from './lock.handle.js';

/**
 * How long a lock is held before its holder watches its own entry. DESIGN §3 rule 7 has the
 * holder watch at once; measured on etcd, a watch created and cancelled per lock cost about as
 * much as the lock itself (with etcd3's watchers, created one round trip at a time), and it
 * still costs etcd a create and a cancel, so short critical sections skip it. Nothing goes
 * unreported: when the watch starts, the holder reads its entry if the store moved on since
 * the acquisition, and the release's guarded delete reports an entry that is no longer ours
 * as a loss.
 */
export const HOLDER_WATCH_DELAY_MS = 100;

/** The life of the locks a service holds: from acquired to released or lost, each reported once. */
export class Holds implements HoldOwner {
  private readonly held = new Set<HeldLock>();

  /** Locks held now (a re-entered lock once). */
  get count(): number {
    return this.held.size;
  }

  constructor(
    private readonly backend: BackendConnection,
    private readonly events: LockEvents,
    /** aborted when the service closes: no background retry outlives it */
    private readonly closing: AbortSignal,
  ) {}

  /**
   * A lock just acquired: for a hard-TTL lock (`ownTtl`) its entry moves to a life of its own;
   * then its holder is watched, maxHold armed and `acquired` reported.
   */
  async start(name: string, entry: QueueEntry, session: BackendSession, { minHold, maxHold, ownTtl, waitedMs }: { minHold: number; maxHold: number; ownTtl: number | undefined; waitedMs: number }): Promise<HeldLock> {
    const held = new HeldLock(name, entry, session, minHold);
    if (ownTtl !== undefined) await this.holdFor(held, ownTtl);
    this.held.add(held);
    held.holderWatch = entry.watchHolder(forced => this.end(held, forced ? 'forced' : 'key-deleted'), HOLDER_WATCH_DELAY_MS);
    if (maxHold !== Infinity) held.maxHoldTimer = setTimeout(() => this.expire(held), maxHold).unref();
    this.events.emit({ type: 'acquired', key: name, token: held.token, waitedMs });
    return held;
  }

  /** The session expired: its locks are lost (a hard-TTL lock lives by its own deadline), once `report` has been told how many. */
  sessionExpired(session: BackendSession, report: (locksLost: number) => void): void {
    const lost = [...this.held].filter(held => held.session === session && !held.timed);
    report(lost.length);
    for (const held of lost) this.end(held, 'session-expired');
  }

  /** At close: releases every lock still held, as few requests as the backend can. Returns how many. */
  async releaseAll(): Promise<number> {
    const held = [...this.held];
    const stillHeld = held.filter(lock => lock.isHeld); // a lost lock's entry goes with its session
    for (const lock of stillHeld) lock.holderWatch?.stop(); // our own delete is not a loss
    // removed before the session ends: a session's end removes entries the way an expiry does, and watchers would report them expired
    await this.backend.releaseAll(stillHeld.map(lock => lock.entry));
    for (const lock of held) this.end(lock, 'released');
    await Promise.all(held.map(lock => lock.timedEnded)); // hard-TTL locks' entries go before the connection closes (undefined: none)
    return stillHeld.length;
  }

  /**
   * Gives up one hold; the last one releases the entry (guarded by its token), at once or,
   * within minHold, as soon as minHold has passed (without making the caller wait).
   */
  async releaseHold(held: HeldLock): Promise<void> {
    if (--held.holds > 0) return;
    const early = held.minHold - (performance.now() - held.acquiredAt);
    if (early > 0) setTimeout(() => void this.releaseNow(held), early).unref();
    else await this.releaseNow(held);
  }

  /** renew(): a fresh TTL for a hard-TTL lock; a check only for the others. */
  async renewHold(held: HeldLock, ttl?: number): Promise<void> {
    if (!held.isHeld) throw held.reason ?? new LockLostError(held.key, 'session-expired');
    const timed = held.timed;
    if (!timed) return; // the session keeps it alive
    const seconds = ttl === undefined ? timed.ttl : resolveOwnLeaseTtl({ autoRenew: false, ttl }, timed.ttl)!;
    let renewed: boolean;
    try {
      renewed = await timed.renew(seconds);
    } catch (err) {
      throw this.backend.toLockError(err); // not renewed: the lock lasts until its current deadline
    }
    if (!renewed) this.end(held, 'key-deleted');
    else if (held.ended) await timed.end(); // it ran out while we renewed: let the new life go too
    else timed.onDeadline(() => this.end(held, 'ttl-expired'));
    if (held.ended) throw held.reason;
  }

  /**
   * Removes an attempt's entry (guarded: never a newer holder's). If the backend does not
   * answer, keeps trying in the background until it does or the session ends (which takes the
   * entry with it).
   */
  async discard(entry: QueueEntry, session: BackendSession): Promise<void> {
    try {
      await entry.release(); // awaited: a failed acquire returns with its entry already gone
    } catch {
      this.discardLater(entry, session);
    }
  }

  /** A hard-TTL lock: its fresh entry gets a life of its own, or is given back. */
  private async holdFor(held: HeldLock, ttl: number): Promise<void> {
    try {
      const timed = await held.entry.holdFor(ttl);
      if (!timed) throw new LockLostError(held.key, 'key-deleted');
      held.timed = timed;
      timed.onDeadline(() => this.end(held, 'ttl-expired'));
    } catch (err) {
      await this.discard(held.entry, held.session);
      throw this.backend.toLockError(err);
    }
  }

  /**
   * Removes the entry, then ends the lock as released, or as lost if the entry was no longer
   * ours: a deletion the (deferred) holder watch did not report yet is reported now.
   */
  private async releaseNow(held: HeldLock): Promise<void> {
    if (held.ended) return; // already lost or released
    held.holderWatch?.stop(); // our own delete is not a loss
    let wasOurs = true;
    try {
      wasOurs = await held.entry.release(); // the entry is gone: its name can serve again
    } catch {
      this.discardLater(held.entry, held.session); // the backend did not answer: keep trying in the background
    }
    this.end(held, wasOurs || !held.session.isValid ? 'released' : 'key-deleted');
  }

  /** maxHold passed: the lock ends as if lost (signal, LockLostError) and its entry is released. */
  private expire(held: HeldLock): void {
    if (this.end(held, 'max-hold')) void this.discard(held.entry, held.session);
  }

  /** Ends a lock once: released by us, or lost. Returns false if it had already ended. */
  private end(held: HeldLock, how: 'released' | LockLossReason): boolean {
    if (!(how === 'released' ? held.release() : held.lose(how))) return false;
    this.held.delete(held);
    const heldMs = performance.now() - held.acquiredAt;
    if (how === 'released') this.events.emit({ type: 'released', key: held.key, token: held.token, heldMs });
    else this.events.emit({ type: how === 'max-hold' || how === 'ttl-expired' ? 'expired' : 'lost', key: held.key, token: held.token, heldMs, reason: how });
    return true;
  }

  private discardLater(entry: QueueEntry, session: BackendSession): void {
    void retryWithBackoff(() => entry.release(), {
      initialMs: 100,
      maxMs: 2000,
      retryIf: () => session.isValid && !this.closing.aborted,
    }).catch(() => undefined);
  }
}
