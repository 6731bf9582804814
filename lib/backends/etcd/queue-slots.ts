/** One claimed queue-key name of a session: its number, given back at most once. */
export interface QueueSlot {
  readonly number: number;
  /** Gives the name back; only the first call counts, so a later claim can never be freed by this one. */
  free(): void;
}

/**
 * The names of one session's queue keys, reused: `<lease hex>-<slot>`, the smallest slot no
 * attempt of the session is using for that lock. A fresh name per acquisition would leave one
 * more deleted key in etcd's index until etcd is compacted, and every acquire of the lock
 * scans them all (measured: 50,000 past acquisitions made a cycle 5 x slower).
 *
 * Reuse is safe because a release is guarded by the key's create revision: a late release
 * never deletes a newer key of the same name. The attempt gives its slot back (UnguardedWrites)
 * once no write of it can still land on the name: every put-if-absent it sent was answered
 * and the delete of its key was answered, whether it held the lock, timed out or was
 * aborted. An attempt with a put whose outcome is unknown (etcd did not answer) keeps its
 * slot for the session's life: that put could still create the key, and a retried put of a
 * new attempt would then take it for its own.
 */
export class QueueSlots {
  /** `<lock name>\0<slot>` of every name in use: one string per held lock, not a collection per lock. */
  private readonly inUse = new Set<string>();

  claim(name: string): QueueSlot {
    let number = 0;
    let slot = slotName(name, number);
    while (this.inUse.has(slot)) slot = slotName(name, ++number);
    this.inUse.add(slot);
    return new ClaimedSlot(number, slot, this.inUse);
  }
}

const slotName = (lock: string, number: number) => `${lock}\u0000${number}`;

class ClaimedSlot implements QueueSlot {
  private freed = false;

  constructor(
    readonly number: number,
    readonly name: string,
    private readonly inUse: Set<string>,
  ) {}

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.inUse.delete(this.name);
  }
}
