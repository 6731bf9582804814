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
  /**
   * 'shared' makes a read lock: shared holders hold together, and an exclusive holder (a
   * writer) excludes everyone. Queue order is kept: a shared acquire behind a waiting writer
   * waits for it, so writers are never starved.
   * @default 'exclusive'
   */
  mode?: 'exclusive' | 'shared';
  /**
   * A semaphore: at most `limit` holders at once, in FIFO order. Every caller of one name
   * must pass the same limit (otherwise INVALID_OPTIONS). 1 is an exclusive lock.
   */
  limit?: number;
  /**
   * false lets an exclusive acquire take the lock as soon as it is free, ahead of callers
   * already waiting: no queue key while waiting, lower latency on a hot key, but no order
   * and every waiter wakes on each release. Exclusive locks only.
   * @default true
   */
  fair?: boolean;
  /** Seconds a hard-TTL lock (`autoRenew: false`) lasts without renew(). @default the service's ttl */
  ttl?: number;
  /**
   * The lock's name in metrics and span names (the `lock.name` attribute), such as
   * `'order:<<id>>'`: a few distinct values, never the key itself, or every key becomes a time
   * series. `@WithLock` sets it to its key template (its `Class.method` for a key function).
   * @default 'unnamed'
   */
  telemetryName?: string;
}

/** Backoff between retries of an acquire while etcd is unreachable. @publicApi */
export interface RetryOptions {
  /** First pause in ms; it doubles after each failed try. @default 50 */
  initialMs?: number;
  /** Longest pause in ms. @default 1000 */
  maxMs?: number;
}

/** Per-call options of `tryAcquire` and `tryWithLock`: they never wait (nor retry). @publicApi */
export type TryAcquireOptions = Omit<AcquireOptions, 'waitTimeout' | 'retry' | 'fair'>;
