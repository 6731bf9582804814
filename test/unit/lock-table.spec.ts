// LockTable: the in-memory copy of the queues that the cluster-wide watch keeps. Pure code:
// the key-values are built here in etcd's shape (the watch itself is tested against a real
// etcd in test/cluster-watch.spec.ts).
import { describe, expect, it } from '@jest/globals';
import type { IKeyValue } from 'etcd3';
import { leaseMarkerKey, queueKey, queuePrefix } from '../../lib/backends/etcd/lock-key.js';
import type { LockChange } from '../../lib/interfaces/lock-backend.interface.js';
import { LockTable } from '../../lib/backends/etcd/lock-table.js';
import type { LockKind } from '../../lib/common/lock-kind.js';

const PREFIX = 'p/';
let revision = 100;

/** A queue key of `name` for session lease `lease` (hex), created now, on `onLease` (default: the session's). */
function key(name: string, kind: LockKind, lease: string, record: object = { owner: `owner-${lease}`, host: 'h', pid: 1, queuedAt: 0 }, onLease = lease): IKeyValue {
  revision++;
  return kv(queueKey(queuePrefix(PREFIX, name), kind, lease, 0), JSON.stringify(record), revision, onLease);
}

function kv(etcdKey: string, value: string, created: number, lease: string): IKeyValue {
  return { key: Buffer.from(etcdKey), value: Buffer.from(value), create_revision: String(created), mod_revision: String(revision), version: '1', lease: BigInt(`0x${lease}`).toString() };
}

const marker = (lease: string) => kv(leaseMarkerKey(PREFIX, lease), '{}', ++revision, lease);
const put = (k: IKeyValue) => ({ type: 'put' as const, kv: k });
const del = (k: IKeyValue) => ({ type: 'delete' as const, kv: k });
const brief = (changes: LockChange[]) => changes.map(c => `${c.type} ${c.key} ${c.owner}${c.reason ? ` ${c.reason}` : ''}`);

const X: LockKind = { mode: 'exclusive' };
const R: LockKind = { mode: 'shared' };

