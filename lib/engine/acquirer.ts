import { performance } from 'node:perf_hooks';
import type { BackendConnection, BackendSession, QueueEntry } from '../interfaces/lock-backend.interface.js';
import { KindConflictError, EntryGoneError } from '../common/backend.errors.js';
import { canQueueTogether, covers, describeKind, type LockKind } from '../common/lock-kind.js';
import { LockAbortedError, LockAlreadyHeldError, LockConfigurationError, LockLostError, LockServiceClosedError, LockTimeoutError } from '../common/lock.errors.js';
import { LOCK_KIND_CONFLICT } from '../common/lock.messages.js';
import { ownerRecord } from '../common/owner-record.js';
import type { AcquireOptions } from '../interfaces/acquire-options.interface.js';
import { AbortScope } from '../util/abort-scope.js';
import { retryWithBackoff } from '../util/retry.js';
import type { Holds } from './holds.js';
import { resolveOwnLeaseTtl, resolveRetry, validateDuration } from './lock-options.js';
import type { LockEvents } from './lock-events.js';
import type { LockScope } from './lock-scope.js';
import { HeldLockHandle, type LockHandle } from './lock.handle.js';
import type { Sessions } from './sessions.js';

/** How one acquire goes: re-enter a hold of the calling context, or queue in the backend. */
export class Acquirer {
  /** Acquires queued behind another holder now. */
  waiting = 0;

  constructor(
    private readonly backend: BackendConnection,
    private readonly sessions: Sessions,
    private readonly holds: Holds,
    private readonly events: LockEvents,
    private readonly scope: LockScope,
    /** aborted when the service closes */
    private readonly closing: AbortSignal,
    private readonly settings: { readonly ttl: number; readonly ownerId: string },
  ) {}

  /**
   * A context that already holds `name` gets another hold on it instead of queueing behind
   * itself (an exclusive hold covers a shared one; a shared hold cannot become exclusive).
   */
  reenter(name: string, kind: LockKind, reentrant = true): LockHandle | undefined {
    const outer = this.scope.holding(name);
    // not held here, released, or being released (its last hold gone): queue like anyone else
    if (!outer || outer.holds === 0 || outer.released) return undefined;
    if (!outer.isHeld) throw outer.reason ?? new LockLostError(name, 'session-expired'); // lost: never re-acquire silently
    if (!reentrant) throw new LockAlreadyHeldError(name);
    const held = outer.entry.kind;
    if (!canQueueTogether(held, kind)) throw new LockConfigurationError(LOCK_KIND_CONFLICT(name, describeKind(kind), describeKind(held)));
    if (!covers(held, kind)) throw new LockAlreadyHeldError(name, 'this-context-shared');
    outer.holds++;
    return new HeldLockHandle(outer, this.holds);
  }

