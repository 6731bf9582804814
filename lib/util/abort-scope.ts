/**
 * An AbortSignal that follows several others and an optional timeout, and can be unlinked.
 * AbortSignal.any would keep a listener on long-lived signals (the session's, the
 * service's) for every acquire ever made; this one removes its listeners in dispose().
 */
export class AbortScope {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly unlinks: (() => void)[] = [];
  /** True when the timeout, not another signal, aborted the scope. */
  timedOut = false;

  constructor(signals: readonly (AbortSignal | undefined)[], timeoutMs = Infinity) {
    for (const signal of signals) {
      if (!signal) continue;
      if (signal.aborted) {
        this.controller.abort(signal.reason);
        break;
      }
      const onAbort = () => this.controller.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.unlinks.push(() => signal.removeEventListener('abort', onAbort));
    }
    if (timeoutMs !== Infinity && !this.controller.signal.aborted) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.controller.abort(new Error('timeout'));
      }, timeoutMs).unref();
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const unlink of this.unlinks) unlink();
  }
}
