import { CompareResult, CompareTarget, type Etcd3 } from 'etcd3';
import { EntryGoneError } from '../../common/backend.errors.js';
import { newestKeys, rangeAt } from './lock-key.js';
import { encodeOwner, type OwnerRecord } from '../../common/owner-record.js';
import { untilEtcdAnswers } from './etcd-errors.js';
import type { WatchStream } from './watch-stream.js';

/**
 * Where the unfair waiters (`fair: false`) of one lock line up, outside its queue so that they
 * never stop anyone from taking a free lock. Only the first of the room waits on the lock;
 * every other waiter watches the one ahead of it, so a release wakes one waiter, not all. A
 * running caller may still take a free lock before that first waiter: that is the unfairness.
 */
export class WaitingRoom {
  private revision: bigint | undefined;
  private seenAt = 0n;
  /** The key ahead of ours when we entered (null: none); unknown after a retried enter. */
  private ahead: Buffer | null | undefined;
  private readonly prefix: Buffer;
  private readonly key: Buffer;

  constructor(
    private readonly client: Etcd3,
    private readonly watches: WatchStream,
    roomPrefix: string,
    key: string,
    private readonly leaseId: string,
    private readonly record: OwnerRecord,
  ) {
    this.prefix = Buffer.from(roomPrefix);
    this.key = Buffer.from(key);
  }

  /** Puts our key in the room and learns the one ahead of it, in one transaction; safe to retry. */
  async enter(): Promise<void> {
    const res = await this.client.kv.txn({
      // not there yet (a retry of this transaction would find it)
      compare: [{ key: this.key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }],
      // our key, on the session's lease, and the two newest keys: ours and the one ahead
      success: [{ request_put: { key: this.key, value: encodeOwner(this.record), lease: this.leaseId } }, newestKeys(this.prefix, 2)],
      // our key from an earlier try
      failure: [{ request_range: { key: this.key } }],
    });
    this.seenAt = BigInt(res.header.revision);
    if (res.succeeded) {
      this.revision = this.seenAt;
      this.ahead = rangeAt(res, 1)[1]?.key ?? null;
    } else {
      this.revision = BigInt(rangeAt(res, 0)[0].create_revision); // the one ahead: untilFirst reads
    }
  }

  /** Waits until no key is ahead of ours. Rejects with EntryGoneError if ours vanished. */
  async untilFirst(signal: AbortSignal): Promise<void> {
    let ahead = this.ahead !== undefined ? this.ahead : await this.readAhead(signal);
    while (ahead) {
      await this.watches.deletedSince(ahead, this.seenAt, signal);
      ahead = await this.readAhead(signal);
    }
  }

  /** Takes our key out (we hold the lock, or gave up): the next waiter wakes. Idempotent. */
  async leave(): Promise<void> {
    // by name: no one else ever writes our key
    await this.client.kv.deleteRange({ key: this.key });
  }

  /** One read: our key (EntryGoneError unless it is there) and the newest key ahead of it. */
  private async readAhead(signal: AbortSignal): Promise<Buffer | null> {
    const res = await untilEtcdAnswers(signal, () =>
      this.client.kv.txn({ compare: [], success: [{ request_range: { key: this.key } }, newestKeys(this.prefix, 1, this.revision!)], failure: [] }),
    );
    const own = rangeAt(res, 0)[0];
    if (!own || BigInt(own.create_revision) !== this.revision) throw new EntryGoneError();
    this.seenAt = BigInt(res.header.revision);
    return rangeAt(res, 1)[0]?.key ?? null;
  }
}
