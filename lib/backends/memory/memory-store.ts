import { holdingCount, type LockKind } from '../../common/lock-kind.js';
import type { LockLossReason } from '../../common/lock.errors.js';
import type { OwnerRecord } from '../../common/owner-record.js';
import type { LockChange } from '../../interfaces/lock-backend.interface.js';

/** One entry of a lock's queue, kept in memory. */
export interface StoredEntry {
  /** The service's prefix: locks of different prefixes never meet. */
  readonly prefix: string;
  /** The lock's name. */
  readonly name: string;
  readonly token: bigint;
  readonly kind: LockKind;
  /** The session that queued it (its id). */
  readonly session: string;
  readonly record: OwnerRecord;
  /** A hard-TTL lock's entry: it lives by its own deadline, not its session's. */
  timed: boolean;
  /** Who force-unlocked it, when an operator did. */
  forcedBy?: string;
  /** ms since the epoch when it started holding */
  takenAt?: number;
}

/** Why an entry left its queue, as a watcher reports it. */
export type Removal = 'released' | 'forced' | 'session-expired' | 'ttl-expired';

/** A change to one lock, for whoever watches: the holders that came and went. */
export type ChangeListener = (prefix: string, changes: LockChange[]) => void;

/**
 * The queues of every lock, shared by every LockService connected to one MemoryBackend, as
 * processes share an etcd. Tokens come from one counter, so they only go up. Every change
 * wakes the waiters of that lock (they look again) and tells the watchers which holders came
 * and went, after the current call returns.
 */
export class MemoryStore {
  private counter = 0n;
  private readonly queues = new Map<string, StoredEntry[]>();
  /** Unfair waiters of each lock, in the order they came (no token: they are not queued). */
  private readonly rooms = new Map<string, StoredEntry[]>();
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly listeners = new Set<ChangeListener>();

  nextToken(): bigint {
    return ++this.counter;
  }

  queue(prefix: string, name: string): readonly StoredEntry[] {
    return this.queues.get(lockId(prefix, name)) ?? [];
  }

  room(prefix: string, name: string): readonly StoredEntry[] {
    return this.rooms.get(lockId(prefix, name)) ?? [];
  }

  /** The entries that hold the lock: the front of its queue. */
  holders(prefix: string, name: string): StoredEntry[] {
    const queue = this.queue(prefix, name);
    return queue.slice(0, holdingCount(queue.map(entry => entry.kind)));
  }

  holds(entry: StoredEntry): boolean {
    return this.holders(entry.prefix, entry.name).includes(entry);
  }

  contains(entry: StoredEntry): boolean {
    return this.queue(entry.prefix, entry.name).includes(entry);
  }

  /** Every lock under `prefix` whose name starts with `namePrefix`, with someone queued or waiting. */
  names(prefix: string, namePrefix: string): string[] {
    const names = new Set<string>();
    for (const [entry] of [...this.queues.values(), ...this.rooms.values()]) {
      if (entry?.prefix === prefix && entry.name.startsWith(namePrefix)) names.add(entry.name);
    }
    return [...names].sort();
  }

  /** Every entry, of any lock, that a session queued. */
  entriesOf(session: string): StoredEntry[] {
    return [...this.queues.values()].flat().filter(entry => entry.session === session);
  }

  add(entry: StoredEntry): void {
    this.change(entry.prefix, entry.name, 'released', () => push(this.queues, lockId(entry.prefix, entry.name), entry));
  }

  /** Removes `entry` from its queue; false if it was not there. */
  remove(entry: StoredEntry, how: Removal): boolean {
    if (!this.contains(entry)) return false;
    this.change(entry.prefix, entry.name, how, () => pull(this.queues, lockId(entry.prefix, entry.name), entry));
    return true;
  }

  enterRoom(entry: StoredEntry): void {
    push(this.rooms, lockId(entry.prefix, entry.name), entry);
  }

  leaveRoom(entry: StoredEntry): void {
    if (pull(this.rooms, lockId(entry.prefix, entry.name), entry)) this.wake(lockId(entry.prefix, entry.name));
  }

  /** Resolves at the next change of the lock's queue or room; rejects with the signal's reason. */
  changed(prefix: string, name: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const id = lockId(prefix, name);
    return new Promise((resolve, reject) => {
      const wakers = this.wakers.get(id) ?? new Set();
      this.wakers.set(id, wakers);
      const done = () => {
        wakers.delete(done);
        if (wakers.size === 0 && this.wakers.get(id) === wakers) this.wakers.delete(id);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        reject(signal.reason);
      };
      wakers.add(() => {
        done();
        resolve();
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Tells `listener` of every change of holder from now on; returns a function that stops it. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Applies `mutate` to one lock, then wakes its waiters and reports which holders came and went. */
  private change(prefix: string, name: string, how: Removal, mutate: () => void): void {
    const before = this.holders(prefix, name);
    mutate();
    const after = this.holders(prefix, name);
    const now = Date.now();
    const changes: LockChange[] = [];
    for (const gone of before.filter(entry => !after.includes(entry))) {
      const base = { key: name, owner: gone.record.owner, token: gone.token, session: gone.session, heldMs: now - (gone.takenAt ?? now) };
      changes.push(how === 'released' ? { ...base, type: 'released' } : { ...base, type: how === 'forced' ? 'lost' : 'expired', reason: how as LockLossReason });
    }
    for (const came of after.filter(entry => !before.includes(entry))) {
      came.takenAt = now;
      changes.push({ type: 'acquired', key: name, owner: came.record.owner, token: came.token, session: came.session, waitedMs: now - came.record.queuedAt });
    }
    this.wake(lockId(prefix, name));
    if (changes.length > 0) queueMicrotask(() => this.listeners.forEach(listener => listener(prefix, changes)));
  }

  private wake(id: string): void {
    for (const wake of [...(this.wakers.get(id) ?? [])]) wake();
  }
}

/** One lock, whatever the service's prefix. */
function lockId(prefix: string, name: string): string {
  return `${prefix}\u0000${name}`;
}

function push(map: Map<string, StoredEntry[]>, id: string, entry: StoredEntry): void {
  map.set(id, [...(map.get(id) ?? []), entry]);
}

function pull(map: Map<string, StoredEntry[]>, id: string, entry: StoredEntry): boolean {
  const entries = map.get(id) ?? [];
  if (!entries.includes(entry)) return false;
  const rest = entries.filter(other => other !== entry);
  if (rest.length === 0) map.delete(id);
  else map.set(id, rest);
  return true;
}
