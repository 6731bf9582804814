import { CompareResult, CompareTarget, type Etcd3, type ITxnRequest, type ITxnResponse } from 'etcd3';
import type { LockKind } from '../../common/lock-kind.js';
import { type QueueEntry, type TimedHold } from '../../interfaces/lock-backend.interface.js';
import { EntryGoneError } from '../../common/backend.errors.js';
import { createdAt, newestKeysIn, rangeAt, waitingRoomKey, waitingRoomPrefix } from './lock-key.js';
import { encodeOwner, type OwnerRecord } from '../../common/owner-record.js';
import { HolderWatch, type HeldKey } from './holder-watch.js';
import { QueuePlace, sameBlocker, type Blocker } from './queue-place.js';
import type { QueueSlot } from './queue-slots.js';
import type { TxnBatcher } from './txn-batcher.js';
import type { KeyWatch, StoppableWatch, WatchListener, WatchStream } from './watch-stream.js';
import { UnguardedWrites } from './unguarded-writes.js';
import { untilEtcdAnswers } from './etcd-errors.js';
import { WaitingRoom } from './waiting-room.js';

/**
 * One attempt at one lock: a queue key `<queue prefix><kind tag>-<lease hex>-<slot>` under
 * the lock's prefix. Keys hold in create-revision order: an exclusive key once no key is
 * older, a shared key once no exclusive key is older, a semaphore key once fewer than
 * `limit` keys are older. Its create revision is the fencing token. The key name is fixed
 * before the first request, so a transaction retried after an unknown outcome finds its own
 * key instead of queueing twice.
 */
export class EtcdMutex implements QueueEntry, HeldKey {
  /** Create revision of our key once known: our place in the queue and the fencing token. */
  revision: bigint | undefined;
  /** etcd revision at which we last saw our key and the queue: a watch attached later re-reads. */
  seenAt = 0n;
  /** What we wait for, as of our last look (null: nothing, we hold; undefined: unknown, read). */
  private blocker: Blocker | null | undefined;
  /** The newest key in the way when a take-if-free found the lock busy: what an unfair waiter watches. */
  private busyKey: Buffer | undefined;
  /** We waited for the lock and have not yet written when we got it into our key. */
  acquiredUnrecorded = false;
  /** An unfair waiter's place in the waiting room, until it holds the lock or gives up. */
  private room: WaitingRoom | undefined;
  /** Our writes that do not check the key's create revision: they decide when the slot is given back. */
  private readonly unguarded: UnguardedWrites;
  /** The reads of what is ahead of our key, and what in them is in our way. */
  private readonly place: QueuePlace;

  private readonly key: Buffer;

  constructor(
    private readonly client: Etcd3,
    /** sends the enqueue and the release with other locks' while one is in flight (group commit) */
    private readonly txns: TxnBatcher,
    /** the connection's one watch stream */
    private readonly watches: WatchStream,
    private readonly queuePrefix: string,
    readonly kind: LockKind,
    readonly etcdKey: string,
    private readonly leaseId: string,
    /** who we are, written as the key's value */
    readonly record: OwnerRecord,
    /** the session's name for our key, given back once no write of ours can land on it */
    private readonly slot: QueueSlot,
    /** moves the held key onto a lease of its own (a hard-TTL lock) */
    private readonly ownLease: (mutex: EtcdMutex, ttl: number) => Promise<TimedHold | null>,
  ) {
    this.key = Buffer.from(etcdKey);
    this.unguarded = new UnguardedWrites(slot);
    this.place = new QueuePlace(queuePrefix, kind);
  }

  /** The fencing token: our key's create revision, once known. */
  get token(): bigint | undefined {
    return this.revision;
  }

  /**
   * Puts our key and learns our place in ONE transaction; true when we hold the lock.
   * With `onlyIfFree` the key is put only if nothing is in the way (no key at all; for a
   * shared key, no exclusive key), so a busy lock costs one request and leaves nothing
   * behind. Shared by acquire, tryAcquire and the unfair wait.
   */
  async tryAcquire(onlyIfFree: boolean): Promise<boolean> {
    // a semaphore's free places cannot be counted in a compare: a try queues, and the caller removes a key without a place
    const ifFree = onlyIfFree && this.kind.mode !== 'semaphore';
    const inTheWay = this.place.inTheWay;
    const res = await this.unguarded.send('put', () => this.txns.txn(this.queuePrefix, {
      compare: ifFree
        ? // nothing in the way holds or waits
          inTheWay.map(range => ({ key: range.from, range_end: range.to, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }))
        : // our key is not there yet (a retry of this transaction would find it)
          [{ key: this.key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }],
      success: [
        // put self in the queue, on the session's lease: it goes when the session goes
        { request_put: { key: this.key, value: encodeOwner(this.record), lease: this.leaseId } },
        // what is ahead of us: ours is the newest key, so these are the keys before it
        ...this.place.reads(undefined),
      ],
      failure: [
        // our key from an earlier try of this same transaction, if it went through
        { request_range: { key: this.key } },
        // the newest key in the way
        ...inTheWay.map(range => newestKeysIn(range, 1)),
      ],
    }));
    this.seenAt = BigInt(res.header.revision);
    if (res.succeeded) {
      this.revision = this.seenAt;
      this.blocker = this.place.blockerFrom(res, 1, true);
      return this.blocker === null;
    }
    const own = rangeAt(res, 0)[0];
    if (own) {
      // an earlier try went through: read our place
      this.revision = BigInt(own.create_revision);
      this.blocker = this.place.blockerFrom(await this.readPlace(), 1, false);
      return this.blocker === null;
    }
    this.busyKey = this.place.newestInTheWay(res, 1)?.key;
    if (this.busyKey) this.place.checkKind(this.busyKey);
    return false; // busy, and nothing was written
  }

