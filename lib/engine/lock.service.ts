import { AsyncLocalStorage } from 'node:async_hooks';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { EtcdLeaseInvalidError, isRecoverableError, type Etcd3 } from 'etcd3';
import { Subject, type Observable } from 'rxjs';
import { AbortScope } from '../util/abort-scope.js';
import { ClusterWatch } from '../backends/etcd/cluster-watch.js';
import type { LockChange } from '../backends/etcd/lock-table.js';
import { createEtcdClient, ignoreRepliesForEndedWatches } from '../backends/etcd/etcd-client.js';
import { configurationProblem, unavailableError } from '../backends/etcd/etcd-errors.js';
import { retryWithBackoff } from '../util/retry.js';
import { EtcdMutex, KindConflictError, QueueKeyGoneError } from '../backends/etcd/etcd-mutex.js';
import { holdWatchStreamOpen } from '../backends/etcd/key-watch.js';
import { canQueueTogether, covers, describeKind, type LockKind } from '../common/lock-kind.js';
import { EtcdSession } from '../backends/etcd/etcd-session.js';
import { leaseMarkerKey, queueKey, queuePrefix, prefixEnd, validateLockKey, waitingRoomKey, waitingRoomPrefix } from '../backends/etcd/lock-key.js';
import {
  EtcdUnavailableError,
  LockAbortedError,
  LockAlreadyHeldError,
  LockConfigurationError,
  LockError,
  LockLostError,
  LockNotHeldError,
  LockServiceClosedError,
  LockTimeoutError,
  type LockLossReason,
} from '../common/lock.errors.js';
import { EtcdLockHandle, HeldLock, type HoldOwner, type LockHandle } from './lock.handle.js';
import { LockInspector } from '../backends/etcd/lock-inspector.js';
import { INVALID_OPTION, LOCK_KIND_CONFLICT, OPTION_SETTINGS, type ConnectionSettings } from '../common/lock.messages.js';
import { OwnLease } from '../backends/etcd/own-lease.js';
import { encodeOwner, ownerRecord } from '../common/owner-record.js';
import { WaitingRoom } from '../backends/etcd/waiting-room.js';
import { resolveLockKind, resolveLockOptions, resolveOwnLeaseTtl, resolveRetry, validateDuration, validateWaitTimeout, type ResolvedLockOptions } from './lock-options.js';
import type { AcquireOptions, TryAcquireOptions } from '../interfaces/acquire-options.interface.js';
import type { EtcdLockModuleOptions } from '../interfaces/etcd-lock-module-options.interface.js';
import type { LockEvent } from '../interfaces/lock-event.interface.js';
import type { LockHolderInfo, LockInfo } from '../interfaces/lock-info.interface.js';
import { LockServiceLogger } from './lock-service.logger.js';

/**
 * How long a lock is held before its holder watches its own key. DESIGN §3 rule 7 has the
 * holder watch at once; measured, a watch created and cancelled per lock cost about as much
 * as the lock itself (etcd3 creates watches one at a time), so short critical sections skip
 * it. Nothing goes unreported: the watch starts from the acquisition revision, so a deletion
 * meanwhile is delivered when it starts, and the release's guarded delete reports a key that
 * is no longer ours as a loss.
 */
export const HOLDER_WATCH_DELAY_MS = 100;

/** What an async context holds: its locks by name, and the innermost one. */
interface LockScope {
  readonly locks: ReadonlyMap<string, HeldLock>;
  readonly current: LockHandle;
}

/**
 * Distributed locks on etcd. One etcd lease (session) is shared by every lock of the
 * service; waiters queue in FIFO order; each lock carries a fencing token; a lost lock is
 * reported through its handle's signal, `assertHeld()`, `withLock` and `events$`.
 *
 * Usable without Nest: `const locks = new LockService({ etcd: { hosts } })`, and `close()` it.
 * @publicApi
 */
export class LockService {
  /** Every lock event of this service: waiting, acquired, released, lost, timeout. */
  readonly events$: Observable<LockEvent>;

