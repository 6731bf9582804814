/**
 * Per-call options of `LockService.acquire` and `withLock`.
 * @publicApi
 */
export interface AcquireOptions {
  /** Max ms to wait in the queue; overrides the module's `waitTimeout`. Infinity waits forever. */
  waitTimeout?: number;
  /** Aborts the wait: the acquire rejects with LockAbortedError and leaves nothing queued. */
  signal?: AbortSignal;
  /**
   * When the calling async context (inside `withLock`) already holds this key: true re-enters
   * it (a hold count; the last release frees it), false throws LockAlreadyHeldError.
   * @default true
   */
  reentrant?: boolean;
  /**
   * Longest time in ms the lock may be held. Past it the lock is released, its signal aborts
   * (LockLostError, reason 'max-hold'), `expired` is emitted and withLock rejects.
   * @default Infinity
   */
  maxHold?: number;
  /**
   * Shortest time in ms the lock is held: an earlier release returns at once but frees the
   * key in etcd only once minHold has passed, so a fast job is not run again by a slower replica.
   * @default 0
   */
  minHold?: number;
  /**
   * While waiting, an acquire retries unavailable-etcd errors (etcd restarting, a connection
   * reset) with backoff, within its `waitTimeout`, keeping its one queue key: it never
   * enqueues twice. If the time runs out while etcd is still unreachable, it fails with
   * EtcdUnavailableError. `false` fails at the first such error. Other errors surface at once.
   * @default { initialMs: 50, maxMs: 1000 }
   */
  retry?: false | RetryOptions;
  /**
   * false makes a hard-TTL lock: it gets its own lease of `ttl` seconds that nobody renews,
   * so it ends by itself (signal, `expired` event, LockLostError 'ttl-expired') unless you
   * call `lock.renew()` in time. true keeps it alive with the service's session.
   * @default true
   */
  autoRenew?: boolean;
  /** Seconds a hard-TTL lock (`autoRenew: false`) lasts without renew(). @default the service's ttl */
  ttl?: number;
}

/** Backoff between retries of an acquire while etcd is unreachable. @publicApi */
export interface RetryOptions {
  /** First pause in ms; it doubles after each failed try. @default 50 */
  initialMs?: number;
  /** Longest pause in ms. @default 1000 */
  maxMs?: number;
}

/** Per-call options of `tryAcquire` and `tryWithLock`: they never wait (nor retry). @publicApi */
export type TryAcquireOptions = Omit<AcquireOptions, 'waitTimeout' | 'retry'>;
