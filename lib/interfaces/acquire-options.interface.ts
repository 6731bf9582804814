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
}

/** Per-call options of `tryAcquire` and `tryWithLock`: they never wait. @publicApi */
export type TryAcquireOptions = Omit<AcquireOptions, 'waitTimeout'>;
