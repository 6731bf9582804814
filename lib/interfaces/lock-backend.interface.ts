import type { LockKind } from '../common/lock-kind.js';
import type { LockLossReason } from '../common/lock.errors.js';
import type { OwnerRecord } from '../common/owner-record.js';
import type { LockHolderInfo, LockInfo } from './lock-info.interface.js';

/**
 * Where locks are kept: etcd, Redis or memory. A backend stores queues of entries and
 * sessions; the engine above it (LockService) does everything else: async-context scope and
 * reentrancy, holds, minHold and maxHold, events, withLock. See docs/backends.md.
 *
 * `connect` is called once per LockService, with its settings.
 * @publicApi
 */
export interface LockBackend {
  connect(settings: BackendSettings): BackendConnection;
}

/** What a LockService tells its backend. */
export interface BackendSettings {
  /** Namespace of every lock (ends with `/`). */
  readonly prefix: string;
  /** Session TTL, whole seconds. */
  readonly ttl: number;
  /** Ms to wait for the backend when a session opens, and for a release at close. */
  readonly connectTimeout: number;
  readonly ownerId: string;
}

/** One LockService's use of a backend. */
export interface BackendConnection {
  /** Where the locks are, for logs and errors: "http://127.0.0.1:2379", "memory". */
  readonly description: string;
  /** What keeps the locks, as the `lock.backend` attribute of metrics and spans says it: "etcd", "redis", "memory". @default 'custom' */
  readonly system?: string;
  /**
   * Opens a session: a lease or heartbeat shared by every lock of the service, with a local
   * validity deadline. `onExpired` is called once if it expires (never after `close()`).
   */
  openSession(onExpired: (session: BackendSession) => void): Promise<BackendSession>;
  /** One attempt at one lock: nothing is written until `tryAcquire`. */
  entry(session: BackendSession, name: string, kind: LockKind, record: OwnerRecord): QueueEntry;
  /** Deletes the keys of these held entries, as few requests as it can, within connectTimeout; never throws. */
  releaseAll(entries: QueueEntry[]): Promise<void>;
  /** Fails at startup, not at the first lock, when the credentials or permissions cannot lock. */
  checkAccess(): Promise<void>;
  /** True when anyone holds or waits for `name`. */
  isLocked(name: string): Promise<boolean>;
  info(name: string): Promise<LockInfo | null>;
  list(namePrefix: string): Promise<LockInfo[]>;
  /** Removes the holders' entries of `name` (marked as forced by `by`), or only the one with `token`; returns them. */
  forceUnlock(name: string, by: string, token?: bigint): Promise<LockHolderInfo[]>;
  /** Reports every change of holder of locks whose name starts with `namePrefix`, any process's, once each. */
  watch(namePrefix: string, onChanges: (changes: LockChange[]) => void, retryable: (err: unknown) => boolean): LockWatch;
  /** The typed error (LockError) for a failure of the backend. */
  toLockError(err: unknown): Error;
  /** The backend did not answer: worth another try. */
  isUnavailable(err: unknown): boolean;
  /** The backend says the session is gone (its lease, its heartbeat key). */
  isSessionGone(err: unknown): boolean;
  /** After every session is closed: frees what the connection holds (a client it created). */
  close(): Promise<void>;
}

/** A session: it vouches for its locks until its deadline. */
export interface BackendSession {
  /** Who the session is, as other processes see it (etcd: the lease id in hex). */
  readonly id: string;
  /** The TTL (s) granted. */
  readonly ttl: number;
  /** Aborted when the session ends (expired or closed). */
  readonly signal: AbortSignal;
  /** True while the session can vouch for its locks; checks the clock. */
  readonly isValid: boolean;
  /** Ms left before its local deadline if no keepalive is acknowledged meanwhile (Infinity: none); 0 once it ended. */
  readonly validForMs: number;
  /** Declares the session lost: its locks are lost with it. */
  expire(): void;
  /** Ends it and removes its entries at once; resolves whether the backend confirmed. */
  close(): Promise<boolean>;
}

/**
 * One attempt at one lock. Entries of a lock hold in queue order: an exclusive entry once none
 * is ahead, a shared one once no exclusive one is ahead, a semaphore's once fewer than `limit`
 * are ahead. Every method may be retried after an unknown outcome without queueing twice.
 */
export interface QueueEntry {
  readonly kind: LockKind;
  /** The fencing token once queued: strictly increasing across the entries of a lock. */
  readonly token: bigint | undefined;
  /**
   * Queues and learns the place in one request; true when it holds. With `onlyIfFree`, a busy
   * lock writes nothing (a semaphore may queue and be removed by the caller).
   * Throws KindConflictError when the queue holds a kind that cannot queue with this one.
   */
  tryAcquire(onlyIfFree: boolean): Promise<boolean>;
  /** Waits until it holds, woken by the release ahead (no polling). Rejects with `signal.reason`, or EntryGoneError. */
  waitForTurn(signal: AbortSignal): Promise<void>;
  /** The unfair wait: not queued, takes the lock when it is free, racing only callers running now. */
  waitUntilFree(signal: AbortSignal): Promise<void>;
  /** Removes the entry if it is still this one, never a successor's; true if it was there. */
  release(): Promise<boolean>;
  /** A try that found the lock busy and wrote nothing. */
  wroteNothing(): void;
  /** Calls `onGone` once if the held entry is removed by anyone else, until stopped. */
  watchHolder(onGone: (forced: boolean) => void, delayMs: number): { stop(): void };
  /** A hard-TTL lock: the held entry lives `ttl` s unless renewed; null if the entry is gone. */
  holdFor(ttl: number): Promise<TimedHold | null>;
}

/** The life of a hard-TTL lock's entry, apart from the session. */
export interface TimedHold {
  /** The current TTL (s). */
  readonly ttl: number;
  readonly isValid: boolean;
  /** Calls `onExpired` at the deadline (again after each renew). */
  onDeadline(onExpired: () => void): void;
  /** A fresh TTL; false if the entry is gone. */
  renew(ttl: number): Promise<boolean>;
  /** Stops the deadline and removes the entry if it is still there. */
  end(): Promise<void>;
}

/** A watch of every process's locks. */
export interface LockWatch {
  /** Resolves once it runs; rejects with the first failure (it retries meanwhile if retryable). */
  readonly ready: Promise<void>;
  stop(): void;
}

/** A change of holder seen in the backend, for any process's lock. */
export interface LockChange {
  /** `lost`: an operator force-unlocked it; `expired`: its session or TTL ran out; `released`: removed alone. */
  readonly type: 'acquired' | 'released' | 'expired' | 'lost';
  /** The lock's name. */
  readonly key: string;
  readonly owner: string;
  readonly token: bigint;
  /** The session that queued the entry (BackendSession.id): who it belongs to. */
  readonly session: string;
  /** On an end: how long it was held. */
  readonly heldMs?: number;
  /** On `acquired` seen as it happened: how long since the entry queued (by the holder's clock). */
  readonly waitedMs?: number;
  readonly reason?: LockLossReason;
}