  /**
   * Waits until our key holds, watching one key (or, for the first semaphore waiter without a
   * place, the queue's releases): one release wakes one waiter. After every wake-up, one read
   * confirms our key still exists with its revision and finds what is still in the way (a
   * key ahead may leave the queue without the lock ever being released).
   * Rejects with `signal.reason` when aborted, EntryGoneError when our key vanished.
   */
  async waitForTurn(signal: AbortSignal): Promise<void> {
    // the enqueue transaction already told what is in the way (a retried one did not: read)
    let blocker = this.blocker !== undefined ? this.blocker : await this.readBlocker(signal);
    const waited = blocker !== null;
    while (blocker) {
      signal.throwIfAborted();
      const watch = this.watchFor(blocker, signal);
      try {
        const attachedAt = await watch.attached;
        if (attachedAt !== undefined && attachedAt > this.seenAt) {
          // etcd moved on between our read and the watch: what we wait for may have happened already
          const current = await this.readBlocker(signal);
          if (!sameBlocker(current, blocker)) {
            blocker = current;
            continue;
          }
        }
        await watch.gone;
      } finally {
        watch.stop();
      }
      signal.throwIfAborted();
      blocker = await this.readBlocker(signal);
    }
    if (!waited) return;
    // when we got the lock, for getLockInfo (a lock taken at once got it when it queued)
    this.record.acquiredAt = Date.now();
    // the semaphore waiter behind us watches our key for this put: it may now be first without a place
    if (this.kind.mode === 'semaphore') await untilEtcdAnswers(signal, () => this.touch());
    // others write it with the holder watch: no write on the handoff's path, none for short holds
    else this.acquiredUnrecorded = true;
  }

  /**
   * The unfair wait (`fair: false`): no key in the queue while waiting, only one in `room`.
   * The first of the room watches the newest key in the way and, once it is gone, takes the
   * lock if it is free, racing only callers that are running right now.
   */
  async waitUntilFree(signal: AbortSignal): Promise<void> {
    const roomKey = waitingRoomKey(this.queuePrefix, BigInt(this.leaseId).toString(16), this.slot.number);
    const room = (this.room = new WaitingRoom(this.client, this.watches, waitingRoomPrefix(this.queuePrefix), roomKey, this.leaseId, this.record));
    await untilEtcdAnswers(signal, () => this.unguarded.send('put', () => room.enter()));
    await room.untilFirst(signal);
    for (;;) {
      if (this.revision !== undefined) {
        await this.waitForTurn(signal); // a retried take went in behind someone: queue
        break;
      }
      await this.watches.deletedSince(this.busyKey!, this.seenAt, signal);
      if (await untilEtcdAnswers(signal, () => this.tryAcquire(true))) break;
    }
    // the next in the room wakes and waits on us
    await untilEtcdAnswers(signal, () => this.unguarded.send('delete', () => room.leave()));
    this.room = undefined;
  }

  /** Calls `onGone` once if anyone deletes our key while we hold the lock: see {@link HolderWatch}. */
  watchHolder(onGone: (forced: boolean) => void, delayMs = 0): HolderWatch {
    return new HolderWatch(this, onGone, delayMs);
  }

  /** A watch FROM NOW for our key's deletion, with the key as it was: an operator's forceUnlock marks it before deleting it. */
  watchDeletion(listener: WatchListener): StoppableWatch {
    return this.watches.watch({ key: this.key, wakeOnPut: false, withPrevious: true }, listener);
  }

  /** A hard-TTL lock: our held key moves onto a lease of `ttl` s that nobody keeps alive. */
  holdFor(ttl: number): Promise<TimedHold | null> {
    return this.ownLease(this, ttl);
  }

