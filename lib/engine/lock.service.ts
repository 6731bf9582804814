import type { Observable } from 'rxjs';
import { EtcdBackend } from '../backends/etcd/index.js';
import type { BackendConnection, BackendSession, LockChange, LockWatch } from '../interfaces/lock-backend.interface.js';
import { LockAbortedError, LockConfigurationError, LockLostError, LockServiceClosedError } from '../common/lock.errors.js';
import { INVALID_OPTION, OPTION_SETTINGS, type ConnectionSettings } from '../common/lock.messages.js';
import type { AcquireOptions, TryAcquireOptions } from '../interfaces/acquire-options.interface.js';
import type { EtcdLockModuleOptions } from '../interfaces/etcd-lock-module-options.interface.js';
import type { LockEvent } from '../interfaces/lock-event.interface.js';
import type { LockHealth } from '../interfaces/lock-health.interface.js';
import type { LockHolderInfo, LockInfo } from '../interfaces/lock-info.interface.js';
import { validateLockKey } from '../common/lock-name.js';
import { Acquirer } from './acquirer.js';
import { Holds } from './holds.js';
import { resolveLockKind, resolveLockOptions, resolveTelemetryName, validateDuration, validateWaitTimeout, type ResolvedLockOptions } from './lock-options.js';
import { AbortScope } from '../util/abort-scope.js';
import { LockEvents } from './lock-events.js';
import { LockScope } from './lock-scope.js';
import { LockServiceLogger } from './lock-service.logger.js';
import { HeldLockHandle, type LockHandle } from './lock.handle.js';
import { Sessions } from './sessions.js';
import { LockTelemetry } from '../telemetry/lock-telemetry.js';

export { HOLDER_WATCH_DELAY_MS } from './holds.js';

/**
 * Distributed locks. One session (on etcd, a lease) is shared by every lock of the service;
 * waiters queue in FIFO order; each lock carries a fencing token; a lost lock is reported
 * through its handle's signal, `assertHeld()`, `withLock` and `events$`. The locks are kept in
 * etcd unless the `backend` option names another store.
 *
 * Usable without Nest: `const locks = new LockService({ etcd: { hosts } })`, and `close()` it.
 * @publicApi
 */
export class LockService {
  /** Every lock event of this service: waiting, acquired, released, lost, timeout. */
  readonly events$: Observable<LockEvent>;

  private readonly options: ResolvedLockOptions;
  private readonly backend: BackendConnection;
  private readonly closing = new AbortController();
  private readonly events: LockEvents;
  private readonly scope = new LockScope();
  private readonly sessions: Sessions;
  private readonly holds: Holds;
  private readonly acquirer: Acquirer;
  private readonly log: LockServiceLogger;
  private readonly telemetry: LockTelemetry;
  private readonly clusterWatch: LockWatch | undefined;
  private closed: Promise<void> | undefined;

  /** `names` (internal): how its errors name the connection settings; the CLI passes its flags. */
  constructor(options: EtcdLockModuleOptions = {}, names: ConnectionSettings = OPTION_SETTINGS) {
    this.options = resolveLockOptions(options);
    const { prefix, ttl, connectTimeout, ownerId } = this.options;
    const backend = this.options.backend ?? new EtcdBackend(this.options.etcd, options.client, names);
    this.backend = backend.connect({ prefix, ttl, connectTimeout, ownerId });
    this.log = new LockServiceLogger(this.options.logger, this.backend.description, prefix);
    this.telemetry = new LockTelemetry(this.backend.system ?? 'custom');
    this.sessions = new Sessions(this.backend, this.log, expired => this.holds.sessionExpired(expired, lost => this.log.sessionExpired(expired, lost)));
    this.events = new LockEvents(ownerId, this.sessions.ids, this.log.lockLost);
    this.events$ = this.events.events$;
    this.holds = new Holds(this.backend, this.events, this.closing.signal);
    this.acquirer = new Acquirer(this.backend, this.sessions, this.holds, this.events, this.scope, this.closing.signal, { ttl, ownerId });
    if (this.options.watch) {
      const retryable = (err: unknown) => this.backend.isUnavailable(this.backend.toLockError(err));
      this.clusterWatch = this.backend.watch(this.options.watch.prefix, changes => this.events.remote(changes), retryable);
    }
  }

  /**
   * Waits in the lock's FIFO queue until it is ours. Rejects with LockTimeoutError after
   * `waitTimeout`, LockAbortedError when `signal` aborts (nothing stays queued either way).
   */
  async acquire(key: string, options: AcquireOptions = {}): Promise<LockHandle> {
    const name = this.prepare(key, options.signal);
    const waitTimeout = validateWaitTimeout(options.waitTimeout ?? this.options.waitTimeout);
    const { kind, fair } = resolveLockKind(options);
    const telemetryName = resolveTelemetryName(options.telemetryName);
    const reentered = this.acquirer.reenter(name, kind, options.reentrant);
    if (reentered) return reentered; // a hold of the calling context: not a new acquisition
    return (await this.telemetry.acquire({ name: telemetryName, key: name, kind }, onWaiting => this.acquirer.lock(name, kind, fair, { ...options, waitTimeout }, onWaiting)))!;
  }

