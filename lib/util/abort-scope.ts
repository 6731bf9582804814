/** The scopes that follow each signal: one listener per signal, however many scopes follow it. */
const followers = new WeakMap<AbortSignal, Set<AbortScope>>();

function follow(signal: AbortSignal, scope: AbortScope): void {
  let scopes = followers.get(signal);
  if (!scopes) {
    const following = (scopes = new Set());
    followers.set(signal, following);
    signal.addEventListener('abort', () => {
      for (const follower of [...following]) follower.abort(signal.reason);
    }, { once: true });
  }
  scopes.add(scope);
}

/**
 * Stops when any of several signals aborts, or after a timeout, and can be unlinked. An
 * acquire makes one, and most acquires end without anything aborting it, so it costs as
 * little as it can: it follows a signal through one listener per signal shared by every
 * scope (the service's and the session's signals live long: AbortSignal.any would keep a
 * listener on them per acquire ever made), and it makes an AbortSignal of its own only when
 * someone reads `signal` (a waiter, a retry's pause).
 */
export class AbortScope {
  /** True when the timeout, not another signal, aborted the scope. */
  timedOut = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly sources: AbortSignal[] = [];
  private controller: AbortController | undefined;
  private stopped = false;
  private stoppedBy: unknown;
  /** Rejects the promise of the current race(), if any. */
  private loser: ((reason: unknown) => void) | undefined;

  constructor(signals: readonly (AbortSignal | undefined)[], timeoutMs = Infinity) {
    for (const signal of signals) {
      if (!signal) continue;
      if (signal.aborted) {
        this.abort(signal.reason);
        return;
      }
      follow(signal, this);
      this.sources.push(signal);
    }
    if (timeoutMs !== Infinity) this.timer = setTimeout(onTimeout, timeoutMs, this).unref();
  }

  get aborted(): boolean {
    return this.stopped;
  }

  get reason(): unknown {
    return this.stoppedBy;
  }

  /** An AbortSignal that aborts with the scope; made on first use. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.stopped) this.controller.abort(this.stoppedBy);
    }
    return this.controller.signal;
  }

  throwIfAborted(): void {
    if (this.stopped) throw this.stoppedBy;
  }

  /**
   * `promise`'s outcome, or the scope's reason as soon as it aborts (the promise's later failure
   * is then nobody's). One race at a time: an abort rejects the latest.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.stopped) {
      promise.catch(() => undefined);
      return Promise.reject(this.stoppedBy);
    }
    return new Promise<T>((resolve, reject) => {
      this.loser = reject;
      promise.then(resolve, reject);
    });
  }

  abort(reason: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stoppedBy = reason;
    this.unlink();
    this.controller?.abort(reason);
    this.loser?.(reason);
  }

  dispose(): void {
    this.unlink();
    this.loser = undefined;
  }

  private unlink(): void {
    clearTimeout(this.timer);
    for (const signal of this.sources) followers.get(signal)?.delete(this);
    this.sources.length = 0;
  }
}

/** setTimeout's callback: a function of the module, not a closure per scope. */
function onTimeout(scope: AbortScope): void {
  scope.timedOut = true;
  scope.abort(new Error('timeout'));
}
