/**
 * The names of one session's queue keys, reused: `<lease hex>-<slot>`, the smallest slot no
 * attempt of the session is using for that lock. A fresh name per acquisition would leave one
 * more deleted key in etcd's index until etcd is compacted, and every acquire of the lock
 * scans them all (measured: 50,000 past acquisitions made a cycle 5 x slower).
 *
 * Reuse is safe because a release is guarded by the key's create revision: a late release
 * never deletes a newer key of the same name. A slot is given back only after a clean
 * release, or a try that wrote nothing; an attempt that failed or was aborted keeps its slot,
 * so that no put still in flight can land on a name in use again.
 */
export class QueueSlots {
  private readonly inUse = new Map<string, Set<number>>();

  claim(name: string): number {
    let slots = this.inUse.get(name);
    if (!slots) this.inUse.set(name, (slots = new Set()));
    let slot = 0;
    while (slots.has(slot)) slot++;
    slots.add(slot);
    return slot;
  }

  free(name: string, slot: number): void {
    const slots = this.inUse.get(name);
    slots?.delete(slot);
    if (slots?.size === 0) this.inUse.delete(name);
  }
}
