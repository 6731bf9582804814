/**
 * One queue key of a lock, as `getLockInfo`, `listLocks` and the CLI show it.
 * @publicApi
 */
export interface LockOwnerInfo {
  /** The `ownerId` of the service that put the key. */
  readonly owner: string;
  readonly host: string;
  readonly pid: number;
  /** The key's create revision: the holder's fencing token, a waiter's place in the queue. */
  readonly token: bigint;
  readonly mode: 'exclusive' | 'shared' | 'semaphore';
  readonly queuedAt: Date;
  /** The etcd lease the key lives on (decimal). */
  readonly lease: string;
  /** The etcd key itself. */
  readonly etcdKey: string;
  /**
   * A key this library did not write: another etcd client's lock under the same name
   * (`etcdctl lock`, Go's `concurrency.Mutex`, etcd's Lock service; see docs/interop.md) or a
   * key a tool put there. It counts as an exclusive holder or waiter. Its `owner` is its value
   * (or "(another etcd client)"); `host`, `pid` and times are unknown (empty, 0, the epoch).
   */
  readonly foreign?: true;
}

/** @publicApi */
export interface LockHolderInfo extends LockOwnerInfo {
  /**
   * When it got the lock. A holder that waited writes it into its key once it has held the
   * lock for 100 ms; before that, this is its `queuedAt`.
   */
  readonly acquiredAt: Date;
  /** Seconds left on its lease if nobody renews it (-1: the lease is gone). */
  readonly ttlRemaining: number;
}

/**
 * Who holds a lock and who waits for it, read from etcd in one go.
 * @publicApi
 */
export interface LockInfo {
  /** The lock's name. */
  readonly key: string;
  /** The first holder (exclusive locks have at most one). */
  readonly holder: LockHolderInfo | undefined;
  /** Every holder: readers of a shared lock, or up to `limit` holders of a semaphore. */
  readonly holders: readonly LockHolderInfo[];
  /** The semaphore's limit, for a semaphore. */
  readonly limit?: number;
  /** Keys waiting in the queue, in queue order. */
  readonly waiters: readonly LockOwnerInfo[];
  /** Unfair waiters (`fair: false`), in the order they came; any of them may get in next. */
  readonly unfairWaiters: readonly LockOwnerInfo[];
}
