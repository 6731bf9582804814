/**
 * Whether a LockService can take locks now, from `LockService.health()`: the answer of a
 * readiness probe, and what the Terminus indicator (`nestjs-etcd-lock/terminus`) reports.
 * @publicApi
 */
export interface LockHealth {
  /** A live session, and the store answered within the time given. */
  readonly healthy: boolean;
  /** Why not, when not healthy: what failed and what to check. */
  readonly problem?: string;
  /** Where the locks are: "etcd at http://…", "Redis at redis://…", "memory". */
  readonly store: string;
  /** The session's id (etcd: the lease id in hex), when one is open. */
  readonly session?: string;
  /**
   * Ms before the session's local deadline if no keepalive is acknowledged meanwhile: how long
   * this process could lose the store and keep its locks. 0 without a live session; `null` for
   * a session without a deadline (the in-memory backend).
   */
  readonly validForMs: number | null;
  /** Locks this service holds now. */
  readonly held: number;
  /** Acquires of this service queued behind another holder now. */
  readonly waiting: number;
}
