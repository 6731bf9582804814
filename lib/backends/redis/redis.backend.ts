import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { LockConfigurationError, LockError, RedisUnavailableError } from '../../common/lock.errors.js';
import { EXCLUSIVE, holdingCount, kindOfTag, type LockKind } from '../../common/lock-kind.js';
import { encodeOwner, ownerRecord, decodeOwner, type OwnerRecord } from '../../common/owner-record.js';
import type { BackendConnection, BackendSettings, LockBackend, LockChange, LockWatch, QueueEntry } from '../../interfaces/lock-backend.interface.js';
import type { LockHolderInfo, LockInfo, LockOwnerInfo } from '../../interfaces/lock-info.interface.js';
import { isRedisUnreachable, namespaceOf, runScript } from './redis-client.js';
import { RedisChannels } from './redis-channels.js';
import { RedisEntry } from './redis-entry.js';
import { FORCE, TIDY } from './redis-scripts.js';
import { RedisSession, RedisSessionGoneError } from './redis-session.js';

/**
 * Where the Redis backend keeps its locks: a URL, or the nodes of a Redis Cluster (a client is
 * created and closed for you), or your own ioredis client (`Redis` or `Cluster`), never closed here.
 */
export type RedisBackendOptions = { url: string; options?: RedisOptions } | { cluster: ClusterNode[]; options?: ClusterOptions } | { client: Redis | Cluster };

/**
 * Locks in Redis: FIFO queues scored by a token counter that never expires (the fencing token),
 * one session key per process with one heartbeat, waiters woken by pub/sub, losses reported at
 * a local deadline. See docs/redis.md for what it guarantees, and what failover can break.
 * `EtcdLockModule.forRoot({ backend: new RedisBackend({ url: 'redis://127.0.0.1:6379' }) })`.
 * @publicApi
 */
export class RedisBackend implements LockBackend {
  constructor(private readonly where: RedisBackendOptions) {}

  connect(settings: BackendSettings): BackendConnection {
    const where = this.where;
    if ('client' in where) return new RedisConnection(settings, where.client, false, 'the given Redis client');
    // a lock's calls fail fast while Redis is away: the engine retries them within the wait
    const client =
      'url' in where
        ? new Redis(where.url, { maxRetriesPerRequest: 1, ...where.options })
        : new Cluster(where.cluster, { ...where.options, redisOptions: { maxRetriesPerRequest: 1, ...where.options?.redisOptions } });
    const description = 'url' in where ? `Redis at ${where.url}` : `the Redis Cluster at ${where.cluster.map(node => (typeof node === 'object' ? `${node.host}:${node.port}` : String(node))).join(',')}`;
    const connection = new RedisConnection(settings, client, true, description);
    // ioredis prints every connection error of a client without an 'error' listener; ours reach the caller through the commands, with the last one as their cause
    client.on('error', (err: Error) => (connection.lastConnectionError = err));
    return connection;
  }
}

class RedisConnection implements BackendConnection {
  /** What the client last failed to connect with (ECONNREFUSED…): a command that gave up only says it ran out of retries. */
  lastConnectionError: Error | undefined;
  readonly system = 'redis';
  private readonly ns: string;
  private readonly channels: RedisChannels;
  private attempts = 0;

  constructor(
    private readonly settings: BackendSettings,
    private readonly client: Redis | Cluster,
    private readonly ownsClient: boolean,
    readonly description: string,
  ) {
    this.ns = namespaceOf(settings.prefix);
    // subscribe on a connection of its own: a subscribed connection runs nothing else
    const subscriber = client instanceof Cluster ? client.duplicate() : client.duplicate({ maxRetriesPerRequest: null });
    subscriber.on('error', () => undefined); // it reconnects by itself; waiters look again then
    this.channels = new RedisChannels(subscriber, `${this.ns}events`);
  }

  async openSession(onExpired: (session: RedisSession) => void): Promise<RedisSession> {
    const session = await RedisSession.open(this.client, this.ns, this.settings.ttl, this.settings.connectTimeout, encodeOwner(ownerRecord(this.settings.ownerId)).toString(), expired => {
      this.channels.unfollow(`${this.ns}c:${expired.id}`);
      onExpired(expired);
    });
    try {
      await this.channels.follow(`${this.ns}c:${session.id}`); // before any of its entries queues: no wake-up is missed
    } catch (err) {
      await session.close();
      throw err;
    }
    session.signal.addEventListener('abort', () => this.channels.unfollow(`${this.ns}c:${session.id}`), { once: true });
    return session;
  }

  entry(session: RedisSession, name: string, kind: LockKind, record: OwnerRecord): QueueEntry {
    return new RedisEntry(this.client, this.channels, this.ns, name, kind, session, ++this.attempts, record);
  }

  async releaseAll(entries: QueueEntry[]): Promise<void> {
    await Promise.all(entries.map(entry => entry.release().catch(() => undefined))); // one pipeline: ioredis sends them together
  }

  async checkAccess(): Promise<void> {
    await runScript(this.client, 'return 1', `${this.ns}seq`, []); // scripts allowed, on the namespace's slot
  }

  async isLocked(name: string): Promise<boolean> {
    await this.tidy(name);
    const res = await this.client.multi().exists(`${this.ns}q:${name}`).exists(`${this.ns}w:${name}`).exec();
    return (res ?? []).some(([, count]) => Number(count) > 0);
  }

  async info(name: string): Promise<LockInfo | null> {
    await this.tidy(name);
    return this.read(name);
  }

