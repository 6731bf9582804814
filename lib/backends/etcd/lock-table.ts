import type { IKeyValue } from 'etcd3';
import type { LockChange } from '../../interfaces/lock-backend.interface.js';
import { EXCLUSIVE, holdingCount, kindOfKey, type LockKind } from '../../common/lock-kind.js';
import { parseLockPrefixKey } from './lock-key.js';
import { decodeOwner } from '../../common/owner-record.js';

/** One queue key, as the table knows it. */
interface QueuedKey {
  readonly etcdKey: string;
  /** create revision */
  readonly token: bigint;
  readonly kind: LockKind;
  readonly sessionLease: string;
  /** hex of the lease the key is on now (a hard-TTL lock's own, once moved) */
  lease: string;
  owner: string;
  forced: boolean;
  /** ms since the epoch when this table saw it start holding: a handoff seen live */
  seenTakenAt?: number;
  /**
   * ms since the epoch when the holder took it, by its own record (acquired-at, or queued-at
   * for a key that held at once; the holder's clock): for a holder that was already holding
   * when this table first saw it, e.g. before a `watch` started. 0: unknown (not our record).
   */
  recordedTakenAt: number;
  /** ms since the epoch when it queued, by its record (the holder's clock); 0: unknown */
  queuedAt: number;
}

/**
 * An in-memory copy of the lock queues under a prefix (those whose name starts with
 * `namePrefix`), kept by applying etcd's changes one revision at a time; each step reports
 * which holders came and went. Pure: the watch that feeds it lives in cluster-watch.ts.
 */
export class LockTable {
  private readonly queues = new Map<string, QueuedKey[]>();
  /** Leases (hex) whose marker key exists. */
  private readonly liveLeases = new Set<string>();

  constructor(
    private readonly prefix: string,
    private readonly namePrefix = '',
  ) {}

  /**
   * Applies the changes of ONE revision (all of a transaction's, or of a lease's end, come in
   * one). A holder whose key went in the same revision as its lease's marker expired.
   */
  apply(events: ReadonlyArray<{ readonly type: 'put' | 'delete'; readonly kv: IKeyValue }>): LockChange[] {
    const before = new Map<string, QueuedKey[]>();
    const endedLeases = new Set<string>();
    for (const { type, kv } of events) {
      const parsed = parseLockPrefixKey(this.prefix, kv.key.toString());
      if (parsed?.type === 'lease-marker') {
        if (type === 'put') this.liveLeases.add(parsed.leaseHex);
        else if (this.liveLeases.delete(parsed.leaseHex)) endedLeases.add(parsed.leaseHex);
      }
      if (parsed?.type !== 'queue' || !parsed.name.startsWith(this.namePrefix)) continue;
      if (!before.has(parsed.name)) before.set(parsed.name, this.holders(parsed.name));
      const queue = this.queues.get(parsed.name) ?? [];
      const at = queue.findIndex(entry => entry.etcdKey === kv.key.toString());
      if (type === 'delete') {
        if (at !== -1) queue.splice(at, 1);
      } else if (at !== -1 && queue[at].token === BigInt(kv.create_revision)) {
        update(queue[at], kv); // a re-put: the same key and place (acquired-at, a move to its own lease, a force-unlock mark)
      } else {
        if (at !== -1) queue.splice(at, 1);
        insertByToken(queue, entry(kv, parsed.queuePrefixLength, parsed.leaseHex));
      }
      if (queue.length > 0) this.queues.set(parsed.name, queue);
      else this.queues.delete(parsed.name);
    }
    return this.changes(before, lease => endedLeases.has(lease));
  }

