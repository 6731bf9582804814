import type { BackendSession } from '../../interfaces/lock-backend.interface.js';
import type { MemoryStore } from './memory-store.js';

let sessions = 0;

/** Thrown when a session that ended is asked to queue: the engine reports the lock lost. */
export class MemorySessionGoneError extends Error {
  constructor() {
    super('the in-memory session has ended');
  }
}

/**
 * A session in memory. Nothing to keep alive inside one process: it lasts until it is closed,
 * or expired on purpose (MemoryBackend.expireSessions) to test what a lost session does.
 */
export class MemorySession implements BackendSession {
  readonly id = `memory-${++sessions}`;
  readonly signal: AbortSignal;
  private readonly ended = new AbortController();

  constructor(
    private readonly store: MemoryStore,
    readonly ttl: number,
    /** the owner id of the service that opened it */
    readonly owner: string,
    private readonly onExpired: (session: MemorySession) => void,
  ) {
    this.signal = this.ended.signal;
  }

  /** Nothing to keep alive: no deadline until it ends. */
  get validForMs(): number {
    return this.isValid ? Infinity : 0;
  }

  get isValid(): boolean {
    return !this.ended.signal.aborted;
  }

  /** Ends the session as lost: its locks are lost (their holders told first), then its entries go, as at a lease's expiry. */
  expire(): void {
    if (!this.isValid) return;
    this.ended.abort('expired');
    this.onExpired(this);
    this.removeEntries('session-expired');
  }

  async close(): Promise<boolean> {
    if (this.isValid) {
      this.ended.abort('closed');
      this.removeEntries('released');
    }
    return true;
  }

  private removeEntries(how: 'released' | 'session-expired'): void {
    for (const entry of this.store.entriesOf(this.id)) if (!entry.timed) this.store.remove(entry, how);
  }
}