  private readonly options: ResolvedLockOptions;
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly events = new Subject<LockEvent>();
  private readonly scope = new AsyncLocalStorage<LockScope>();
  private readonly held = new Set<HeldLock>();
  private readonly closing = new AbortController();
  private session: Promise<EtcdSession> | undefined;
  /** A session was opened once: etcd was reachable with these options, so a failure to open another is an outage. */
  private connected = false;
  private closed: Promise<void> | undefined;
  private releaseWatchStream: (() => void) | undefined;
  private readonly inspector: LockInspector;
  /** Leases (hex) of this service's sessions: the watch reports only the others' locks. */
  private readonly ownSessions = new Set<string>();
  private readonly clusterWatch: ClusterWatch | undefined;
  private readonly log: LockServiceLogger;

  /** `settings` (internal): how its errors name the connection settings; the CLI passes its flags. */
  constructor(
    options: EtcdLockModuleOptions = {},
    private readonly settings: ConnectionSettings = OPTION_SETTINGS,
  ) {
    this.options = resolveLockOptions(options);
    this.ownsClient = !options.client;
    this.client = options.client ?? createEtcdClient(this.options.etcd);
    ignoreRepliesForEndedWatches(this.client); // a crash of etcd3's that our watches' ends could trigger
    this.events$ = this.events.asObservable();
    this.log = new LockServiceLogger(this.options.logger, this.ownsClient ? String(this.options.etcd.hosts) : 'the given etcd3 client', this.options.prefix);
    this.log.follow(this.events$);
    this.inspector = new LockInspector(this.client, this.options.prefix);
    setMaxListeners(Infinity, this.closing.signal); // every acquire in flight listens to it
    if (this.options.watch) {
      const retryable = (err: unknown) => isUnavailable(this.toLockError(err));
      this.clusterWatch = new ClusterWatch(this.client, this.options.prefix, this.options.watch.prefix, changes => this.emitRemote(changes), retryable);
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
    return this.reenter(name, kind, options.reentrant) ?? (await this.lock(name, kind, fair, { ...options, waitTimeout }))!;
  }

  /** Takes the lock only if it is free; null otherwise, and nothing is left behind in etcd. */
  async tryAcquire(key: string, options: TryAcquireOptions = {}): Promise<LockHandle | null> {
    const name = this.prepare(key, options.signal);
    const { kind } = resolveLockKind(options);
    return this.reenter(name, kind, options.reentrant) ?? this.lock(name, kind, true, { ...options, waitTimeout: undefined }); // never waits
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
    const prefix = Buffer.from(queuePrefix(this.options.prefix, this.prepare(key)));
    // count the lock's queue keys
    const res = await this.answer(() => this.client.kv.range({ key: prefix, range_end: prefixEnd(prefix), count_only: true }));
    return Number(res.count) > 0;
  }

  /**
   * Who holds `key` (owner, host, pid, token, acquired-at, lease TTL left) and who waits for
   * it, in order, whichever process they are in; null when nobody does.
   */
  async getLockInfo(key: string): Promise<LockInfo | null> {
    const name = this.prepare(key);
    return this.answer(() => this.inspector.info(name));
  }

  /** Every held lock whose name starts with `prefix` (all by default), with its holders and waiters. */
  async listLocks(prefix = ''): Promise<LockInfo[]> {
    if (typeof prefix !== 'string') throw new LockConfigurationError(INVALID_OPTION('prefix', `expected a lock name prefix, got ${String(prefix)}`));
    return this.answer(() => this.inspector.list(prefix));
  }

  /**
   * For operators: removes the current holder's key of `key` (every holder's, for a shared
   * lock or a semaphore), and nothing else: the holder's other locks stay. The holder learns
   * within one watch event (once it has held the lock 100 ms; before, at its release): its
   * signal aborts and it emits `lost` with reason 'forced'. The next waiter gets the lock.
   * Returns the holders removed (none if the lock was free).
   */
  async forceUnlock(key: string): Promise<LockHolderInfo[]> {
    const name = this.prepare(key);
    return this.answer(() => this.inspector.forceUnlock(name, this.options.ownerId));
  }

  /** The lock held by the calling async context (the innermost withLock), if any. */
  current(): LockHandle | undefined {
    return this.scope.getStore()?.current;
  }

  /**
   * Releases every held lock (one transaction per 100) and revokes the session lease, which
   * frees every other key at once, so waiters elsewhere need not wait a TTL; then closes the
   * etcd client if it created it.
   */
  close(): Promise<void> {
    return (this.closed ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closing.abort(new LockServiceClosedError());
    const session = await this.session?.catch(() => undefined);
    this.clusterWatch?.stop();
    const held = [...this.held];
    const stillHeld = held.filter(lock => lock.isHeld); // a lost lock's key goes with its lease
    // deleted before the lease is revoked: a revoke deletes keys the way an expiry does, and watchers would report them expired
    await this.releaseKeys(stillHeld);
    for (const lock of held) this.end(lock, 'released');
    await Promise.all(held.map(lock => lock.ownLeaseRevoked)); // hard-TTL locks' keys go before the client closes
    this.releaseWatchStream?.();
    const revoked = await session?.close();
    if (this.ownsClient) this.client.close();
    this.log.closed(stillHeld.length, session, revoked ?? false);
    this.events.complete();
  }

  private prepare(key: string, signal?: AbortSignal): string {
    if (this.closing.signal.aborted) throw new LockServiceClosedError();
    const name = validateLockKey(key);
    if (signal?.aborted) throw new LockAbortedError(name, signal.reason);
    return name;
  }

  /**
   * A context that already holds `name` gets another hold on it instead of queueing behind
   * itself (an exclusive hold covers a shared one; a shared hold cannot become exclusive).
   */
  private reenter(name: string, kind: LockKind, reentrant = true): LockHandle | undefined {
    const outer = this.scope.getStore()?.locks.get(name);
    // not held here, released, or being released (its last hold gone): queue like anyone else
    if (!outer || outer.holds === 0 || outer.signal.reason instanceof LockNotHeldError) return undefined;
    if (!outer.isHeld) throw outer.signal.reason; // lost: never re-acquire silently
    if (!reentrant) throw new LockAlreadyHeldError(name);
    const held = outer.mutex.kind;
    if (!canQueueTogether(held, kind)) throw new LockConfigurationError(LOCK_KIND_CONFLICT(name, describeKind(kind), describeKind(held)));
    if (!covers(held, kind)) throw new LockAlreadyHeldError(name, 'this-context-shared');
    outer.holds++;
    return new EtcdLockHandle(outer, this.holdOwner);
  }

  /**
   * Takes `name` in etcd: queueing when `waitTimeout` is given (or, unfair, watching for it
   * to be free), else only if it is free.
   */
  private async lock(name: string, kind: LockKind, fair: boolean, options: AcquireOptions): Promise<LockHandle | null> {
    const { waitTimeout, signal } = options;
    const wait = waitTimeout !== undefined;
    const maxHold = validateDuration('maxHold', options.maxHold ?? Infinity, true);
    const minHold = validateDuration('minHold', options.minHold ?? 0, false);
    const retry = wait ? resolveRetry(options.retry) : undefined; // a try never waits, nor retries
    const ownTtl = resolveOwnLeaseTtl(options, this.options.ttl);
    const startedAt = performance.now();
    const outer = new AbortScope([this.closing.signal, signal], waitTimeout);
    // while etcd is unreachable, try again within the wait; the last such error is the answer if time runs out
    let unavailable: unknown;
    const retrying = <T>(attempt: () => Promise<T>, abort: AbortSignal): Promise<T> =>
      retryWithBackoff(async () => {
        const value = await attempt();
        unavailable = undefined; // etcd answered: a later timeout is a plain timeout
        return value;
      }, {
        initialMs: retry?.initialMs ?? 0,
        maxMs: retry?.maxMs ?? 0,
        signal: abort,
        retryIf: err => {
          if (retry === undefined || !isUnavailable(err)) return false;
          unavailable = err;
          return true;
        },
      });
    let session: EtcdSession;
    try {
      // the first session is bounded by connectTimeout (its grant retries within it); a later one, after an outage, is retried within the wait
      const opening = this.connected ? retrying(() => this.currentSession(), outer.signal) : this.currentSession();
      session = await untilAborted(opening, outer.signal);
    } catch (err) {
      outer.dispose();
      throw this.acquireError(err, name, performance.now() - startedAt, undefined, outer.timedOut, signal, unavailable);
    }
    const stop = new AbortScope([outer.signal, session.signal]);
    const prefix = queuePrefix(this.options.prefix, name);
    const slot = session.slots.claim(name);
    const record = ownerRecord(this.options.ownerId);
    const mutex = new EtcdMutex(this.client, prefix, kind, queueKey(prefix, kind, session.leaseHex, slot.number), session.leaseId, record, slot);
    try {
      // one key for every try: a retried enqueue finds its own key instead of queueing twice
      const enqueue = retrying(() => mutex.tryAcquire(!wait || !fair), stop.signal);
      // do not wait out a slow etcd past the deadline; the key is removed once the answer comes
      enqueue.catch(() => undefined).finally(() => stop.signal.aborted && this.discard(mutex, session));
      if (!(await untilAborted(enqueue, stop.signal))) {
        if (!wait) {
          if (mutex.revision !== undefined) await this.discard(mutex, session); // a retried try found its own key behind another
          else mutex.wroteNothing();
          return null;
        }
        this.emit({ type: 'waiting', key: name });
        if (fair) await mutex.waitForTurn(stop.signal);
        else await mutex.waitUntilFree(stop.signal, new WaitingRoom(this.client, waitingRoomPrefix(prefix), waitingRoomKey(prefix, session.leaseHex, slot.number), session.leaseId, record));
      }
      if (!session.isValid) throw new LockLostError(name, 'session-expired');
      stop.signal.throwIfAborted(); // lost a race against a timeout, abort or close
    } catch (err) {
      await this.discard(mutex, session); // no queue key is left behind, on any failure path
      if (err instanceof EtcdLeaseInvalidError) session.expire(); // the lease is gone in etcd
      if (err instanceof KindConflictError) throw new LockConfigurationError(LOCK_KIND_CONFLICT(name, describeKind(kind), describeKind(err.found)));
      throw this.acquireError(err, name, performance.now() - startedAt, session, outer.timedOut, signal, unavailable);
    } finally {
      stop.dispose();
      outer.dispose();
    }
    const held = new HeldLock(name, mutex, session, minHold);
    if (ownTtl !== undefined) await this.pinToOwnLease(held, ownTtl);
    this.held.add(held);
    held.stopWatching = mutex.watchHolder(forcedBy => this.end(held, forcedBy ? 'forced' : 'key-deleted'), HOLDER_WATCH_DELAY_MS);
    if (maxHold !== Infinity) held.maxHoldTimer = setTimeout(() => this.expire(held), maxHold).unref();
    this.emit({ type: 'acquired', key: name, token: held.token, waitedMs: performance.now() - startedAt });
    return new EtcdLockHandle(held, this.holdOwner);
  }

  private acquireError(
    err: unknown,
    name: string,
    waitedMs: number,
    session: EtcdSession | undefined,
    timedOut: boolean,
    signal: AbortSignal | undefined,
    unavailable: unknown,
  ): Error {
    if (this.closing.signal.aborted) return new LockServiceClosedError();
    if (signal?.aborted) return new LockAbortedError(name, signal.reason);
    if (timedOut && unavailable !== undefined) return this.toLockError(unavailable); // time ran out while etcd was unreachable
    if (timedOut) {
      this.emit({ type: 'timeout', key: name, waitedMs });
      return new LockTimeoutError(name, Math.round(waitedMs));
    }
    if (err instanceof QueueKeyGoneError) return new LockLostError(name, 'key-deleted');
    if (session?.signal.aborted || err instanceof EtcdLeaseInvalidError) return new LockLostError(name, 'session-expired');
    return this.toLockError(err);
  }

  /** One request to etcd outside a lock's life, its failure typed. */
  private async answer<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw this.toLockError(err);
    }
  }

