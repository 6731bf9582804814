import { hostname } from 'node:os';

/**
 * What a queue key's value says about who put it there, as JSON readable with etcdctl:
 * the service's owner id, its host and pid, when it queued and, once it holds the lock after
 * waiting, when it got it. `forcedBy` marks a key an operator is about to force-unlock.
 */
export interface OwnerRecord {
  owner: string;
  host: string;
  pid: number;
  /** ms since the epoch */
  queuedAt: number;
  /** ms since the epoch; written by a holder that waited, once it has held the lock 100 ms (a key that held at once got it at queuedAt) */
  acquiredAt?: number;
  forcedBy?: string;
  /** A key this library did not write: another etcd client's lock (`etcdctl lock`, Go's concurrency.Mutex, etcd's Lock service) or a tool's. */
  foreign?: true;
}

/** The owner shown for a foreign key with no value (etcd's lock recipe writes none). */
export const FOREIGN_OWNER = '(another etcd client)';

// read once: os.hostname() is a system call, and an acquire is a hot path
let host: string | undefined;

/** A record for a key queued now by this process. */
export function ownerRecord(owner: string): OwnerRecord {
  return { owner, host: (host ??= hostname()), pid: process.pid, queuedAt: Date.now() };
}

export function encodeOwner(record: OwnerRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

/**
 * Reads a key's value. A value that is not ours (another etcd client's lock, a tool's) makes a
 * foreign record: its text is the owner, or FOREIGN_OWNER when empty; host, pid and time unknown.
 */
export function decodeOwner(value: Buffer): OwnerRecord {
  try {
    const record = JSON.parse(value.toString()) as Partial<OwnerRecord>;
    if (typeof record.owner === 'string' && typeof record.queuedAt === 'number') return record as OwnerRecord;
  } catch {
    // not JSON
  }
  return { owner: value.toString() || FOREIGN_OWNER, host: '', pid: 0, queuedAt: 0, foreign: true };
}
