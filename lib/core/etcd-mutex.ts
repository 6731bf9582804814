import {
  CompareResult,
  CompareTarget,
  SortOrder,
  SortTarget,
  isRecoverableError,
  type Etcd3,
  type IKeyValue,
  type IRequestOp,
  type ITxnResponse,
} from 'etcd3';
import { prefixEnd } from './lock-key.js';
import { retryWithBackoff } from './retry.js';

/** Why a holder watch stopped; a constant, as `abort()` without a reason builds a DOMException. */
const STOPPED = new Error('holder watch stopped');

/** Thrown by {@link EtcdMutex.waitForTurn} when our queue key vanished while we waited. */
export class QueueKeyGoneError extends Error {}

/**
 * One attempt at one lock: a queue key `<queue prefix><lease hex>-<slot>` under the lock's
 * prefix. The key with the lowest create revision holds the lock; that revision is the
 * fencing token. The key name is fixed before the first request, so a transaction retried
 * after an unknown outcome finds its own key instead of queueing twice.
 */
export class EtcdMutex {
  /** Create revision of our key once known: our place in the queue and the fencing token. */
  revision: bigint | undefined;
  /** etcd revision at which we last saw our key and the queue: a watch attached later re-reads. */
  seenAt = 0n;
  /** The key right before ours when we enqueued (null: none), unknown after a retried enqueue. */
  private predecessor: Buffer | null | undefined;

  private readonly prefix: Buffer;
  private readonly prefixEnd: Buffer;
  private readonly key: Buffer;

  constructor(
    private readonly client: Etcd3,
    queuePrefix: string,
    readonly etcdKey: string,
    private readonly leaseId: string,
    private readonly value: string,
  ) {
    this.prefix = Buffer.from(queuePrefix);
    this.prefixEnd = prefixEnd(this.prefix);
    this.key = Buffer.from(etcdKey);
  }

  /**
   * Puts our key and learns our place in ONE transaction; true when we hold the lock.
   * With `onlyIfFree` the key is put only if the queue is empty, so a busy lock costs one
   * request and leaves nothing behind. Shared by acquire and tryAcquire.
   */
  async tryAcquire(onlyIfFree: boolean): Promise<boolean> {
    const res = await this.client.kv.txn({
      compare: [
        onlyIfFree
          ? // nobody holds or waits: the whole queue range is empty
            { key: this.prefix, range_end: this.prefixEnd, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }
          : // our key is not there yet (a retry of this transaction would find it)
            { key: this.key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 },
      ],
      success: [
        // put self in the queue, on the session's lease: it goes when the session goes
        { request_put: { key: this.key, value: Buffer.from(this.value), lease: this.leaseId } },
        // the two newest keys: ours and, if any, the one right before it (who we would wait for)
        this.queueRange(SortOrder.Descend, 2),
      ],
      failure: [
        // our key from an earlier try of this same transaction, if it went through
        { request_range: { key: this.key } },
        // the holder
        this.queueRange(SortOrder.Ascend, 1),
      ],
    });
    this.seenAt = BigInt(res.header.revision);
    if (res.succeeded) {
      this.revision = this.seenAt;
      this.predecessor = rangeAt(res, 1)[1]?.key ?? null;
      return this.predecessor === null; // no key older than ours
    }
    const own = rangeAt(res, 0)[0];
    if (!own) return false; // onlyIfFree and busy: nothing was written
    this.revision = BigInt(own.create_revision);
    return rangeAt(res, 1)[0]?.key.equals(this.key) ?? false;
  }

  /**
   * Waits until our key is the oldest in the queue, watching only the key right before it:
   * one release wakes one waiter. After every wake-up, one read confirms our key still
   * exists with its revision and finds whether an older key remains (the predecessor may
   * have left the queue without the lock ever being released).
   * Rejects with `signal.reason` when aborted, QueueKeyGoneError when our key vanished.
   */
  async waitForTurn(signal: AbortSignal): Promise<void> {
    // the enqueue transaction already named our predecessor (a retried one did not: read)
    let predecessor = this.predecessor !== undefined ? this.predecessor : await this.readPredecessor(signal);
    while (predecessor) {
      signal.throwIfAborted();
      const watch = this.watchDeletion(predecessor, signal);
      try {
        const attachedAt = await watch.attached;
        if (attachedAt !== undefined && attachedAt > this.seenAt) {
          // etcd moved on between our read and the watch: the predecessor may be gone already
          const current = await this.readPredecessor(signal);
          if (!current?.equals(predecessor)) {
            predecessor = current;
            continue;
          }
        }
        await watch.gone;
      } finally {
        watch.stop();
      }
      signal.throwIfAborted();
      predecessor = await this.readPredecessor(signal);
    }
  }

  /**
   * Calls `onGone` once if our key is deleted while we hold the lock (by anyone: an admin,
   * etcdctl, lease expiry). Returns a function that stops watching.
   */
  watchHolder(onGone: () => void, delayMs = 0): () => void {
    const stop = new AbortController();
    const gone = async (): Promise<boolean> => !stop.signal.aborted && !(await this.ownKeyRemains(stop.signal));
    const watch = async (): Promise<void> => {
      while (!stop.signal.aborted) {
        const watch = this.watchDeletion(this.key, stop.signal);
        try {
          const attachedAt = await watch.attached;
          // etcd moved on since we last saw our key (during the delay, say): it may be gone already
          if ((attachedAt === undefined || attachedAt > this.seenAt) && (await gone())) return onGone();
          if (attachedAt !== undefined) await watch.gone;
        } finally {
          watch.stop();
        }
        // a delete event, or trouble with the watch: read instead of trusting a resumed stream
        if (await gone()) return onGone();
      }
    };
    // most locks end before the delay: they never watch
    const timer = setTimeout(() => void watch().catch(() => undefined /* stopped */), delayMs).unref();
    return () => {
      clearTimeout(timer);
      stop.abort(STOPPED);
    };
  }