  /** The typed error for a failure of etcd: a configuration problem (credentials, TLS, permission) says what to change. */
  private toLockError(err: unknown): Error {
    if (err instanceof LockError) return err;
    const hosts = this.ownsClient ? String(this.options.etcd.hosts) : 'the given etcd3 client';
    return configurationProblem(err, hosts, this.options.prefix) ?? unavailableError(err, hosts, this.settings);
  }

  /**
   * Deletes the keys of `held` (each guarded by its create revision, one request per 100),
   * within connectTimeout; what is left goes with the lease.
   */
  private async releaseKeys(held: HeldLock[]): Promise<void> {
    const deadline = Date.now() + this.options.connectTimeout;
    const requests = [];
    for (let i = 0; i < held.length; i += 100) {
      // each release's own guarded delete, nested: one failed guard spares the others
      const success = held.slice(i, i + 100).map(lock => ({ request_txn: lock.mutex.guardedDelete() }));
      requests.push(this.client.kv.txn({ compare: [], success, failure: [] }, { deadline }).catch(() => undefined));
    }
    await Promise.all(requests);
  }

  /** What lock handles call back into. */
  private readonly holdOwner: HoldOwner = { releaseHold: held => this.releaseHold(held), renewHold: (held, ttl) => this.renewHold(held, ttl) };

