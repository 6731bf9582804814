import { Deadline } from '../../util/deadline.js';
import type { Etcd3 } from 'etcd3';
import type { EtcdMutex } from './etcd-mutex.js';
import type { LeaseMarker } from './etcd-session.js';
import { grantLease } from './lease-grant.js';
import { LockConfigurationError } from '../../common/lock.errors.js';
import { TTL_BELOW_MINIMUM } from '../../common/lock.messages.js';
import type { TimedHold } from '../../interfaces/lock-backend.interface.js';

/**
 * The lease of a hard-TTL lock (`autoRenew: false`): nobody keeps it alive, so the lock ends
 * by itself after its TTL unless renewed. The holder key moves onto it once acquired; a put
 * keeps a key's create revision, so the fencing token does not change. Like the session, it
 * knows its deadline: when the grant was SENT, plus the TTL, minus a margin.
 */
export class OwnLease implements TimedHold {
  /** The TTL (s) of the current lease: what renew() asks for again by default. */
  ttl = 0;
  private readonly deadline = new Deadline();

  private constructor(
    private readonly client: Etcd3,
    private readonly mutex: EtcdMutex,
    private id: string,
    private readonly timeoutMs: number,
    private readonly marker: LeaseMarker,
  ) {}

  /** Moves the holder key of `mutex` onto a new lease of `ttl` s; null if the key is gone. */
  static async take(client: Etcd3, mutex: EtcdMutex, ttl: number, timeoutMs: number, marker: LeaseMarker): Promise<OwnLease | null> {
    const lease = new OwnLease(client, mutex, '0', timeoutMs, marker);
    return (await lease.renew(ttl)) ? lease : null;
  }

  get isValid(): boolean {
    return !this.deadline.passed;
  }

  /** Calls `onExpired` at the deadline (again after each renew). */
  onDeadline(onExpired: () => void): void {
    this.deadline.onPassed(onExpired);
  }

  /** Puts the key on a fresh lease of `ttl` s and revokes the old one; false if the key is gone. */
  async renew(ttl: number): Promise<boolean> {
    const granted = await grantLease(this.client, ttl, this.timeoutMs);
    if (granted.ttl > ttl) {
      // etcd raised a TTL below its minimum: refuse rather than hold longer than asked
      void this.revokeLease(granted.id);
      throw new LockConfigurationError(TTL_BELOW_MINIMUM(ttl, granted.ttl));
    }
    if (!(await this.mutex.moveToLease(granted.id, this.marker(BigInt(granted.id).toString(16))))) {
      void this.revokeLease(granted.id);
      return false;
    }
    const old = this.id;
    this.id = granted.id;
    this.ttl = granted.ttl;
    this.deadline.at = granted.sentAt + granted.ttl * 1000 - Math.min(1000, granted.ttl * 100);
    if (old !== '0') void this.revokeLease(old);
    return true;
  }

  /** Stops the deadline timer and revokes the lease (deleting the key, if it is still on it). */
  end(): Promise<void> {
    this.deadline.stop();
    return this.revokeLease(this.id);
  }

  // best effort: a lease we fail to revoke expires by itself within its TTL
  private revokeLease(id: string): Promise<void> {
    return this.client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + this.timeoutMs }).then(
      () => undefined,
      () => undefined,
    );
  }
}
