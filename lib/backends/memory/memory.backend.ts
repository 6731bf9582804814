import type { LockKind } from '../../common/lock-kind.js';
import type { OwnerRecord } from '../../common/owner-record.js';
import type { LockHolderInfo, LockInfo, LockOwnerInfo } from '../../interfaces/lock-info.interface.js';
import type { BackendConnection, BackendSettings, LockBackend, LockChange, LockWatch, QueueEntry } from '../../interfaces/lock-backend.interface.js';
import { MemoryEntry } from './memory-entry.js';
import { MemorySession, MemorySessionGoneError } from './memory-session.js';
import { MemoryStore, type StoredEntry } from './memory-store.js';

/**
 * Locks kept in this process's memory, with the semantics of the etcd backend: FIFO queues,
 * shared and semaphore kinds, unfair waiting, fencing tokens that only go up, hard-TTL locks,
 * force-unlock and the watch. Every LockService connected to one MemoryBackend shares its
 * locks, as processes share an etcd. For unit tests: nothing outlives the process.
 * @publicApi
 */
export class MemoryBackend implements LockBackend {
  private readonly store = new MemoryStore();
  private readonly sessions = new Set<MemorySession>();

  connect(settings: BackendSettings): BackendConnection {
    return new MemoryConnection(this.store, settings, this.sessions);
  }

  /**
   * Expires the open sessions whose owner id passes `which` (all by default), as if their
   * process had lost etcd past its TTL: their locks are lost (`lost` events, aborted signals,
   * withLock rejects with LockLostError) and others may take them. Returns how many expired.
   */
  expireSessions(which: (ownerId: string) => boolean = () => true): number {
    const expiring = [...this.sessions].filter(session => session.isValid && which(session.owner));
    for (const session of expiring) session.expire();
    return expiring.length;
  }

  /**
   * Calls `listener` with every change of holder, of every lock and service, from now on:
   * what a test reads to know what was locked and in what order. Returns a function that stops it.
   */
  onChange(listener: (change: LockChange & { readonly prefix: string }) => void): () => void {
    return this.store.subscribe((prefix, changes) => changes.forEach(change => listener({ ...change, prefix })));
  }
}

class MemoryConnection implements BackendConnection {
  readonly description = 'memory';
  readonly system = 'memory';

  constructor(
    private readonly store: MemoryStore,
    private readonly settings: BackendSettings,
    private readonly sessions: Set<MemorySession>,
  ) {}

  async openSession(onExpired: (session: MemorySession) => void): Promise<MemorySession> {
    const session = new MemorySession(this.store, this.settings.ttl, this.settings.ownerId, expired => {
      this.sessions.delete(expired);
      onExpired(expired);
    });
    this.sessions.add(session);
    session.signal.addEventListener('abort', () => this.sessions.delete(session), { once: true });
    return session;
  }

  entry(session: MemorySession, name: string, kind: LockKind, record: OwnerRecord): QueueEntry {
    return new MemoryEntry(this.store, this.settings.prefix, name, kind, session, record);
  }

  async releaseAll(entries: QueueEntry[]): Promise<void> {
    await Promise.all(entries.map(entry => entry.release()));
  }

  async checkAccess(): Promise<void> {}

  async isLocked(name: string): Promise<boolean> {
    return this.store.queue(this.settings.prefix, name).length > 0 || this.store.room(this.settings.prefix, name).length > 0;
  }

  async info(name: string): Promise<LockInfo | null> {
    const { prefix } = this.settings;
    const queue = this.store.queue(prefix, name);
    const room = this.store.room(prefix, name);
    if (queue.length === 0 && room.length === 0) return null;
    const holders = this.store.holders(prefix, name).map(entry => this.holderInfo(entry));
    const first = queue[0]?.kind;
    return {
      key: name,
      holder: holders[0],
      holders,
      ...(first?.mode === 'semaphore' && { limit: first.limit }),
      waiters: queue.slice(holders.length).map(entry => this.ownerInfo(entry)),
      unfairWaiters: room.map(entry => this.ownerInfo(entry)),
    };
  }

  async list(namePrefix: string): Promise<LockInfo[]> {
    const infos = await Promise.all(this.store.names(this.settings.prefix, namePrefix).map(name => this.info(name)));
    return infos.filter((info): info is LockInfo => info?.holder !== undefined);
  }

  async forceUnlock(name: string, by: string, token?: bigint): Promise<LockHolderInfo[]> {
    const holders = this.store.holders(this.settings.prefix, name).filter(entry => token === undefined || entry.token === token);
    const removed = holders.map(entry => this.holderInfo(entry));
    for (const entry of holders) {
      entry.forcedBy = by;
      this.store.remove(entry, 'forced');
    }
    return removed;
  }

  watch(namePrefix: string, onChanges: (changes: LockChange[]) => void): LockWatch {
    const stop = this.store.subscribe((prefix, changes) => {
      const mine = changes.filter(change => prefix === this.settings.prefix && change.key.startsWith(namePrefix));
      if (mine.length > 0) onChanges(mine);
    });
    return { ready: Promise.resolve(), stop };
  }

  toLockError(err: unknown): Error {
    return err instanceof Error ? err : new Error(String(err));
  }

  isUnavailable(): boolean {
    return false; // memory always answers
  }

  isSessionGone(err: unknown): boolean {
    return err instanceof MemorySessionGoneError;
  }

  async close(): Promise<void> {}

  private ownerInfo(entry: StoredEntry): LockOwnerInfo {
    const { owner, host, pid, queuedAt } = entry.record;
    return { owner, host, pid, token: entry.token, mode: entry.kind.mode, queuedAt: new Date(queuedAt), lease: entry.session, etcdKey: `memory:${entry.prefix}${entry.name}/${entry.token}` };
  }

  private holderInfo(entry: StoredEntry): LockHolderInfo {
    return { ...this.ownerInfo(entry), acquiredAt: new Date(entry.record.acquiredAt ?? entry.record.queuedAt), ttlRemaining: this.settings.ttl };
  }
}