  /** A hard-TTL lock: moves the freshly acquired key onto a lease of its own, or gives it back. */
  private async pinToOwnLease(held: HeldLock, ttl: number): Promise<void> {
    try {
      const own = await OwnLease.take(this.client, held.mutex, ttl, this.options.connectTimeout, this.leaseMarker);
      if (!own) throw new LockLostError(held.key, 'key-deleted');
      held.ownLease = own;
      own.onDeadline(() => this.end(held, 'ttl-expired'));
    } catch (err) {
      await this.discard(held.mutex, held.session);
      throw this.toLockError(err);
    }
  }

  /** renew(): a fresh own lease for a hard-TTL lock; a check only for the others. */
  private async renewHold(held: HeldLock, ttl?: number): Promise<void> {
    if (!held.isHeld) throw held.signal.reason ?? new LockLostError(held.key, 'session-expired');
    const own = held.ownLease;
    if (!own) return; // the session keeps it alive
    const seconds = ttl === undefined ? own.ttl : resolveOwnLeaseTtl({ autoRenew: false, ttl }, own.ttl)!;
    let renewed: boolean;
    try {
      renewed = await own.renew(held.mutex, seconds);
    } catch (err) {
      throw this.toLockError(err); // not renewed: the lock lasts until its current deadline
    }
    if (!renewed) this.end(held, 'key-deleted');
    else if (held.signal.aborted) await own.end(); // it ran out while we renewed: let the new lease go too
    else own.onDeadline(() => this.end(held, 'ttl-expired'));
    held.signal.throwIfAborted();
  }