  /** Takes the lock only if it is free; null otherwise, and nothing is left behind in etcd. */
  async tryAcquire(key: string, options: TryAcquireOptions = {}): Promise<LockHandle | null> {
    const name = this.prepare(key, options.signal);
    const { kind } = resolveLockKind(options);
    const telemetryName = resolveTelemetryName(options.telemetryName);
    const reentered = this.acquirer.reenter(name, kind, options.reentrant);
    if (reentered) return reentered;
    return this.telemetry.acquire({ name: telemetryName, key: name, kind }, () => this.acquirer.lock(name, kind, true, { ...options, waitTimeout: undefined })); // never waits
  }

  /**
   * Runs `fn` holding the lock and releases it after. If the lock is lost while `fn` runs,
   * `fn` is told through `lock.signal`, and once it settles this rejects with LockLostError
   * (its own error, if any, as the cause): its result may not be trusted.
   */
  async withLock<T>(key: string, fn: (lock: LockHandle) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    return this.holdDuring(await this.acquire(key, options), fn);
  }

  /** Like withLock, but runs `fn` only if the lock is free right now. */
  async tryWithLock<T>(
    key: string,
    fn: (lock: LockHandle) => T | Promise<T>,
    options?: TryAcquireOptions,
  ): Promise<{ acquired: boolean; result?: T }> {
    const lock = await this.tryAcquire(key, options);
    if (!lock) {
      this.reportSkipped(key);
      return { acquired: false };
    }
    return { acquired: true, result: await this.holdDuring(lock, fn) };
  }

  /** True when anyone (any process) holds or waits for the lock. */
  async isLocked(key: string): Promise<boolean> {
    const name = this.prepare(key);
    return this.answer(() => this.backend.isLocked(name));
  }

  /**
   * Who holds `key` (owner, host, pid, token, acquired-at, lease TTL left) and who waits for
   * it, in order, whichever process they are in; null when nobody does.
   */
  async getLockInfo(key: string): Promise<LockInfo | null> {
    const name = this.prepare(key);
    return this.answer(() => this.backend.info(name));
  }

  /** Every held lock whose name starts with `prefix` (all by default), with its holders and waiters. */
  async listLocks(prefix = ''): Promise<LockInfo[]> {
    if (typeof prefix !== 'string') throw new LockConfigurationError(INVALID_OPTION('prefix', `expected a lock name prefix, got ${String(prefix)}`));
    return this.answer(() => this.backend.list(prefix));
  }

  /**
   * For operators: removes the current holder's key of `key` (every holder's, for a shared
   * lock or a semaphore), and nothing else: the holder's other locks stay. The holder learns
   * within one watch event (once it has held the lock 100 ms; before, at its release): its
   * signal aborts and it emits `lost` with reason 'forced'. The next waiter gets the lock.
   * With `token`, only the holder with that fencing token, if it still holds the lock: the
   * one an operator saw, never a holder that came since (or another reader of a shared lock).
   * Returns the holders removed (none if the lock was free, or no longer held with `token`).
   */
  async forceUnlock(key: string, options: { token?: bigint } = {}): Promise<LockHolderInfo[]> {
    const name = this.prepare(key);
    const { token } = options ?? {};
    if (token !== undefined && typeof token !== 'bigint') throw new LockConfigurationError(INVALID_OPTION('token', `expected the holder's fencing token as a bigint (LockHandle.token, LockHolderInfo.token), got ${String(token)}`));
    return this.answer(() => this.backend.forceUnlock(name, this.options.ownerId, token));
  }

  /**
   * Whether this service can take locks now, for a readiness probe: it opens a session if it
   * has none (so a replica whose session expired gets a new one here) and asks the store once,
   * both within `timeoutMs`. Never throws: a failure is `healthy: false` with the `problem`.
   */
  async health(timeoutMs = 1000): Promise<LockHealth> {
    const timeout = validateDuration('timeoutMs', timeoutMs, false);
    const report = (session: BackendSession | undefined, problem?: string): LockHealth => ({
      healthy: problem === undefined,
      ...(problem !== undefined && { problem }),
      store: this.backend.description,
      ...(session && { session: session.id }),
      validForMs: !session ? 0 : Number.isFinite(session.validForMs) ? Math.round(session.validForMs) : null,
      held: this.holds.count,
      waiting: this.acquirer.waiting,
    });
    if (this.closing.signal.aborted) return report(undefined, 'the lock service is closed');
    const deadline = new AbortScope([], timeout);
    let session: BackendSession | undefined;
    try {
      session = await deadline.race(this.sessions.current());
      await deadline.race(this.backend.checkAccess());
    } catch (err) {
      const live = session?.isValid ? session : undefined;
      return report(live, deadline.timedOut ? `${this.backend.description} did not answer within ${timeout} ms` : this.backend.toLockError(err).message);
    } finally {
      deadline.dispose();
    }
    return session.isValid ? report(session) : report(undefined, `the session passed its deadline: no keepalive was acknowledged within its TTL of ${session.ttl} s`);
  }

