import { performance } from 'node:perf_hooks';

/**
 * A point on the monotonic clock past which something no longer holds (a hard-TTL lock's own
 * lease), and one callback when it passes, re-armed by each call of {@link onPassed}.
 */
export class Deadline {
  private timer: NodeJS.Timeout | undefined;

  /** `at`: performance.now() time; 0 has already passed. */
  constructor(public at = 0) {}

  get passed(): boolean {
    return performance.now() >= this.at;
  }

  /** Calls `callback` once `at` passes (replaces an earlier callback; the process may exit meanwhile). */
  onPassed(callback: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(callback, Math.max(0, this.at - performance.now())).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
