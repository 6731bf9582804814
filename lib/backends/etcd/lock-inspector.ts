import { SortOrder, SortTarget, type Etcd3, type IKeyValue } from 'etcd3';
import type { LockHolderInfo, LockInfo, LockOwnerInfo } from '../../interfaces/lock-info.interface.js';
import { EXCLUSIVE, holdingCount, kindOfKey, type LockKind } from '../../common/lock-kind.js';
import { createdAt, encodeLockKey, parseLockPrefixKey, prefixEnd, queuePrefix, waitingRoomPrefix } from './lock-key.js';
import { decodeOwner, encodeOwner } from '../../common/owner-record.js';

/**
 * Reads who holds and who waits for locks, straight from etcd (any process's locks), and
 * removes holders on an operator's request. Read-only except {@link forceUnlock}.
 */
export class LockInspector {
  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
  ) {}

  /** The lock's holders and waiters; null when nobody holds or waits for it. */
  async info(name: string): Promise<LockInfo | null> {
    const queue = queuePrefix(this.prefix, name);
    // the queue and its waiting room, each in create order, at one revision
    const res = await this.client.kv.txn({
      compare: [],
      success: [this.rangeRequest(queue), this.rangeRequest(waitingRoomPrefix(queue))],
      failure: [],
    });
    const kvs = (index: number) => res.responses[index]?.response_range?.kvs ?? [];
    return this.describe(name, kvs(0), kvs(1));
  }

  /** Every lock whose name starts with `namePrefix` that someone holds, by name. */
  async list(namePrefix = ''): Promise<LockInfo[]> {
    // an encoded prefix is a prefix of the encoded names: "/" and "%" are escaped one character at a time
    const from = Buffer.from(`${this.prefix}${encodeLockKey(namePrefix)}`);
    const res = await this.client.kv.range({ key: from, range_end: prefixEnd(from), sort_order: SortOrder.Ascend, sort_target: SortTarget.Create });
    const queues = new Map<string, { queue: IKeyValue[]; room: IKeyValue[] }>();
    for (const kv of res.kvs) {
      const parsed = parseLockPrefixKey(this.prefix, kv.key.toString());
      if (parsed?.type !== 'queue' && parsed?.type !== 'room') continue; // a lease marker
      const entry = queues.get(parsed.name) ?? { queue: [], room: [] };
      (parsed.type === 'room' ? entry.room : entry.queue).push(kv);
      queues.set(parsed.name, entry);
    }
    const ttls = new Map<string, Promise<number>>(); // one LeaseTimeToLive per lease, not per holder: a process's locks share its lease
    const infos = await Promise.all([...queues].map(([name, { queue, room }]) => this.describe(name, queue, room, ttls)));
    return infos.filter((info): info is LockInfo => info?.holder !== undefined).sort((a, b) => a.key.localeCompare(b.key));
  }

  /**
   * Removes the current holders' keys of one lock, and only them: each is first marked with
   * `by` (so its holder reports the loss as forced), then deleted, both guarded by its
   * create revision so that a newer holder is never touched. With `token`, only the holder
   * with that create revision. The next waiter gets the lock. Returns the holders removed.
   */
  async forceUnlock(name: string, by: string, token?: bigint): Promise<LockHolderInfo[]> {
    const info = await this.info(name);
    const removed: LockHolderInfo[] = [];
    for (const holder of info?.holders.filter(h => token === undefined || h.token === token) ?? []) {
      const key = Buffer.from(holder.etcdKey);
      const still = createdAt(key, holder.token);
      const current = await this.client.kv.range({ key });
      const kv = current.kvs[0];
      if (!kv || BigInt(kv.create_revision) !== holder.token) continue; // released meanwhile
      // mark it, on its own lease, then delete it: the holder's watch sees the mark in the deleted key
      const record = { ...decodeOwner(kv.value), forcedBy: by };
      await this.client.kv.txn({ compare: [still], success: [{ request_put: { key, value: encodeOwner(record), lease: kv.lease } }], failure: [] });
      const deleted = await this.client.kv.txn({ compare: [still], success: [{ request_delete_range: { key } }], failure: [] });
      if (deleted.succeeded) removed.push(holder);
    }
    return removed;
  }

  private async describe(name: string, queue: IKeyValue[], room: IKeyValue[], ttls = new Map<string, Promise<number>>()): Promise<LockInfo | null> {
    if (queue.length === 0 && room.length === 0) return null;
    const prefixLength = queuePrefix(this.prefix, name).length;
    const kinds = queue.map(kv => kindOfKey(kv.key, prefixLength) ?? EXCLUSIVE);
    const holding = holdingCount(kinds);
    const holders = await Promise.all(
      queue.slice(0, holding).map(async (kv, i): Promise<LockHolderInfo> => {
        const record = decodeOwner(kv.value);
        return { ...ownerInfo(kv, kinds[i]), acquiredAt: new Date(record.acquiredAt ?? record.queuedAt), ttlRemaining: await this.ttlOf(kv.lease, ttls) };
      }),
    );
    const first = kinds[0];
    return {
      key: name,
      holder: holders[0],
      holders,
      ...(first?.mode === 'semaphore' && { limit: first.limit }),
      waiters: queue.slice(holding).map((kv, i) => ownerInfo(kv, kinds[holding + i])),
      unfairWaiters: room.map(kv => ownerInfo(kv, EXCLUSIVE)),
    };
  }

  /** Seconds left on a lease, or -1 if it is gone; asked once per lease of `asked`. */
  private ttlOf(lease: string, asked: Map<string, Promise<number>>): Promise<number> {
    let ttl = asked.get(lease);
    if (!ttl) {
      ttl = this.client.leaseClient.leaseTimeToLive({ ID: lease }).then(res => Number(res.TTL));
      asked.set(lease, ttl);
    }
    return ttl;
  }

  private rangeRequest(prefix: string) {
    const key = Buffer.from(prefix);
    return { request_range: { key, range_end: prefixEnd(key), sort_order: SortOrder.Ascend, sort_target: SortTarget.Create } };
  }
}

function ownerInfo(kv: IKeyValue, kind: LockKind): LockOwnerInfo {
  const record = decodeOwner(kv.value);
  return {
    ...(record.foreign && { foreign: true }),
    owner: record.owner,
    host: record.host,
    pid: record.pid,
    token: BigInt(kv.create_revision),
    mode: kind.mode,
    queuedAt: new Date(record.queuedAt),
    lease: String(kv.lease),
    etcdKey: kv.key.toString(),
  };
}
