/**
 * What one queue key asks for: the lock alone (a writer), a share of it with other readers,
 * or one of a semaphore's `limit` places. The kind is written into the key's name, so a
 * keys-only read tells who waits for what.
 */
export type LockKind =
  | { readonly mode: 'exclusive' }
  | { readonly mode: 'shared' }
  | { readonly mode: 'semaphore'; readonly limit: number };

export const EXCLUSIVE: LockKind = { mode: 'exclusive' };
export const SHARED: LockKind = { mode: 'shared' };

/**
 * The tag that starts the last segment of a queue key, before `-<lease hex>-<slot>`: `x`
 * (exclusive), `r` (shared) or `s<limit>` (semaphore). Writers share the `x-` prefix, so a
 * reader finds the newest writer ahead of it with one range read.
 */
export function kindTag(kind: LockKind): string {
  if (kind.mode === 'semaphore') return `s${kind.limit}`;
  return kind.mode === 'exclusive' ? 'x' : 'r';
}

/** The kind of a queue key, from its name (`<queue prefix><tag>-…`); undefined if it has none we know. */
export function kindOfKey(key: Buffer, queuePrefixLength: number): LockKind | undefined {
  const segment = key.subarray(queuePrefixLength).toString();
  return kindOfTag(segment.slice(0, segment.indexOf('-')));
}

/** The kind a tag of {@link kindTag} stands for; undefined if it is none. */
export function kindOfTag(tag: string): LockKind | undefined {
  if (tag === 'x') return EXCLUSIVE;
  if (tag === 'r') return SHARED;
  const limit = /^s([1-9]\d*)$/.exec(tag)?.[1];
  return limit ? { mode: 'semaphore', limit: Number(limit) } : undefined;
}

/** Readers and writers queue together on one name; a semaphore only with its own limit. */
export function canQueueTogether(a: LockKind, b: LockKind): boolean {
  if (a.mode === 'semaphore' || b.mode === 'semaphore') return kindTag(a) === kindTag(b);
  return true;
}

/** Whether a context holding `outer` may re-enter it for `inner`: an exclusive hold covers a shared one. */
export function covers(outer: LockKind, inner: LockKind): boolean {
  return kindTag(outer) === kindTag(inner) || (outer.mode === 'exclusive' && inner.mode === 'shared');
}

/** "an exclusive lock", "a shared lock", "a semaphore with limit 3": for error messages. */
export function describeKind(kind: LockKind): string {
  if (kind.mode === 'semaphore') return `a semaphore with limit ${kind.limit}`;
  return kind.mode === 'exclusive' ? 'an exclusive lock' : 'a shared lock';
}

/** How many entries at the front of a queue hold the lock, from their kinds in queue order. */
export function holdingCount(kinds: readonly LockKind[]): number {
  const first = kinds[0];
  if (!first) return 0;
  if (first.mode === 'semaphore') {
    const other = kinds.findIndex(kind => kindTag(kind) !== kindTag(first)); // another client's key waits for every place to be free
    return Math.min(first.limit, other === -1 ? kinds.length : other);
  }
  if (first.mode === 'exclusive') return 1;
  const writer = kinds.findIndex(kind => kind.mode !== 'shared');
  return writer === -1 ? kinds.length : writer; // the readers ahead of the first writer
}
