import { CompareResult, CompareTarget, SortOrder, SortTarget, type ICompare, type IKeyValue, type IRequestOp, type ITxnResponse } from 'etcd3';
import { kindTag, type LockKind } from '../../common/lock-kind.js';

/**
 * Encodes a lock name for use as one etcd path segment. Escaping "%" first and then "/"
 * makes the encoding injective and keeps every name's queue inside its own prefix:
 * "a" owns "a/…" and "a/b" becomes "a%2Fb", so no name can reach another's queue.
 */
export function encodeLockKey(key: string): string {
  return key.replace(/%/g, '%25').replace(/\//g, '%2F');
}

/** The inverse of {@link encodeLockKey}. */
export function decodeLockKey(segment: string): string {
  return segment.replace(/%2F/g, '/').replace(/%25/g, '%');
}

/** The etcd prefix under which every contender for `key` puts its queue entry. */
export function queuePrefix(prefix: string, key: string): string {
  return `${prefix}${encodeLockKey(key)}/`;
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all 0xff: range to the end of the keyspace
}

/** The name of one attempt's queue key: `<queue prefix><kind tag>-<lease hex>-<slot>`. */
export function queueKey(queuePrefix: string, kind: LockKind, leaseHex: string, slot: number): string {
  return `${queuePrefix}${kindTag(kind)}-${leaseHex}-${slot.toString(16)}`;
}

/**
 * Where unfair waiters of a lock line up: `<prefix><encoded name>%u/`, beside its queue and
 * outside it. No encoded name contains `%u` (a `%` is always escaped as `%25`), so this
 * prefix is no lock's queue.
 */
export function waitingRoomPrefix(queuePrefix: string): string {
  return `${queuePrefix.slice(0, -1)}%u/`;
}

/** The name of an unfair waiter's key in the waiting room: `<room prefix><lease hex>-<slot>`. */
export function waitingRoomKey(queuePrefix: string, leaseHex: string, slot: number): string {
  return `${waitingRoomPrefix(queuePrefix)}${leaseHex}-${slot.toString(16)}`;
}

/** A read of the newest `limit` key names under `prefix` (created before `before`, if given), newest first. */
export function newestKeys(prefix: Buffer, limit: number, before?: bigint): IRequestOp {
  return newestKeysIn({ from: prefix, to: prefixEnd(prefix) }, limit, before);
}

/** A range of keys: from `from`, up to but not including `to`. */
export interface KeyRange {
  readonly from: Buffer;
  readonly to: Buffer;
}

/** {@link newestKeys} of a range. */
export function newestKeysIn(range: KeyRange, limit: number, before?: bigint): IRequestOp {
  return {
    request_range: {
      key: range.from,
      range_end: range.to,
      sort_order: SortOrder.Descend,
      sort_target: SortTarget.Create,
      limit,
      keys_only: true,
      ...(before !== undefined && { max_create_revision: (before - 1n).toString() }),
    },
  };
}

/**
 * The key that marks a lease as ours, put on that lease: `<prefix>\0lease/<lease hex>`. etcd
 * deletes it with the lease's other keys in one revision when the lease ends (expiry, or a
 * revoke after a loss), so a watcher tells a holder whose lease ran out from one that
 * released: a release deletes the holder key alone. `\0` starts no lock name.
 */
export function leaseMarkerKey(prefix: string, leaseHex: string): string {
  return `${prefix}\u0000lease/${leaseHex}`;
}

/** What a key under the lock prefix is: a queue key of a lock, an unfair waiter's, a lease marker, or none of ours. */
export type LockPrefixKey =
  | { readonly type: 'queue'; readonly name: string; readonly queuePrefixLength: number; readonly leaseHex: string }
  | { readonly type: 'room'; readonly name: string }
  | { readonly type: 'lease-marker'; readonly leaseHex: string };

/** Reads a key under `prefix` (see {@link queueKey}, {@link waitingRoomKey}, {@link leaseMarkerKey}). */
export function parseLockPrefixKey(prefix: string, key: string): LockPrefixKey | undefined {
  const rest = key.slice(prefix.length);
  const marker = '\u0000lease/';
  if (rest.startsWith(marker)) return { type: 'lease-marker', leaseHex: rest.slice(marker.length) };
  const slash = rest.lastIndexOf('/');
  if (rest.startsWith('\u0000') || slash < 1) return undefined; // the library's other internal keys
  const segment = rest.slice(0, slash);
  if (segment.endsWith('%u')) return { type: 'room', name: decodeLockKey(segment.slice(0, -2)) };
  // <kind tag>-<lease hex>-<slot>
  return { type: 'queue', name: decodeLockKey(segment), queuePrefixLength: prefix.length + slash + 1, leaseHex: rest.slice(slash + 1).split('-')[1] ?? '' };
}

/**
 * `If CreateRevision(key) == revision`: the key is still the one created at `revision` (a
 * lock's token), never a newer one of the same name. Guards every write to a held key.
 */
export function createdAt(key: Buffer, revision: bigint): ICompare {
  return { key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: revision.toString() };
}

/** The keys a range in a transaction's results returned. */
export function rangeAt(res: ITxnResponse, index: number): IKeyValue[] {
  return res.responses[index]?.response_range?.kvs ?? [];
}