  /**
   * Gives up one hold; the last one releases the key in etcd (guarded by its revision),
   * at once or, within minHold, as soon as minHold has passed (without making the caller wait).
   */
  private async releaseHold(held: HeldLock): Promise<void> {
    if (--held.holds > 0) return;
    const early = held.minHold - (performance.now() - held.acquiredAt);
    if (early > 0) setTimeout(() => void this.releaseNow(held), early).unref();
    else await this.releaseNow(held);
  }

  /**
   * Deletes the key, then ends the lock as released, or as lost if the key was no longer
   * ours: a deletion the (deferred) holder watch did not report yet is reported now.
   */
  private async releaseNow(held: HeldLock): Promise<void> {
    if (held.signal.aborted) return; // already lost or released
    held.stopWatching(); // our own delete is not a loss
    let wasOurs = true;
    try {
      wasOurs = await held.mutex.release(); // the key is gone: its name can serve again
    } catch {
      this.discardLater(held.mutex, held.session); // etcd did not answer: keep trying in the background
    }
    this.end(held, wasOurs || !held.session.isValid ? 'released' : 'key-deleted');
  }

  /** maxHold passed: the lock ends as if lost (signal, LockLostError) and its key is released. */
  private expire(held: HeldLock): void {
    if (this.end(held, 'max-hold')) void this.discard(held.mutex, held.session);
  }

  /** Ends a lock once: released by us, or lost. Returns false if it had already ended. */
  private end(held: HeldLock, how: 'released' | LockLossReason): boolean {
    if (!(how === 'released' ? held.release() : held.lose(how))) return false;
    this.held.delete(held);
    const heldMs = performance.now() - held.acquiredAt;
    if (how === 'released') this.emit({ type: 'released', key: held.key, token: held.token, heldMs });
    else this.emit({ type: how === 'max-hold' || how === 'ttl-expired' ? 'expired' : 'lost', key: held.key, token: held.token, heldMs, reason: how });
    return true;
  }

  /**
   * Deletes an attempt's key (guarded: never a newer holder's). If etcd does not answer,
   * keeps trying in the background until it does or the session ends (its lease then takes
   * the key with it).
   */
  private async discard(mutex: EtcdMutex, session: EtcdSession): Promise<void> {
    try {
      await mutex.release(); // awaited: a failed acquire returns with its key already gone
    } catch {
      this.discardLater(mutex, session);
    }
  }

