import { EtcdLeaseInvalidError, isRecoverableError, type Etcd3, type IOptions } from 'etcd3';
import type { LockKind } from '../../common/lock-kind.js';
import { EtcdUnavailableError, LockError } from '../../common/lock.errors.js';
import type { ConnectionSettings } from '../../common/lock.messages.js';
import { encodeOwner, ownerRecord, type OwnerRecord } from '../../common/owner-record.js';
import type { LockHolderInfo, LockInfo } from '../../interfaces/lock-info.interface.js';
import type { BackendConnection, BackendSettings, LockBackend, LockChange, LockWatch, QueueEntry } from '../../interfaces/lock-backend.interface.js';
import { ClusterWatch } from './cluster-watch.js';
import { createEtcdClient, ignoreRepliesForEndedWatches } from './etcd-client.js';
import { configurationProblem, unavailableError } from './etcd-errors.js';
import { EtcdMutex } from './etcd-mutex.js';
import { TxnBatcher } from './txn-batcher.js';
import { EtcdSession } from './etcd-session.js';
import { LockInspector } from './lock-inspector.js';
import { leaseMarkerKey, prefixEnd, queueKey, queuePrefix } from './lock-key.js';
import { OwnLease } from './own-lease.js';
import { WatchStream } from './watch-stream.js';

/**
 * Locks in etcd v3: a session is a lease kept alive on one stream; a lock is a queue of keys
 * whose create revisions give the order and the fencing tokens (see EtcdMutex).
 */
export class EtcdBackend implements LockBackend {
  /**
   * `client`: an etcd3 client of yours, never closed here; else one is created from `etcd`.
   * `names` (internal): how errors name the connection settings; the CLI passes its flags.
   */
  constructor(
    private readonly etcd: IOptions,
    private readonly client?: Etcd3,
    private readonly names?: ConnectionSettings,
  ) {}

  connect(settings: BackendSettings): BackendConnection {
    return new EtcdConnection(settings, this.client ?? createEtcdClient(this.etcd), !this.client, this.names, this.client ? 'the given etcd3 client' : String(this.etcd.hosts));
  }
}

class EtcdConnection implements BackendConnection {
  readonly description: string;
  readonly system = 'etcd';
  private readonly inspector: LockInspector;
  /** Group commit of the enqueues and releases of this connection's locks. */
  private readonly txns: TxnBatcher;
  /** The holder and waiter watches of this connection's locks. */
  private readonly watches: WatchStream;

  constructor(
    private readonly settings: BackendSettings,
    private readonly client: Etcd3,
    private readonly ownsClient: boolean,
    private readonly names: ConnectionSettings | undefined,
    private readonly hosts: string,
  ) {
    this.description = `etcd at ${hosts}`;
    ignoreRepliesForEndedWatches(client); // a crash of etcd3's that the cluster watch's end could trigger
    this.inspector = new LockInspector(client, settings.prefix);
    this.txns = new TxnBatcher(client);
    this.watches = new WatchStream(client);
  }

  openSession(onExpired: (session: EtcdSession) => void): Promise<EtcdSession> {
    this.watches.open(); // a waiter then need not wait for the stream
    return EtcdSession.open(this.client, this.settings.ttl, this.settings.connectTimeout, this.leaseMarker, onExpired);
  }

  entry(session: EtcdSession, name: string, kind: LockKind, record: OwnerRecord): QueueEntry {
    const prefix = queuePrefix(this.settings.prefix, name);
    const slot = session.slots.claim(name);
    const key = queueKey(prefix, kind, session.leaseHex, slot.number);
    return new EtcdMutex(this.client, this.txns, this.watches, prefix, kind, key, session.leaseId, record, slot, this.ownLease);
  }

  /** Moves a held key onto a lease of its own (a hard-TTL lock); one function for every entry. */
  private readonly ownLease = (mutex: EtcdMutex, ttl: number) => OwnLease.take(this.client, mutex, ttl, this.settings.connectTimeout, this.leaseMarker);

  /** Each release's own guarded delete, nested, one transaction per 100: one failed guard spares the others. */
  async releaseAll(entries: QueueEntry[]): Promise<void> {
    const deadline = Date.now() + this.settings.connectTimeout;
    const requests = [];
    for (let i = 0; i < entries.length; i += 100) {
      const success = entries.slice(i, i + 100).map(entry => ({ request_txn: (entry as EtcdMutex).guardedDelete() }));
      requests.push(this.client.kv.txn({ compare: [], success, failure: [] }, { deadline }).catch(() => undefined));
    }
    await Promise.all(requests);
  }

  /**
   * One request that needs read access to the whole lock prefix and write access in it (a
   * delete of a key nobody writes). etcd lets anyone grant a lease, so the session alone does not tell.
   */
  async checkAccess(): Promise<void> {
    const prefix = Buffer.from(this.settings.prefix);
    await this.client.kv.txn({
      compare: [],
      success: [
        { request_range: { key: prefix, range_end: prefixEnd(prefix), limit: 1, keys_only: true } },
        { request_delete_range: { key: Buffer.from(`${this.settings.prefix}\u0000access-check`) } },
      ],
      failure: [],
    });
  }

  async isLocked(name: string): Promise<boolean> {
    const prefix = Buffer.from(queuePrefix(this.settings.prefix, name));
    // count the lock's queue keys
    const res = await this.client.kv.range({ key: prefix, range_end: prefixEnd(prefix), count_only: true });
    return Number(res.count) > 0;
  }

  info(name: string): Promise<LockInfo | null> {
    return this.inspector.info(name);
  }

  list(namePrefix: string): Promise<LockInfo[]> {
    return this.inspector.list(namePrefix);
  }

  forceUnlock(name: string, by: string, token?: bigint): Promise<LockHolderInfo[]> {
    return this.inspector.forceUnlock(name, by, token);
  }

  watch(namePrefix: string, onChanges: (changes: LockChange[]) => void, retryable: (err: unknown) => boolean): LockWatch {
    return new ClusterWatch(this.client, this.settings.prefix, namePrefix, onChanges, retryable);
  }

  /** A configuration problem (credentials, TLS, permission) says what to change; anything else is an outage. */
  toLockError(err: unknown): Error {
    if (err instanceof LockError) return err;
    return configurationProblem(err, this.hosts, this.settings.prefix) ?? unavailableError(err, this.hosts, this.names);
  }

  /** A TLS or credentials problem is a LockConfigurationError by then (toLockError), never retried. */
  isUnavailable(err: unknown): boolean {
    return err instanceof EtcdUnavailableError || (err instanceof Error && !(err instanceof LockError) && isRecoverableError(err));
  }

  isSessionGone(err: unknown): boolean {
    return err instanceof EtcdLeaseInvalidError;
  }

  async close(): Promise<void> {
    this.watches.close();
    if (this.ownsClient) this.client.close();
  }

  /** Every lease the service puts keys on carries this marker (see leaseMarkerKey). */
  private readonly leaseMarker = (leaseHex: string) => ({ key: leaseMarkerKey(this.settings.prefix, leaseHex), value: encodeOwner(ownerRecord(this.settings.ownerId)) });
}
