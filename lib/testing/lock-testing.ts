import type { LockChange } from '../interfaces/lock-backend.interface.js';
import type { MemoryBackend } from '../backends/memory/memory.backend.js';
import type { LockService } from '../engine/lock.service.js';
import type { LockHandle } from '../engine/lock.handle.js';
import type { AcquireOptions } from '../interfaces/acquire-options.interface.js';
import type { LockHolderInfo, LockInfo } from '../interfaces/lock-info.interface.js';

/** The owner id of the other process that LockTesting plays. */
export const ANOTHER_PROCESS = 'another-process';

/**
 * Controls for unit tests of code that locks, on the in-memory backend: meet contention, lose
 * a lock, and read what was locked and in what order. Injected by LockTestingModule.
 * @publicApi
 */
export class LockTesting {
  private readonly changes: (LockChange & { readonly prefix: string })[] = [];

  constructor(
    /** the backend the app's LockService runs on */
    readonly backend: MemoryBackend,
    /** plays another process: its own session on the same backend and prefix */
    private readonly other: LockService,
    prefix: string,
  ) {
    backend.onChange(change => change.prefix === prefix && this.changes.push(change));
  }

  /**
   * Takes `key` as another process would, so that the code under test meets a busy lock (its
   * acquire waits or times out, `onContention: 'fail'` throws, `'skip'` skips). Release the
   * handle to let the code under test in. Waits if the lock is busy (options as for acquire).
   */
  holdElsewhere(key: string, options?: AcquireOptions): Promise<LockHandle> {
    return this.other.acquire(key, options);
  }

  /**
   * Expires the session of the app's LockService, as when its process lost etcd past the TTL:
   * every lock it holds is lost (signal aborted, `lost` event, withLock and @WithLock reject
   * with LockLostError). Its next acquire opens a new session. Returns how many sessions expired.
   */
  expireSession(): number {
    return this.backend.expireSessions(owner => owner !== ANOTHER_PROCESS);
  }

  /** What an operator's force-unlock does: the holders of `key` lose it (reason 'forced'). */
  forceUnlock(key: string): Promise<LockHolderInfo[]> {
    return this.other.forceUnlock(key);
  }

  /** Who holds `key` and who waits for it. */
  info(key: string): Promise<LockInfo | null> {
    return this.other.getLockInfo(key);
  }

  /** The names the app's service acquired, in the order it got them (another process's not included). */
  acquired(): string[] {
    return this.changes.filter(change => change.type === 'acquired' && change.owner !== ANOTHER_PROCESS).map(change => change.key);
  }

  /** Every change of holder since the module started, any owner's: `acquired`, `released`, `expired`, `lost`. */
  history(): readonly LockChange[] {
    return this.changes.map(({ prefix: _prefix, ...change }) => change);
  }
}