describe('LockTable', () => {
  it('reports an exclusive lock passing from holder to waiter, and nothing for a waiter joining', () => {
    const table = new LockTable(PREFIX);
    const a = key('order:1', X, 'a1');
    const b = key('order:1', X, 'b1');
    expect(brief(table.apply([put(a)]))).toEqual(['acquired order:1 owner-a1']);
    expect(brief(table.apply([put(b)]))).toEqual([]);
    expect(brief(table.apply([del(a)]))).toEqual(['released order:1 owner-a1', 'acquired order:1 owner-b1']);
    expect(brief(table.apply([del(b)]))).toEqual(['released order:1 owner-b1']);
  });

  it('follows readers and writers: readers hold together, the writer after the last of them', () => {
    const table = new LockTable(PREFIX);
    const [r1, r2, w] = [key('doc', R, 'a1'), key('doc', R, 'b1'), key('doc', X, 'c1')];
    expect(brief(table.apply([put(r1)]).concat(table.apply([put(r2)]), table.apply([put(w)])))).toEqual(['acquired doc owner-a1', 'acquired doc owner-b1']);
    expect(brief(table.apply([del(r1)]))).toEqual(['released doc owner-a1']);
    expect(brief(table.apply([del(r2)]))).toEqual(['released doc owner-b1', 'acquired doc owner-c1']);
  });

  it('follows a semaphore: the first `limit` keys hold', () => {
    const table = new LockTable(PREFIX);
    const s: LockKind = { mode: 'semaphore', limit: 2 };
    const [a, b, c] = [key('pool', s, 'a1'), key('pool', s, 'b1'), key('pool', s, 'c1')];
    expect(brief([a, b, c].flatMap(k => table.apply([put(k)])))).toEqual(['acquired pool owner-a1', 'acquired pool owner-b1']);
    expect(brief(table.apply([del(b)]))).toEqual(['released pool owner-b1', 'acquired pool owner-c1']);
  });

  it("takes another etcd client's key (etcd's lock recipe: `<name>/<lease hex>`, empty value) for an exclusive one: it holds alone, and waits for every semaphore place", () => {
    const table = new LockTable(PREFIX);
    const s: LockKind = { mode: 'semaphore', limit: 3 };
    const [a, b] = [key('pool', s, 'a1'), key('pool', s, 'b1')];
    const recipe = kv(`${queuePrefix(PREFIX, 'pool')}694d7f1e2b3c4d5e`, '', ++revision, '694d7f1e2b3c4d5e');
    const c = key('pool', s, 'c1');
    expect(brief([a, b, recipe, c].flatMap(k => table.apply([put(k)])))).toEqual(['acquired pool owner-a1', 'acquired pool owner-b1']);
    expect(brief(table.apply([del(a)]))).toEqual(['released pool owner-a1']);
    expect(brief(table.apply([del(b)]))).toEqual(['released pool owner-b1', 'acquired pool (another etcd client)']);
    expect(brief(table.apply([del(recipe)]))).toEqual(['released pool (another etcd client)', 'acquired pool owner-c1']);
  });

  it('tells an expiry (the key goes with its lease marker, in one revision) from a release and a force-unlock', () => {
    const table = new LockTable(PREFIX);
    table.apply([put(marker('a1'))]);
    table.apply([put(marker('b2'))]);
    const a = key('job:1', X, 'a1');
    const hard = key('job:2', X, 'a1', undefined, 'b2'); // a hard-TTL lock, moved onto its own lease b2
    const forced = key('job:3', X, 'a1');
    table.apply([put(a)]);
    table.apply([put(hard)]);
    table.apply([put(forced)]);
    const marked = kv(forced.key.toString(), JSON.stringify({ owner: 'owner-a1', host: 'h', pid: 1, queuedAt: 0, forcedBy: 'op' }), Number(forced.create_revision), 'a1');
    expect(table.apply([put(marked)])).toEqual([]); // a re-put of a holder is no change
    expect(brief(table.apply([del(marked)]))).toEqual(['lost job:3 owner-a1 forced']);
    expect(brief(table.apply([del(hard), del(marker('b2'))]))).toEqual(['expired job:2 owner-a1 ttl-expired']);
    expect(brief(table.apply([del(a)]))).toEqual(['released job:1 owner-a1']);
    const again = key('job:1', X, 'a1');
    table.apply([put(again)]);
    expect(brief(table.apply([del(again), del(marker('a1'))]))).toEqual(['expired job:1 owner-a1 session-expired']);
  });

  it('keeps only the locks under its name prefix, and ignores waiting rooms and foreign keys', () => {
    const table = new LockTable(PREFIX, 'order:');
    expect(table.apply([put(key('invoice:1', X, 'a1'))])).toEqual([]);
    expect(table.apply([put(kv('p/order:1%u/a1-0', '{}', ++revision, 'a1')), put(kv('p/\u0000idle', '', ++revision, 'a1'))])).toEqual([]);
    expect(brief(table.apply([put(key('order:1', X, 'a1'))]))).toEqual(['acquired order:1 owner-a1']);
  });

  it('counts heldMs from when the holder took the lock, also for holders that held before the table first read them', () => {
    const table = new LockTable(PREFIX);
    const now = Date.now();
    const atOnce = key('a', X, 'a1', { owner: 'o', host: 'h', pid: 1, queuedAt: now - 5_000 }); // held at once: since it queued
    const waited = key('b', X, 'b1', { owner: 'o', host: 'h', pid: 1, queuedAt: now - 9_000, acquiredAt: now - 3_000 });
    const foreign = kv(queueKey(queuePrefix(PREFIX, 'c'), X, 'c1', 0), 'not a record', ++revision, 'c1');
    table.reset([atOnce, waited, foreign], false);
    const ended = table.apply([del(atOnce)]).concat(table.apply([del(waited)]), table.apply([del(foreign)]));
    const heldMs = Object.fromEntries(ended.map(c => [c.key, c.heldMs]));
    expect(heldMs.a).toBeGreaterThanOrEqual(5_000);
    expect(heldMs.a).toBeLessThan(6_000);
    expect(heldMs.b).toBeGreaterThanOrEqual(3_000);
    expect(heldMs.b).toBeLessThan(4_000);
    expect(heldMs.c).toBeUndefined(); // no record of ours: unknown, not 56 years
    // a handoff seen live counts from when the table saw it, whatever the record says
    const [first, second] = [key('d', X, 'd1'), key('d', X, 'e1', { owner: 'o', host: 'h', pid: 1, queuedAt: now - 60_000 })];
    table.apply([put(first)]);
    table.apply([put(second)]);
    table.apply([del(first)]);
    expect(table.apply([del(second)])[0].heldMs).toBeLessThan(1_000);
  });

  it('reports the difference after a fresh read: gone holders (expired when their lease marker is gone too) and new ones', () => {
    const table = new LockTable(PREFIX);
    const [a, b, c] = [key('a', X, 'a1'), key('b', X, 'b1'), key('c', X, 'c1')];
    expect(table.reset([marker('a1'), marker('b1'), a, b], false)).toEqual([]); // the first load reports nothing
    const changes = table.reset([marker('a1'), c, marker('c1')], true);
    expect(brief(changes)).toEqual(['released a owner-a1', 'expired b owner-b1 session-expired', 'acquired c owner-c1']);
    expect(table.reset([marker('a1'), c, marker('c1')], true)).toEqual([]); // nothing changed since
  });
});
