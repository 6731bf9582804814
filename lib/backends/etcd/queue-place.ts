import type { IKeyValue, IRequestOp, ITxnResponse } from 'etcd3';
import { EXCLUSIVE, SHARED, canQueueTogether, kindOfKey, kindTag, type LockKind } from '../../common/lock-kind.js';
import { KindConflictError } from '../../common/backend.errors.js';
import { newestKeysIn, prefixEnd, rangeAt, type KeyRange } from './lock-key.js';

/**
 * What a waiter waits for: one key's deletion (and, behind a semaphore waiter, its put when
 * that waiter gets a place), or any release in the queue (the first semaphore waiter
 * without a place: any of the holders leaving frees one for it).
 */
export type Blocker = { readonly key: Buffer; readonly wakeOnPut: boolean } | 'any-release';

/**
 * Where a key of `kind` stands in the queue under `queuePrefix` (see EtcdMutex): the reads of
 * what is ahead of it, and what, in their results, it waits for. It sends no request itself.
 *
 * A key without a kind tag of ours is another client's (etcd's lock recipe: `etcdctl lock`,
 * Go's concurrency.Mutex, etcd's Lock service) and counts as exclusive. So a reader waits
 * behind every key that is not a reader's: not only behind ours tagged `x-`.
 */
export class QueuePlace {
  /** Every key of the queue. */
  readonly prefix: Buffer;
  /** Where the keys that are in this kind's way are: the whole queue, or for a shared key every key but the readers'. */
  readonly inTheWay: readonly KeyRange[];

  constructor(
    queuePrefix: string,
    private readonly kind: LockKind,
  ) {
    this.prefix = Buffer.from(queuePrefix);
    const whole = { from: this.prefix, to: prefixEnd(this.prefix) };
    if (kind.mode !== 'shared') {
      this.inTheWay = [whole];
    } else {
      // the readers' keys are the range `<queue prefix>r-`: the two ranges around it hold everything else
      const readers = Buffer.from(`${queuePrefix}${kindTag(SHARED)}-`);
      this.inTheWay = [
        { from: whole.from, to: readers },
        { from: prefixEnd(readers), to: whole.to },
      ];
    }
  }

  /**
   * Reads of what is ahead of our key, for the enqueue transaction (`before` undefined: ours
   * is the newest key, and the first range returns it too) or a later read (keys created
   * before `before`): the newest keys of any kind (as many as a semaphore needs to count
   * its place, capped), and for a shared key the newest of the keys in its way.
   */
  reads(before: bigint | undefined): IRequestOp[] {
    // the enqueue's reads also return our own key, the newest
    const newest = (range: KeyRange, limit: number) => newestKeysIn(range, limit + (before === undefined ? 1 : 0), before);
    // count_only would ignore max_create_revision: count up to limit + 1 keys instead
    const reads = [newest({ from: this.prefix, to: prefixEnd(this.prefix) }, this.kind.mode === 'semaphore' ? this.kind.limit + 1 : 1)];
    if (this.kind.mode === 'shared') reads.push(...this.inTheWay.map(range => newest(range, 1)));
    return reads;
  }

  /** What is in the way of our key, from the results of {@link reads} starting at `index`. */
  blockerFrom(res: ITxnResponse, index: number, includesOurs: boolean): Blocker | null {
    const ahead = rangeAt(res, index).slice(includesOurs ? 1 : 0); // newest first
    switch (this.kind.mode) {
      case 'exclusive':
        if (ahead[0]) this.checkKind(ahead[0].key);
        return ahead[0] ? { key: ahead[0].key, wakeOnPut: false } : null;
      case 'shared': {
        if (ahead[0]) this.checkKind(ahead[0].key);
        // ours is a reader's key: not in either range
        const inTheWay = newestOf(this.inTheWay.map((_, i) => rangeAt(res, index + 1 + i)[0]));
        return inTheWay ? { key: inTheWay.key, wakeOnPut: false } : null;
      }
      case 'semaphore':
        // every key that could share a place with ours: one of another kind (or another client's) cannot
        for (const kv of ahead) this.checkKind(kv.key);
        if (ahead.length < this.kind.limit) return null;
        // first without a place: any holder's release frees one; further back: wait for the key ahead to move up
        return ahead.length === this.kind.limit ? 'any-release' : { key: ahead[0].key, wakeOnPut: true };
    }
  }

  /** The newest key in the way, from the results of reads of {@link inTheWay} starting at `index`. */
  newestInTheWay(res: ITxnResponse, index: number): IKeyValue | undefined {
    return newestOf(this.inTheWay.map((_, i) => rangeAt(res, index + i)[0]));
  }

  /** Throws KindConflictError when the key ahead asks for a kind that cannot queue with ours. */
  checkKind(key: Buffer): void {
    const found = kindOfKey(key, this.prefix.length) ?? EXCLUSIVE;
    if (!canQueueTogether(found, this.kind)) throw new KindConflictError(found);
  }
}

/** The key created last among those found (by create revision). */
function newestOf(found: ReadonlyArray<IKeyValue | undefined>): IKeyValue | undefined {
  return found.reduce<IKeyValue | undefined>((newest, kv) => (kv && (!newest || BigInt(kv.create_revision) > BigInt(newest.create_revision)) ? kv : newest), undefined);
}

export function sameBlocker(a: Blocker | null, b: Blocker): boolean {
  if (a === null || a === 'any-release' || b === 'any-release') return a === b;
  return a.key.equals(b.key) && a.wakeOnPut === b.wakeOnPut;
}
