import { performance } from 'node:perf_hooks';
import { ClientClosedError, EtcdLeaseInvalidError, type Etcd3, type IDuplexStream, type ILeaseKeepAliveRequest, type ILeaseKeepAliveResponse } from 'etcd3';
import { LockConfigurationError } from '../../common/lock.errors.js';
import type { BackendSession } from '../../interfaces/lock-backend.interface.js';
import { TTL_BELOW_MINIMUM } from '../../common/lock.messages.js';
import { QueueSlots } from './queue-slots.js';
import { retryWithBackoff, sleep } from '../../util/retry.js';
import { grantLease } from './lease-grant.js';
import { keepAliveInterval } from '../../util/keep-alive.js';

/** The marker key (and its value) a lease carries, by lease id in hex (see leaseMarkerKey). */
export type LeaseMarker = (leaseHex: string) => { key: string; value: Buffer };

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/**
 * One etcd lease shared by every lock of a LockService, kept alive on one stream.
 *
 * It knows until when it can vouch for its locks: the monotonic time at which the last
 * acknowledged keepalive was SENT, plus the TTL etcd granted, minus a margin. etcd renews
 * the lease no earlier than it receives the request, so the server cannot expire it before
 * that deadline. At the deadline the session ends even if the stream still looks open
 * (a half-open TCP connection never reports anything).
 */
export class EtcdSession implements BackendSession {
  /** Lease id as the decimal string etcd3's proto layer uses. */
  readonly leaseId: string;
  /** Lease id in hex, as etcdctl prints it; part of every queue key of this session. */
  readonly leaseHex: string;
  /** The session as others see it: its lease in hex. */
  get id(): string {
    return this.leaseHex;
  }

  /** The TTL (s) etcd granted. */
  readonly ttl: number;
  /** Aborted when the session ends: expired (reason 'expired') or closed (reason 'closed'). */
  readonly signal: AbortSignal;
  /** Names of this session's queue keys in use, by lock. */
  readonly slots = new QueueSlots();

  private readonly ended = new AbortController();
  private readonly ttlMs: number;
  private readonly intervalMs: number;
  private readonly marginMs: number;
  private validUntil: number;
  private stream: KeepAliveStream | undefined;
  private openingStream = false;
  private readonly pendingPings: number[] = []; // send times of unanswered keepalives, oldest first
  private readonly keepAliveTimer: NodeJS.Timeout;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** Resolves true once etcd confirmed the revoke, false if it gave up. */
  private revoking: Promise<boolean> | undefined;
  private closed = false;

  /**
   * Grants the lease (with an id chosen here, so a grant retried after an unknown outcome
   * cannot leak a second lease) and starts keeping it alive.
   */
  static async open(client: Etcd3, ttl: number, timeoutMs: number, marker: LeaseMarker, onExpired: (session: EtcdSession) => void): Promise<EtcdSession> {
    const { id: leaseId, ttl: grantedTtl, sentAt } = await grantLease(client, ttl, timeoutMs);
    const session = new EtcdSession(client, leaseId, grantedTtl, sentAt, onExpired);
    try {
      // etcd raises a TTL below its minimum without saying so; refuse rather than hold longer than asked
      if (grantedTtl > ttl) throw new LockConfigurationError(TTL_BELOW_MINIMUM(ttl, grantedTtl));
      // the lease's marker, on the lease: etcd deletes it with our keys when the lease ends, which tells watchers an expiry from a release
      const put = marker(session.leaseHex);
      await client.kv.put({ key: Buffer.from(put.key), value: put.value, lease: leaseId }, { deadline: Date.now() + timeoutMs });
    } catch (err) {
      await session.close();
      throw err;
    }
    return session;
  }

  private constructor(
    private readonly client: Etcd3,
    leaseId: string,
    ttlSeconds: number,
    grantSentAt: number,
    private readonly onExpired: (session: EtcdSession) => void,
  ) {
    this.leaseId = leaseId;
    this.leaseHex = BigInt(leaseId).toString(16);
    this.ttl = ttlSeconds;
    this.signal = this.ended.signal;
    this.ttlMs = ttlSeconds * 1000;
    this.marginMs = Math.min(1000, this.ttlMs / 10);
    this.intervalMs = keepAliveInterval(this.ttlMs, this.marginMs);
    this.validUntil = grantSentAt + this.ttlMs - this.marginMs;
    this.keepAliveTimer = setInterval(() => this.keepAlive(), this.intervalMs).unref();
    this.armDeadline();
    void this.openStream(); // now, not at the first tick: the session's stream is part of opening it
  }

