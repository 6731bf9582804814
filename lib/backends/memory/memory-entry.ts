import { performance } from 'node:perf_hooks';
import { canQueueTogether, type LockKind } from '../../common/lock-kind.js';
import type { OwnerRecord } from '../../common/owner-record.js';
import { type QueueEntry, type TimedHold } from '../../interfaces/lock-backend.interface.js';
import { EntryGoneError, KindConflictError } from '../../common/backend.errors.js';
import { MemorySessionGoneError, type MemorySession } from './memory-session.js';
import type { MemoryStore, StoredEntry } from './memory-store.js';
import { Deadline } from '../../util/deadline.js';

/** One attempt at one lock, in memory: the same queue rules as etcd's, without the network. */
export class MemoryEntry implements QueueEntry {
  private stored: StoredEntry | undefined;
  /** The unfair waiter's place in the room, while it waits. */
  private waiting: StoredEntry | undefined;

  constructor(
    private readonly store: MemoryStore,
    private readonly prefix: string,
    private readonly name: string,
    readonly kind: LockKind,
    private readonly session: MemorySession,
    private readonly record: OwnerRecord,
  ) {}

  get token(): bigint | undefined {
    return this.stored?.token;
  }

  async tryAcquire(onlyIfFree: boolean): Promise<boolean> {
    if (this.stored) return this.store.holds(this.stored);
    if (!this.session.isValid) throw new MemorySessionGoneError();
    const queue = this.store.queue(this.prefix, this.name);
    const other = queue.find(entry => !canQueueTogether(entry.kind, this.kind));
    if (other) throw new KindConflictError(other.kind);
    if (onlyIfFree && !this.isFree(queue)) return false; // busy: nothing written
    this.stored = { prefix: this.prefix, name: this.name, token: this.store.nextToken(), kind: this.kind, session: this.session.id, record: this.record, timed: false };
    this.store.add(this.stored);
    return this.store.holds(this.stored);
  }

  async waitForTurn(signal: AbortSignal): Promise<void> {
    const stored = this.stored!;
    for (;;) {
      signal.throwIfAborted();
      if (!this.store.contains(stored)) throw new EntryGoneError();
      if (this.store.holds(stored)) break;
      await this.store.changed(this.prefix, this.name, signal);
    }
    this.record.acquiredAt = Date.now();
  }

  async waitUntilFree(signal: AbortSignal): Promise<void> {
    this.waiting = { prefix: this.prefix, name: this.name, token: 0n, kind: this.kind, session: this.session.id, record: this.record, timed: false };
    this.store.enterRoom(this.waiting);
    try {
      // only the first of the room tries: a release wakes one unfair waiter, not all
      while (!(this.store.room(this.prefix, this.name)[0] === this.waiting && (await this.tryAcquire(true)))) {
        await this.store.changed(this.prefix, this.name, signal);
      }
      this.record.acquiredAt = Date.now();
    } finally {
      this.leaveRoom();
    }
  }

  async release(): Promise<boolean> {
    this.leaveRoom();
    return this.stored !== undefined && this.store.remove(this.stored, 'released');
  }

  wroteNothing(): void {}

  watchHolder(onGone: (forced: boolean) => void): { stop(): void } {
    const stored = this.stored!;
    let stopped = false;
    const check = () => {
      if (stopped || this.store.contains(stored)) return;
      stop();
      onGone(stored.forcedBy !== undefined);
    };
    const unsubscribe = this.store.subscribe(prefix => prefix === this.prefix && check());
    const stop = () => {
      stopped = true;
      unsubscribe();
    };
    queueMicrotask(check); // removed before we watched
    return { stop };
  }

  async holdFor(ttl: number): Promise<TimedHold | null> {
    if (!this.stored || !this.store.contains(this.stored)) return null;
    this.stored.timed = true;
    return new MemoryTimedHold(this.store, this.stored, ttl);
  }

  private isFree(queue: readonly StoredEntry[]): boolean {
    switch (this.kind.mode) {
      case 'exclusive':
        return queue.length === 0;
      case 'shared':
        return queue.every(entry => entry.kind.mode === 'shared');
      case 'semaphore':
        return queue.length < this.kind.limit;
    }
  }

  private leaveRoom(): void {
    if (this.waiting) this.store.leaveRoom(this.waiting);
    this.waiting = undefined;
  }
}

/** A hard-TTL lock's entry: removed at its deadline unless renewed. */
class MemoryTimedHold implements TimedHold {
  private readonly deadline: Deadline;
  private expired = false;

  constructor(
    private readonly store: MemoryStore,
    private readonly entry: StoredEntry,
    public ttl: number,
  ) {
    this.deadline = new Deadline(performance.now() + ttl * 1000);
  }

  get isValid(): boolean {
    return !this.deadline.passed;
  }

  onDeadline(onExpired: () => void): void {
    this.deadline.onPassed(() => {
      this.expired = true;
      onExpired(); // the holder learns first, then the entry goes, as at a lease's expiry
      this.store.remove(this.entry, 'ttl-expired');
    });
  }

  async renew(ttl: number): Promise<boolean> {
    if (!this.store.contains(this.entry)) return false;
    this.ttl = ttl;
    this.deadline.at = performance.now() + ttl * 1000;
    return true;
  }

  async end(): Promise<void> {
    this.deadline.stop();
    this.store.remove(this.entry, this.expired ? 'ttl-expired' : 'released');
  }
}