  /**
   * Puts our key, still the one we created, on another lease (a hard-TTL lock's own). A put
   * keeps the create revision: the token and our place stay. False if the key is gone.
   */
  async moveToLease(leaseId: string): Promise<boolean> {
    const res = await this.client.kv.txn({
      compare: [{ key: this.key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: this.revision!.toString() }],
      success: [{ request_put: { key: this.key, value: Buffer.from(this.value), lease: leaseId } }],
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
    if (this.revision === undefined) {
      // remove our attempt's key, if the enqueue went through
      return Number((await this.client.kv.deleteRange({ key: this.key })).deleted) > 0;
    }
    const res = await this.client.kv.txn({
      // only the key we created, never a successor's
      compare: [{ key: this.key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: this.revision.toString() }],
      success: [{ request_delete_range: { key: this.key } }],
      failure: [],
    });
    return res.succeeded;
  }

  private queueRange(order: SortOrder, limit: number, maxCreateRevision?: bigint): IRequestOp {
    return {
      request_range: {
        key: this.prefix,
        range_end: this.prefixEnd,
        sort_order: order,
        sort_target: SortTarget.Create,
        limit,
        keys_only: true,
        ...(maxCreateRevision !== undefined && { max_create_revision: maxCreateRevision.toString() }),
      },
    };
  }

  /**
   * One read: throws QueueKeyGoneError unless our key is still there with its revision;
   * returns the newest key created before ours (our predecessor), or null if none is left.
   */
  private async readPredecessor(signal: AbortSignal): Promise<Buffer | null> {
    const res = await this.readUntilAnswered(signal, {
      compare: [],
      success: [{ request_range: { key: this.key } }, this.queueRange(SortOrder.Descend, 1, this.revision! - 1n)],
      failure: [],
    });
    const own = rangeAt(res, 0)[0];
    if (!own || BigInt(own.create_revision) !== this.revision) throw new QueueKeyGoneError();
    this.seenAt = BigInt(res.header.revision);
    return rangeAt(res, 1)[0]?.key ?? null;
  }

  /** One read: is our key still there with its revision? */
  private async ownKeyRemains(signal: AbortSignal): Promise<boolean> {
    const res = await this.readUntilAnswered(signal, { compare: [], success: [{ request_range: { key: this.key } }], failure: [] });
    this.seenAt = BigInt(res.header.revision);
    const own = rangeAt(res, 0)[0];
    return own !== undefined && BigInt(own.create_revision) === this.revision;
  }

  /** A read-only transaction (a linearizable read, no Raft entry), retried while etcd is unreachable. */
  private readUntilAnswered(signal: AbortSignal, txn: Parameters<Etcd3['kv']['txn']>[0]): Promise<ITxnResponse> {
    return retryWithBackoff(() => this.client.kv.txn(txn), {
      initialMs: 50,
      maxMs: 1000,
      signal,
      retryIf: err => isRecoverableError(err as Error),
    });
  }

  /**
   * Watches `key` for deletion FROM NOW. A watch from a past revision would be served by
   * etcd's catch-up loop, which runs every 100 ms, and a handoff would wait for it.
   * `attached` resolves with the revision the watch starts after (undefined if it ended
   * first); `gone` resolves on a deletion, on any watch trouble (re-read then), or on abort.
   */
  private watchDeletion(key: Buffer, signal: AbortSignal): { attached: Promise<bigint | undefined>; gone: Promise<void>; stop: () => void } {
    // wake on this one key's deletion only: no thundering herd
    const watcher = this.client.watch().key(key).only('delete').watcher();
    let onAttached!: (revision: bigint | undefined) => void;
    let onGone!: () => void;
    const attached = new Promise<bigint | undefined>(resolve => (onAttached = resolve));
    const gone = new Promise<void>(resolve => (onGone = resolve));
    let cancelledByServer = false;
    const end = () => {
      onAttached(undefined); // no-op once attached
      onGone();
    };
    watcher.on('connected', (res: { header: { revision: string } }) => onAttached(BigInt(res.header.revision)));
    watcher.on('delete', end);
    // disconnect or cancel: the caller re-reads the state
    watcher.on('disconnected', end);
    watcher.on('error', () => {
      cancelledByServer = true;
      end();
    });
    signal.addEventListener('abort', end, { once: true });
    if (signal.aborted) end();
    return {
      attached,
      gone,
      stop: () => {
        signal.removeEventListener('abort', end);
        watcher.removeAllListeners();
        watcher.on('error', () => undefined);
        // cancelling a watch etcd cancelled already draws a second cancel reply, on which
        // etcd3 1.1.2 throws from its stream handler ("Failed to find watcher") and the process dies
        if (!cancelledByServer) watcher.cancel().catch(() => undefined);
      },
    };
  }
}

/**
 * Keeps etcd3's shared watch stream open with one idle watch. etcd3 cancels the stream when
 * its last watcher leaves but still reports it connected for a moment; a watch created in
 * that window only starts after a reconnect backoff (128 ms or more), which would delay a
 * handoff. Returns a function that lets the stream close.
 */
export function holdWatchStreamOpen(client: Etcd3, idleKey: string): () => void {
  // watch a key nobody writes: costs one watcher, sees no events
  const watcher = client.watch().key(idleKey).watcher();
  watcher.on('error', () => undefined);
  return () => void watcher.cancel().catch(() => undefined);
}

function rangeAt(res: ITxnResponse, index: number): IKeyValue[] {
  return res.responses[index]?.response_range?.kvs ?? [];
}
