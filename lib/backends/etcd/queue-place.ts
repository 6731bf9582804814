import type { IRequestOp, ITxnResponse } from 'etcd3';
import { EXCLUSIVE, canQueueTogether, kindOfKey, kindTag, type LockKind } from '../../common/lock-kind.js';
import { KindConflictError } from '../../common/backend.errors.js';
import { newestKeys, rangeAt } from './lock-key.js';

/**
 * What a waiter waits for: one key's deletion (and, behind a semaphore waiter, its put when
 * that waiter gets a place), or any release in the queue (the first semaphore waiter
 * without a place: any of the holders leaving frees one for it).
 */
export type Blocker = { readonly key: Buffer; readonly wakeOnPut: boolean } | 'any-release';

/**
 * Where a key of `kind` stands in the queue under `queuePrefix` (see EtcdMutex): the reads of
 * what is ahead of it, and what, in their results, it waits for. It sends no request itself.
 */
export class QueuePlace {
  /** Every key of the queue. */
  readonly prefix: Buffer;
  /** The exclusive keys of the queue: all that a shared key waits behind. */
  readonly writers: Buffer;

  constructor(
    queuePrefix: string,
    private readonly kind: LockKind,
  ) {
    this.prefix = Buffer.from(queuePrefix);
    this.writers = Buffer.from(`${queuePrefix}${kindTag(EXCLUSIVE)}-`);
  }

  /**
   * Reads of what is ahead of our key, for the enqueue transaction (`before` undefined: ours
   * is the newest key, and the first range returns it too) or a later read (keys created
   * before `before`): the newest keys of any kind (as many as a semaphore needs to count
   * its place, capped), and for a shared key the newest exclusive one.
   */
  reads(before: bigint | undefined): IRequestOp[] {
    // the enqueue's reads also return our own key, the newest
    const newest = (key: Buffer, limit: number) => newestKeys(key, limit + (before === undefined ? 1 : 0), before);
    // count_only would ignore max_create_revision: count up to limit + 1 keys instead
    const reads = [newest(this.prefix, this.kind.mode === 'semaphore' ? this.kind.limit + 1 : 1)];
    if (this.kind.mode === 'shared') reads.push(newest(this.writers, 1));
    return reads;
  }

  /** What is in the way of our key, from the results of {@link reads} starting at `index`. */
  blockerFrom(res: ITxnResponse, index: number, includesOurs: boolean): Blocker | null {
    const ahead = rangeAt(res, index).slice(includesOurs ? 1 : 0); // newest first
    if (ahead[0]) this.checkKind(ahead[0].key);
    switch (this.kind.mode) {
      case 'exclusive':
        return ahead[0] ? { key: ahead[0].key, wakeOnPut: false } : null;
      case 'shared': {
        const writer = rangeAt(res, index + 1)[0]; // ours is not among the exclusive keys
        return writer ? { key: writer.key, wakeOnPut: false } : null;
      }
      case 'semaphore':
        if (ahead.length < this.kind.limit) return null;
        // first without a place: any holder's release frees one; further back: wait for the key ahead to move up
        return ahead.length === this.kind.limit ? 'any-release' : { key: ahead[0].key, wakeOnPut: true };
    }
  }

  /** Throws KindConflictError when the key ahead asks for a kind that cannot queue with ours. */
  checkKind(key: Buffer): void {
    const found = kindOfKey(key, this.prefix.length) ?? EXCLUSIVE;
    if (!canQueueTogether(found, this.kind)) throw new KindConflictError(found);
  }
}

export function sameBlocker(a: Blocker | null, b: Blocker): boolean {
  if (a === null || a === 'any-release' || b === 'any-release') return a === b;
  return a.key.equals(b.key) && a.wakeOnPut === b.wakeOnPut;
}
