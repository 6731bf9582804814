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
}

// read once: os.hostname() is a system call, and an acquire is a hot path
let host: string | undefined;

/** A record for a key queued now by this process. */
export function ownerRecord(owner: string): OwnerRecord {
  return { owner, host: (host ??= hostname()), pid: process.pid, queuedAt: Date.now() };
}

export function encodeOwner(record: OwnerRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

/** Reads a key's value; a value that is not ours (another tool's, an older version's) is its owner id. */
export function decodeOwner(value: Buffer): OwnerRecord {
  try {
    const record = JSON.parse(value.toString()) as Partial<OwnerRecord>;
    if (typeof record.owner === 'string' && typeof record.queuedAt === 'number') return record as OwnerRecord;
  } catch {
    // not JSON
  }
  return { owner: value.toString(), host: '', pid: 0, queuedAt: 0 };
}