  /** What sessions that are gone left (a crashed process's entries), removed before a read shows it. */
  private async tidy(name?: string): Promise<void> {
    // a read still answers where scripts cannot write (a read-only replica, an ACL): it then shows such holders with ttlRemaining -1
    await runScript(this.client, TIDY, `${this.ns}seq`, name === undefined ? [this.ns] : [this.ns, name]).catch(() => undefined);
  }

  private async read(name: string): Promise<LockInfo | null> {
    const res = (await this.client.multi().zrange(`${this.ns}q:${name}`, 0, -1, 'WITHSCORES').hgetall(`${this.ns}m:${name}`).zrange(`${this.ns}w:${name}`, 0, -1).exec()) ?? [];
    const [flat, records, room] = res.map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [string[], Record<string, string>, string[]];
    if (flat.length === 0 && room.length === 0) return null;
    const queue = [];
    for (let i = 0; i < flat.length; i += 2) queue.push({ member: flat[i], token: BigInt(flat[i + 1]) });
    const tags = queue.map(({ member }) => member.split('|')[0]);
    const holding = holdingCount(tags.map(tag => kindOfTag(tag) ?? EXCLUSIVE));
    const owner = (member: string, token: bigint): LockOwnerInfo => {
      const record = decodeOwner(Buffer.from(records[member] ?? '{}'));
      const [tag, sid] = member.split('|');
      return { owner: record.owner, host: record.host, pid: record.pid, token, mode: tag === 'x' ? 'exclusive' : tag === 'r' ? 'shared' : 'semaphore', queuedAt: new Date(record.queuedAt), lease: sid, etcdKey: `${this.ns}q:${name} ${member}` };
    };
    const holders: LockHolderInfo[] = await Promise.all(
      queue.slice(0, holding).map(async ({ member, token }) => {
        const record = decodeOwner(Buffer.from(records[member] ?? '{}'));
        const lease = records[`${member}|lease`] ?? `${this.ns}s:${member.split('|')[1]}`;
        const ttl = await this.client.pttl(lease);
        return { ...owner(member, token), acquiredAt: new Date(record.acquiredAt ?? record.queuedAt), ttlRemaining: ttl < 0 ? -1 : Math.ceil(ttl / 1000) };
      }),
    );
    const first = tags[0];
    return {
      key: name,
      holder: holders[0],
      holders,
      ...(first?.startsWith('s') && { limit: Number(first.slice(1)) }),
      waiters: queue.slice(holding).map(({ member, token }) => owner(member, token)),
      unfairWaiters: room.map(member => owner(member, 0n)),
    };
  }

  async list(namePrefix: string): Promise<LockInfo[]> {
    await this.tidy();
    const names = (await this.client.smembers(`${this.ns}names`)).filter(name => name.startsWith(namePrefix)).sort();
    const infos = await Promise.all(names.map(name => this.read(name)));
    return infos.filter((info): info is LockInfo => info?.holder !== undefined);
  }

  async forceUnlock(name: string, by: string, token?: bigint): Promise<LockHolderInfo[]> {
    const before = await this.info(name);
    // the members removed, with their tokens: [member, token, member, token, …]
    const removed = (await runScript(this.client, FORCE, `${this.ns}seq`, [this.ns, name, by, token?.toString() ?? ''])) as string[];
    const tokens = new Set(removed.filter((_, i) => i % 2 === 1));
    return (before?.holders ?? []).filter(holder => tokens.has(String(holder.token)));
  }

  watch(namePrefix: string, onChanges: (changes: LockChange[]) => void): LockWatch {
    let stop: (() => void) | undefined;
    let stopped = false;
    const ready = this.channels.onEvents(message => {
      const event = JSON.parse(message) as { type: LockChange['type']; key: string; member: string; token: string; record: string; reason: string | false };
      if (!event.key.startsWith(namePrefix)) return;
      const record = decodeOwner(Buffer.from(event.record));
      const reason = event.reason === false ? undefined : (event.reason as LockChange['reason']);
      const waitedMs = event.type === 'acquired' && record.queuedAt > 0 ? Math.max(0, Date.now() - record.queuedAt) : undefined;
      onChanges([{ type: event.type, key: event.key, owner: record.owner, token: BigInt(event.token), session: event.member.split('|')[1], ...(reason && { reason }), ...(waitedMs !== undefined && { waitedMs }) }]);
    }).then(unsubscribe => {
      stop = unsubscribe;
      if (stopped) unsubscribe();
    });
    return { ready, stop: () => ((stopped = true), stop?.()) };
  }

  toLockError(err: unknown): Error {
    if (err instanceof LockError) return err;
    const own = err instanceof Error ? err.message : String(err);
    const message = /max retries per request|Connection is closed/i.test(own) && this.lastConnectionError ? this.lastConnectionError.message : own;
    if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message)) return new LockConfigurationError(`Redis at ${this.description} refused the lock's commands: ${message}. Check the credentials and the ACL of the user (it needs EVAL, EVALSHA, SET, DEL, PEXPIRE, PTTL, EXISTS, ZRANGE, HGETALL, SMEMBERS, SUBSCRIBE on the keys and channels of the prefix).`, { cause: err });
    return new RedisUnavailableError(this.description, err, `${this.description} did not answer: ${message.replace(/\.+$/, '')}. Check that Redis is running and reachable.`);
  }

  isUnavailable(err: unknown): boolean {
    if (err instanceof RedisUnavailableError) return true;
    return !(err instanceof LockError) && isRedisUnreachable(err);
  }

  isSessionGone(err: unknown): boolean {
    return err instanceof RedisSessionGoneError;
  }

  async close(): Promise<void> {
    this.channels.close();
    if (this.ownsClient) await this.client.quit().catch(() => this.client.disconnect());
  }
}
