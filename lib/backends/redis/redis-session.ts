import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { BackendSession } from '../../interfaces/lock-backend.interface.js';
import { keepAliveInterval } from '../../util/keep-alive.js';
import { retryWithBackoff } from '../../util/retry.js';
import { isRedisUnreachable, runScript, type RedisClient } from './redis-client.js';
import { END_SESSION, HEARTBEAT } from './redis-scripts.js';

/** Thrown when a script finds the session key gone: the engine reports the lock lost. */
export class RedisSessionGoneError extends Error {
  constructor() {
    super('the Redis session key is gone');
  }
}

/**
 * A session in Redis: one key with a PX TTL, kept alive by ONE heartbeat per process however
 * many locks it holds. Like the etcd session it knows its deadline: the send time of the last
 * acknowledged heartbeat, plus the TTL, minus a margin; past it, every lock of the session is
 * lost even if the connection looks fine. A heartbeat that finds the key gone ends it at once.
 */
export class RedisSession implements BackendSession {
  readonly signal: AbortSignal;
  private readonly ended = new AbortController();
  private readonly ttlMs: number;
  private readonly marginMs: number;
  private validUntil: number;
  private readonly timer: NodeJS.Timeout;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private closed = false;

  /**
   * Puts the session key, retried while Redis does not answer for up to `connectTimeout` ms (NX:
   * a retry after an unknown outcome finds its own), and starts the heartbeat.
   */
  static async open(client: RedisClient, ns: string, ttl: number, connectTimeout: number, record: string, onExpired: (session: RedisSession) => void): Promise<RedisSession> {
    const id = randomBytes(6).toString('hex');
    const giveUpAt = performance.now() + connectTimeout;
    let sentAt = 0;
    await retryWithBackoff(
      () => {
        sentAt = performance.now(); // the deadline counts from the try that put the key
        // listed in `sessions` for the sweep that removes what it leaves if its process dies
        return client.multi().set(`${ns}s:${id}`, record, 'PX', ttl * 1000, 'NX').sadd(`${ns}sessions`, id).exec();
      },
      { initialMs: 50, maxMs: 500, retryIf: err => isRedisUnreachable(err) && performance.now() < giveUpAt },
    );
    return new RedisSession(client, ns, id, ttl, sentAt, onExpired);
  }

  private constructor(
    private readonly client: RedisClient,
    private readonly ns: string,
    readonly id: string,
    readonly ttl: number,
    sentAt: number,
    private readonly onExpired: (session: RedisSession) => void,
  ) {
    this.signal = this.ended.signal;
    this.ttlMs = ttl * 1000;
    this.marginMs = Math.min(1000, this.ttlMs / 10);
    this.validUntil = sentAt + this.ttlMs - this.marginMs;
    this.timer = setInterval(() => void this.heartbeat(), keepAliveInterval(this.ttlMs, this.marginMs)).unref();
    this.armDeadline();
  }

  get key(): string {
    return `${this.ns}s:${this.id}`;
  }

  get validForMs(): number {
    return this.isValid ? Math.max(0, this.validUntil - performance.now()) : 0;
  }

  get isValid(): boolean {
    if (!this.ended.signal.aborted && performance.now() >= this.validUntil) this.expire();
    return !this.ended.signal.aborted;
  }

  expire(): void {
    if (this.ended.signal.aborted) return;
    this.end('expired');
    this.onExpired(this);
    // the key and our entries may live on (a pause of ours, not of Redis): remove them once Redis answers
    void retryWithBackoff(() => this.endInRedis(), { initialMs: 100, maxMs: 1000, retryIf: () => !this.closed }).catch(() => undefined);
  }

  /** Ends the session: its key and the entries it still has go. */
  async close(): Promise<boolean> {
    this.closed = true;
    this.end('closed');
    return this.endInRedis().then(() => true, () => false);
  }

  private endInRedis(): Promise<unknown> {
    return runScript(this.client, END_SESSION, `${this.ns}seq`, [this.ns, this.id]);
  }

  private async heartbeat(): Promise<void> {
    if (!this.isValid) return;
    const sentAt = performance.now();
    let alive: unknown;
    try {
      alive = await runScript(this.client, HEARTBEAT, `${this.ns}seq`, [this.ns, this.id, this.ttlMs]);
    } catch {
      return; // Redis unreachable: the next beat tries again, the deadline decides when it is too late
    }
    if (!this.isValid) return; // never resurrect a session past its deadline
    if (Number(alive) !== 1) return this.expire(); // Redis says the session is gone
    this.validUntil = Math.max(this.validUntil, sentAt + this.ttlMs - this.marginMs);
    this.armDeadline();
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => void this.isValid, Math.max(0, this.validUntil - performance.now()) + 1).unref();
  }

  private end(reason: 'expired' | 'closed'): void {
    clearInterval(this.timer);
    clearTimeout(this.deadlineTimer);
    this.ended.abort(reason);
  }
}