  /**
   * Puts our key, still the one we created, on another lease (a hard-TTL lock's own). A put
   * keeps the create revision: the token and our place stay. The lease's marker is put with
   * it. False if the key is gone.
   */
  async moveToLease(leaseId: string, marker: { key: string; value: Buffer }): Promise<boolean> {
    const res = await this.client.kv.txn({
      compare: [createdAt(this.key, this.revision!)],
      success: [
        { request_put: { key: this.key, value: encodeOwner(this.record), lease: leaseId } },
        // the lease's marker goes with the key, on the lease: see leaseMarkerKey
        { request_put: { key: Buffer.from(marker.key), value: marker.value, lease: leaseId } },
      ],
      failure: [],
    });
    return res.succeeded;
  }

  /**
   * Deletes our key if it is still the one we created (`If CreateRevision == token`):
   * idempotent, safe to retry, and it can never delete a newer holder's key. When the
   * enqueue's outcome is unknown our unique key is deleted outright: no one else writes it.
   * Resolves true if our key was still there: false tells a holder its lock had been lost.
   */
  async release(): Promise<boolean> {
    // deletes sent after every put was answered leave no key of ours behind once answered
    const start = this.unguarded.releaseBegins();
    if (this.room) {
      const room = this.room;
      await this.unguarded.send('delete', () => room.leave()); // an unfair waiter giving up
      if (start.afterEveryPut) this.room = undefined; // else an entry still in flight may land: leave again next time
    }
    const wasThere =
      this.revision === undefined
        ? // remove our attempt's key, if the enqueue went through
          Number((await this.unguarded.send('delete', () => this.client.kv.deleteRange({ key: this.key }))).deleted) > 0
        : (await this.txns.txn(this.queuePrefix, this.guardedDelete())).succeeded;
    this.unguarded.releaseAnswered(start);
    return wasThere;
  }

  /** A try that wrote nothing (the lock was busy): no key of ours exists, the name can serve again. */
  wroteNothing(): void {
    this.unguarded.wroteNothing();
  }

  /** The delete of {@link release} for a holder: only the key we created, never a successor's. */
  guardedDelete(): ITxnRequest {
    return { compare: [createdAt(this.key, this.revision!)], success: [{ request_delete_range: { key: this.key } }], failure: [] };
  }

  /** One read: our key (EntryGoneError unless it is still there with its revision) and what is ahead of it. */
  private async readPlace(): Promise<ITxnResponse> {
    const res = await this.client.kv.txn({
      compare: [],
      success: [{ request_range: { key: this.key } }, ...this.place.reads(this.revision)],
      failure: [],
    });
    const own = rangeAt(res, 0)[0];
    if (!own || BigInt(own.create_revision) !== this.revision) throw new EntryGoneError();
    this.seenAt = BigInt(res.header.revision);
    return res;
  }

  /** {@link readPlace} retried while etcd is unreachable; what is in the way now. */
  private async readBlocker(signal: AbortSignal): Promise<Blocker | null> {
    return this.place.blockerFrom(await untilEtcdAnswers(signal, () => this.readPlace()), 1, false);
  }

  /** A put of our key with its record (guarded by its revision): the change the semaphore waiter behind us watches for. */
  private async touch(): Promise<void> {
    const res = await this.client.kv.txn({
      compare: [createdAt(this.key, this.revision!)],
      // on whatever lease it is: a hard-TTL lock's key has moved to its own
      success: [{ request_put: { key: this.key, value: encodeOwner(this.record), ignore_lease: true } }],
      failure: [],
    });
    this.seenAt = BigInt(res.header.revision);
    if (!res.succeeded) throw new EntryGoneError();
  }

  /** Writes when we got the lock into our key; false if the key is gone. */
  async recordAcquired(signal: AbortSignal): Promise<boolean> {
    this.acquiredUnrecorded = false;
    try {
      await untilEtcdAnswers(signal, () => this.touch());
      return true;
    } catch (err) {
      if (err instanceof EntryGoneError) return false;
      throw err;
    }
  }

  /** One read: is our key still there with its revision? */
  async ownKeyRemains(signal: AbortSignal): Promise<boolean> {
    const res = await untilEtcdAnswers(signal, () => this.client.kv.txn({ compare: [], success: [{ request_range: { key: this.key } }], failure: [] }));
    this.seenAt = BigInt(res.header.revision);
    const own = rangeAt(res, 0)[0];
    return own !== undefined && BigInt(own.create_revision) === this.revision;
  }

  /** A watch FROM NOW for what `blocker` names (see {@link WatchStream.watchFromNow}). */
  private watchFor(blocker: Blocker, signal: AbortSignal): KeyWatch {
    return this.watches.watchFromNow(blocker === 'any-release' ? { prefix: this.place.prefix } : blocker, signal);
  }
}