  private discardLater(mutex: EtcdMutex, session: EtcdSession): void {
    void retryWithBackoff(() => mutex.release(), {
      initialMs: 100,
      maxMs: 2000,
      retryIf: () => session.isValid && !this.closing.signal.aborted,
    }).catch(() => undefined);
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
    const locks = new Map(this.scope.getStore()?.locks).set(lock.key, (lock as EtcdLockHandle).held);
    return this.scope.run({ locks, current: lock }, fn);
  }

  /**
   * Emits `skipped`: a function was not run because its lock was busy.
   * @internal used by tryWithLock and by @WithLock with onContention 'skip'
   */
  reportSkipped(key: string): void {
    this.emit({ type: 'skipped', key });
  }

  /**
   * Nest lifecycle hook: opens the session at startup, so a bad TTL or an unreachable etcd
   * fails bootstrap; with `watch`, also waits until the watch runs.
   */
  async onModuleInit(): Promise<void> {
    await this.currentSession();
    await this.checkAccess();
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
   * One request that needs read access to the whole lock prefix and write access in it (a
   * delete of a key nobody writes): missing credentials or permissions fail at startup, not
   * at the first lock. etcd lets anyone grant a lease, so the session alone does not tell.
   */
  private async checkAccess(): Promise<void> {
    const prefix = Buffer.from(this.options.prefix);
    await this.answer(() =>
      this.client.kv.txn({
        compare: [],
        success: [
          { request_range: { key: prefix, range_end: prefixEnd(prefix), limit: 1, keys_only: true } },
          { request_delete_range: { key: Buffer.from(`${this.options.prefix}\u0000access-check`) } },
        ],
        failure: [],
      }),
    );
  }

  /** Nest lifecycle hook: {@link close}. */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** The live session, opened on first use and replaced after it expires. */
  private async currentSession(): Promise<EtcdSession> {
    for (;;) {
      const pending = (this.session ??= this.openSession());
      const session = await pending;
      if (session.isValid) return session;
      if (this.session === pending) this.session = undefined;
    }
  }

  private openSession(): Promise<EtcdSession> {
    this.releaseWatchStream ??= holdWatchStreamOpen(this.client, `${this.options.prefix}\u0000idle`);
    const opening = EtcdSession.open(this.client, this.options.ttl, this.options.connectTimeout, this.leaseMarker, expired => {
      // a hard-TTL lock lives by its own lease, not the session's
      const lost = [...this.held].filter(held => held.session === expired && !held.ownLease);
      this.log.sessionExpired(expired, lost.length);
      for (const held of lost) this.end(held, 'session-expired');
    }).then(
      session => {
        this.connected = true;
        this.ownSessions.add(session.leaseHex);
        this.log.sessionOpened(session);
        return session;
      },
      err => {
        if (this.session === opening) this.session = undefined; // the next acquire tries again
        throw this.toLockError(err);
      },
    );
    return opening;
  }

  /** Every lease this service puts keys on carries this marker (see leaseMarkerKey). */
  private readonly leaseMarker = (leaseHex: string) => ({ key: leaseMarkerKey(this.options.prefix, leaseHex), value: encodeOwner(ownerRecord(this.options.ownerId)) });

  /** The watch's changes to other processes' locks, as remote events. */
  private emitRemote(changes: LockChange[]): void {
    for (const { sessionLease, ...change } of changes) {
      if (this.ownSessions.has(sessionLease)) continue; // ours: reported as local events
      this.events.next({ ...change, origin: 'remote', at: new Date() });
    }
  }

  private emit(event: Omit<LockEvent, 'owner' | 'origin' | 'at'>): void {
    this.events.next({ ...event, owner: this.options.ownerId, origin: 'local', at: new Date() });
  }
}

/**
 * etcd did not answer (down, restarting, a connection reset): worth another try. A TLS or
 * credentials problem is a LockConfigurationError by then (toLockError), never retried.
 */
function isUnavailable(err: unknown): boolean {
  return err instanceof EtcdUnavailableError || (err instanceof Error && !(err instanceof LockError) && isRecoverableError(err));
}

/** Resolves with `promise`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