  /** Ms left before the session's deadline if no keepalive is acknowledged meanwhile; 0 once it ended. */
  get validForMs(): number {
    return this.isValid ? Math.max(0, this.validUntil - performance.now()) : 0;
  }

  /** True while the session can vouch for its locks; checks the clock, not only the timer. */
  get isValid(): boolean {
    if (!this.ended.signal.aborted && performance.now() >= this.validUntil) this.expire();
    return !this.ended.signal.aborted;
  }

  /**
   * Ends the session and revokes its lease, which deletes every key put with it (all locks
   * of the session) in one round trip, so successors need not wait for the TTL.
   * Bounded by the TTL: past it, the lease has expired on its own anyway. Resolves whether
   * etcd confirmed the revoke.
   */
  async close(): Promise<boolean> {
    this.closed = true;
    this.end('closed');
    this.revoking ??= this.revoke().then(() => true, () => false);
    return Promise.race([this.revoking, sleep(this.ttlMs).then(() => false)]);
  }

  /** Declares the session lost; every lock it vouched for is lost with it. */
  expire(): void {
    if (this.ended.signal.aborted) return;
    this.end('expired');
    this.revoking ??= this.revokeWhenReachable();
    this.onExpired(this);
  }

  private end(reason: 'expired' | 'closed'): void {
    if (this.ended.signal.aborted) return;
    clearInterval(this.keepAliveTimer);
    clearTimeout(this.deadlineTimer);
    this.dropStream();
    this.ended.abort(reason);
  }

  private keepAlive(): void {
    if (!this.isValid) return;
    const oldest = this.pendingPings[0];
    // an unanswered keepalive older than a third of the TTL: the stream is stuck; open a new one
    if (oldest !== undefined && performance.now() - oldest > this.ttlMs / 3) this.dropStream();
    if (this.stream) this.ping(this.stream);
    else void this.openStream();
  }

  private async openStream(): Promise<void> {
    if (this.openingStream) return;
    this.openingStream = true;
    try {
      const stream = await this.client.leaseClient.leaseKeepAlive();
      if (this.ended.signal.aborted) return stream.cancel();
      stream.on('data', res => this.onKeepAliveResponse(stream, res));
      stream.on('error', () => this.dropStream(stream));
      stream.on('end', () => this.dropStream(stream));
      this.stream = stream;
      this.ping(stream);
    } catch {
      // etcd unreachable: the next interval tries again, the deadline decides when it is too late
    } finally {
      this.openingStream = false;
    }
  }

  private ping(stream: KeepAliveStream): void {
    this.pendingPings.push(performance.now());
    // renew the lease: one message on the shared keepalive stream, no Raft write
    stream.write({ ID: this.leaseId });
  }

  private onKeepAliveResponse(stream: KeepAliveStream, res: ILeaseKeepAliveResponse): void {
    if (stream !== this.stream || !this.isValid) return; // never resurrect a session past its deadline
    const sentAt = this.pendingPings.shift();
    const ttl = Number(res.TTL);
    if (ttl <= 0) return this.expire(); // etcd says the lease is gone
    if (sentAt === undefined) return;
    this.validUntil = Math.max(this.validUntil, sentAt + ttl * 1000 - this.marginMs);
    this.armDeadline();
  }

  private dropStream(stream = this.stream): void {
    if (!stream || stream !== this.stream) return;
    this.stream = undefined;
    this.pendingPings.length = 0; // answers to pings on a dead stream never come
    try {
      stream.cancel();
    } catch {
      // already closed
    }
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const delay = Math.max(0, this.validUntil - performance.now());
    this.deadlineTimer = setTimeout(() => void this.isValid, delay + 1).unref();
  }

  private async revoke(): Promise<void> {
    // revoke the lease: etcd deletes every key of this session in the same Raft entry
    await this.client.leaseClient.leaseRevoke({ ID: this.leaseId }, { deadline: Date.now() + this.ttlMs });
  }

  /**
   * A lease we declared lost may live on in etcd: a restarted etcd or a new leader grants
   * every lease a fresh TTL. Revoke it as soon as etcd answers, until the client is closed.
   */
  private async revokeWhenReachable(): Promise<boolean> {
    return retryWithBackoff(() => this.revoke(), {
      initialMs: 100,
      // a restarted etcd gives the lease a fresh TTL: try often enough to beat it
      maxMs: Math.min(1000, this.ttlMs / 3),
      // already gone, or nothing left to try it with
      retryIf: err => !(err instanceof EtcdLeaseInvalidError || err instanceof ClientClosedError || this.closed),
    }).then(
      () => true,
      err => err instanceof EtcdLeaseInvalidError, // gone already: as good as revoked
    );
  }
}