  /** The lock held by the calling async context (the innermost withLock), if any. */
  current(): LockHandle | undefined {
    return this.scope.current();
  }

  /**
   * Releases every held lock (on etcd, one transaction per 100) and ends the session (on etcd,
   * revokes its lease), which frees every other entry at once, so waiters elsewhere need not
   * wait a TTL; then closes the etcd client if it created it.
   */
  close(): Promise<void> {
    return (this.closed ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closing.abort(new LockServiceClosedError());
    const session = await this.sessions.last();
    this.clusterWatch?.stop();
    const released = await this.holds.releaseAll();
    const confirmed = await session?.close();
    await this.backend.close();
    this.log.closed(released, session, confirmed ?? false);
    this.events.complete();
  }

  private prepare(key: string, signal?: AbortSignal): string {
    if (this.closing.signal.aborted) throw new LockServiceClosedError();
    const name = validateLockKey(key);
    if (signal?.aborted) throw new LockAbortedError(name, signal.reason);
    return name;
  }

  /** One request to the backend outside a lock's life, its failure typed. */
  private async answer<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw this.backend.toLockError(err);
    }
  }

  /**
   * Runs `fn` in the async scope of `lock` (for current() and reentrancy), releases the lock
   * after, and rejects with LockLostError if the lock was lost meanwhile.
   * @internal used by withLock and by the @WithLock decorator
   */
  async holdDuring<T>(lock: LockHandle, fn: (lock: LockHandle) => T | Promise<T>): Promise<T> {
    let outcome: { result: T } | { error: unknown };
    try {
      outcome = { result: await this.enterScope(lock, () => fn(lock)) };
    } catch (error) {
      outcome = { error };
    }
    await lock.release(); // first: the release itself may find the lock lost
    const lost = lock.signal.reason;
    if (lost instanceof LockLostError) {
      const cause = 'error' in outcome ? outcome.error : undefined;
      throw cause === lost ? lost : new LockLostError(lost.key, lost.reason, { cause });
    }
    if ('error' in outcome) throw outcome.error;
    return outcome.result;
  }

  /**
   * Runs `fn` synchronously in the async scope of `lock`: current() returns it there, and
   * acquiring its key again re-enters it.
   * @internal used by the @WithLock interceptor, which holds the lock across an Observable
   */
  enterScope<T>(lock: LockHandle, fn: () => T): T {
    return this.scope.run(lock, (lock as HeldLockHandle).held, fn);
  }

  /**
   * Emits `skipped`: a function was not run because its lock was busy.
   * @internal used by tryWithLock and by @WithLock with onContention 'skip'
   */
  reportSkipped(key: string): void {
    this.events.emit({ type: 'skipped', key });
  }

  /**
   * Nest lifecycle hook: opens the session at startup, so a bad TTL or an unreachable etcd
   * fails bootstrap; with `watch`, also waits until the watch runs.
   */
  async onModuleInit(): Promise<void> {
    await this.sessions.current();
    await this.answer(() => this.backend.checkAccess()); // missing credentials or permissions fail at startup, not at the first lock
    await this.watching();
  }

  /**
   * Resolves once the `watch` option's watch runs (at once without it): remote events from
   * then on are reported. Rejects with the reason it could not start (it retries meanwhile if
   * etcd was unreachable).
   * @internal used by onModuleInit and the CLI's watch
   */
  async watching(): Promise<void> {
    if (this.clusterWatch) await this.answer(() => this.clusterWatch!.ready);
  }

  /**
   * Every change of holder of locks whose name starts with `prefix`, any process's, this
   * service's own included (the `watch` option's events leave those out). Stop it before close.
   * @internal the lock board's feed
   */
  watchChanges(prefix: string, onChanges: (changes: LockChange[]) => void): LockWatch {
    const retryable = (err: unknown) => this.backend.isUnavailable(this.backend.toLockError(err));
    const watch = this.backend.watch(prefix, onChanges, retryable);
    const ready = this.answer(() => watch.ready);
    ready.catch(() => undefined); // the caller learns from ready; the watch retries meanwhile
    return { ready, stop: () => watch.stop() };
  }

  /** Where this service keeps its locks, for an operator's screen. @internal */
  get location(): { readonly store: string; readonly prefix: string } {
    return { store: this.backend.description, prefix: this.options.prefix };
  }

  /** Nest lifecycle hook: {@link close}. */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