  /**
   * Replaces the copy with a fresh read of the prefix (after etcd compacted the revisions a
   * watch would have resumed from) and reports the difference. Without the revisions between,
   * a holder that is gone expired if its lease's marker is gone too, else it released (or
   * its process closed gracefully after a release: that reads as expired). Initial load: `report` false.
   */
  reset(kvs: readonly IKeyValue[], report: boolean): LockChange[] {
    const before = new Map<string, QueuedKey[]>([...this.queues.keys()].map(name => [name, this.holders(name)]));
    const seen = new Map<string, QueuedKey>([...before.values()].flat().map(e => [identity(e), e]));
    this.queues.clear();
    this.liveLeases.clear();
    for (const kv of [...kvs].sort((a, b) => Number(BigInt(a.create_revision) - BigInt(b.create_revision)))) {
      const parsed = parseLockPrefixKey(this.prefix, kv.key.toString());
      if (parsed?.type === 'lease-marker') this.liveLeases.add(parsed.leaseHex);
      if (parsed?.type !== 'queue' || !parsed.name.startsWith(this.namePrefix)) continue;
      const fresh = entry(kv, parsed.queuePrefixLength, parsed.leaseHex);
      fresh.seenTakenAt = seen.get(identity(fresh))?.seenTakenAt;
      const queue = this.queues.get(parsed.name) ?? [];
      queue.push(fresh);
      this.queues.set(parsed.name, queue);
      if (!before.has(parsed.name)) before.set(parsed.name, []);
    }
    // holders that came while the watch was away: their records tell when they took it
    const changes = this.changes(before, lease => !this.liveLeases.has(lease), false);
    return report ? changes : [];
  }

  /** The keys of `name` that hold it now. */
  private holders(name: string): QueuedKey[] {
    const queue = this.queues.get(name) ?? [];
    return queue.slice(0, holdingCount(queue.map(e => e.kind)));
  }

  /** Holders that left, then holders that came (`live`: just now, else at a time their record tells), per lock touched. */
  private changes(before: Map<string, QueuedKey[]>, leaseEnded: (leaseHex: string) => boolean, live = true): LockChange[] {
    const changes: LockChange[] = [];
    const now = Date.now();
    for (const [name, previous] of before) {
      const current = this.holders(name);
      const stillHolding = new Set(current.map(identity));
      const heldBefore = new Set(previous.map(identity));
      for (const gone of previous.filter(e => !stillHolding.has(identity(e)))) {
        const takenAt = gone.seenTakenAt ?? (gone.recordedTakenAt || undefined);
        const heldMs = takenAt === undefined ? undefined : Math.max(0, now - takenAt);
        const base = { key: name, owner: gone.owner, token: gone.token, session: gone.sessionLease, ...(heldMs !== undefined && { heldMs }) };
        if (gone.forced) changes.push({ ...base, type: 'lost', reason: 'forced' });
        else if (leaseEnded(gone.lease)) changes.push({ ...base, type: 'expired', reason: gone.lease === gone.sessionLease ? 'session-expired' : 'ttl-expired' });
        else changes.push({ ...base, type: 'released' });
      }
      for (const came of current.filter(e => !heldBefore.has(identity(e)))) {
        if (live) came.seenTakenAt = now;
        // seen live, the wait is from its queued-at to now; a holder found by a read took the lock at an unknown time
        const waitedMs = live && came.queuedAt > 0 ? Math.max(0, now - came.queuedAt) : undefined;
        changes.push({ type: 'acquired', key: name, owner: came.owner, token: came.token, session: came.sessionLease, ...(waitedMs !== undefined && { waitedMs }) });
      }
    }
    return changes;
  }
}

function identity(entry: QueuedKey): string {
  return `${entry.etcdKey}@${entry.token}`;
}

function entry(kv: IKeyValue, queuePrefixLength: number, sessionLease: string): QueuedKey {
  const fresh: QueuedKey = {
    etcdKey: kv.key.toString(),
    token: BigInt(kv.create_revision),
    kind: kindOfKey(kv.key, queuePrefixLength) ?? EXCLUSIVE,
    sessionLease,
    lease: '',
    owner: '',
    forced: false,
    recordedTakenAt: 0,
    queuedAt: 0,
  };
  update(fresh, kv);
  return fresh;
}

function update(target: QueuedKey, kv: IKeyValue): void {
  const record = decodeOwner(kv.value);
  target.lease = BigInt(kv.lease).toString(16);
  target.owner = record.owner;
  target.forced = record.forcedBy !== undefined;
  target.recordedTakenAt = record.acquiredAt ?? record.queuedAt; // a holder that waited records acquired-at 100 ms in: a re-put
  target.queuedAt = record.queuedAt;
}

/** Keeps a queue in create-revision order (a new key is nearly always the newest). */
function insertByToken(queue: QueuedKey[], fresh: QueuedKey): void {
  let at = queue.length;
  while (at > 0 && queue[at - 1].token > fresh.token) at--;
  queue.splice(at, 0, fresh);
}