  /**
   * Takes `name` in the backend: queueing when `waitTimeout` is given (or, unfair, watching
   * for it to be free), else only if it is free.
   */
  async lock(name: string, kind: LockKind, fair: boolean, options: AcquireOptions, onWaiting?: () => void): Promise<LockHandle | null> {
    const { waitTimeout, signal } = options;
    const wait = waitTimeout !== undefined;
    const maxHold = validateDuration('maxHold', options.maxHold ?? Infinity, true);
    const minHold = validateDuration('minHold', options.minHold ?? 0, false);
    const retry = wait ? resolveRetry(options.retry) : undefined; // a try never waits, nor retries
    const ownTtl = resolveOwnLeaseTtl(options, this.settings.ttl);
    const startedAt = performance.now();
    const deadline = wait ? startedAt + waitTimeout : Infinity;
    const remaining = () => Math.max(0, deadline - performance.now());
    let timedOut = false;
    // while the backend is unreachable, try again within the wait; the last such error is the answer if time runs out
    let unavailable: unknown;
    const retrying = <T>(attempt: () => Promise<T>, abort: AbortScope): Promise<T> =>
      retryWithBackoff(async () => {
        const value = await attempt();
        unavailable = undefined; // the backend answered: a later timeout is a plain timeout
        return value;
      }, {
        initialMs: retry?.initialMs ?? 0,
        maxMs: retry?.maxMs ?? 0,
        signal: abort,
        retryIf: err => {
          if (retry === undefined || !this.backend.isUnavailable(err)) return false;
          unavailable = err;
          return true;
        },
      });
    const failure = (err: unknown, session: BackendSession | undefined) =>
      this.acquireError(err, name, performance.now() - startedAt, session, timedOut, signal, unavailable);
    // the service closing, the caller's signal or the end of the wait stop the acquire
    const stopped = () => this.closing.aborted || signal?.aborted === true || timedOut;
    const openSession = async (): Promise<BackendSession> => {
      const scope = new AbortScope([this.closing, signal], remaining());
      try {
        // the first session is bounded by connectTimeout (its opening retries within it); a later one, after an outage, is retried within the wait
        const opening = this.sessions.connected ? retrying(() => this.sessions.current(), scope) : this.sessions.current();
        return await scope.race(opening);
      } catch (err) {
        timedOut = scope.timedOut;
        throw failure(err, undefined);
      } finally {
        scope.dispose();
      }
    };
    // most acquires find the session open: no scope, timer or listener for it
    let session = this.sessions.live() ?? (await openSession());
    let entry: QueueEntry;
    for (let renewed = false; ; renewed = true) {
      // one scope per try: the wait's deadline, the caller's signal, the service closing and the session's end
      const stop = new AbortScope([this.closing, signal, session.signal], remaining());
      // this try's own entry and session: a retry on a new session makes new ones
      const attempt = this.backend.entry(session, name, kind, ownerRecord(this.settings.ownerId));
      const attemptSession = session;
      let queued = false;
      try {
        // one entry for every try: a retried enqueue finds its own entry instead of queueing twice
        const enqueue = retrying(() => attempt.tryAcquire(!wait || !fair), stop);
        // do not wait out a slow backend past the deadline; the entry is removed once the answer comes
        enqueue.catch(() => undefined).finally(() => stop.aborted && this.holds.discard(attempt, attemptSession));
        const holds = await stop.race(enqueue);
        queued = true;
        if (!holds) {
          if (!wait) {
            if (attempt.token !== undefined) await this.holds.discard(attempt, session); // a retried try found its own entry behind another
            else attempt.wroteNothing();
            return null;
          }
          this.events.emit({ type: 'waiting', key: name });
          onWaiting?.();
          this.waiting++;
          try {
            if (fair) await attempt.waitForTurn(stop.signal);
            else await attempt.waitUntilFree(stop.signal);
          } finally {
            this.waiting--;
          }
        }
        if (!session.isValid) throw new LockLostError(name, 'session-expired');
        stop.throwIfAborted(); // lost a race against a timeout, abort or close
        entry = attempt;
        break;
      } catch (err) {
        timedOut ||= stop.timedOut;
        await this.holds.discard(attempt, session); // no entry is left behind, on any failure path
        if (this.backend.isSessionGone(err)) session.expire(); // the backend says the session is gone
        // the session ended before this acquire queued anything: it held nothing and lost nothing,
        // so it queues again on a new session, once
        if (session.signal.aborted && !queued && !renewed && !stopped()) {
          session = await openSession();
          continue;
        }
        if (err instanceof KindConflictError) throw new LockConfigurationError(LOCK_KIND_CONFLICT(name, describeKind(kind), describeKind(err.found)));
        throw failure(err, session);
      } finally {
        stop.dispose();
      }
    }
    const held = await this.holds.start(name, entry, session, { minHold, maxHold, ownTtl, waitedMs: performance.now() - startedAt });
    return new HeldLockHandle(held, this.holds);
  }

  private acquireError(
    err: unknown,
    name: string,
    waitedMs: number,
    session: BackendSession | undefined,
    timedOut: boolean,
    signal: AbortSignal | undefined,
    unavailable: unknown,
  ): Error {
    if (this.closing.aborted) return new LockServiceClosedError();
    if (signal?.aborted) return new LockAbortedError(name, signal.reason);
    if (timedOut && unavailable !== undefined) return this.backend.toLockError(unavailable); // time ran out while the backend was unreachable
    if (timedOut) {
      this.events.emit({ type: 'timeout', key: name, waitedMs });
      return new LockTimeoutError(name, Math.round(waitedMs));
    }
    if (err instanceof EntryGoneError) return new LockLostError(name, 'key-deleted');
    if (session?.signal.aborted || this.backend.isSessionGone(err)) return new LockLostError(name, 'session-expired');
    return this.backend.toLockError(err);
  }
}
