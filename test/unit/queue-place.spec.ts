// QueuePlace: where a key stands in a lock's queue, from the reads of one transaction. Pure
// code: the responses are built here in etcd's shape (test/interop/ runs it against etcdctl).
import { describe, expect, it } from '@jest/globals';
import type { IKeyValue, ITxnResponse } from 'etcd3';
import { KindConflictError } from '../../lib/common/backend.errors.js';
import type { LockKind } from '../../lib/common/lock-kind.js';
import { queueKey, queuePrefix } from '../../lib/backends/etcd/lock-key.js';
import { QueuePlace } from '../../lib/backends/etcd/queue-place.js';

const QUEUE = queuePrefix('p/', 'pool');
const SEM: LockKind = { mode: 'semaphore', limit: 3 };
const kv = (key: string, created: number): IKeyValue => ({ key: Buffer.from(key), value: Buffer.from(''), create_revision: String(created), mod_revision: String(created), version: '1', lease: '0' });
const response = (...ranges: IKeyValue[][]): ITxnResponse => ({ responses: ranges.map(kvs => ({ response_range: { kvs } })) }) as unknown as ITxnResponse;
const recipeKey = (created: number) => kv(`${QUEUE}694d7f1e2b3c4d5e`, created); // etcd's lock recipe: `<name>/<lease hex>`

describe('QueuePlace', () => {
  it('a semaphore key refuses every key of another kind among those it counts, not only the newest', () => {
    const place = new QueuePlace(QUEUE, SEM);
    const ours = kv(queueKey(QUEUE, SEM, 'a1', 0), 12);
    // newest first: a semaphore key queued after a foreign holder (and about to leave), then the holder
    expect(() => place.blockerFrom(response([ours, kv(queueKey(QUEUE, SEM, 'b1', 0), 11), recipeKey(10)]), 0, true)).toThrow(KindConflictError);
    expect(place.blockerFrom(response([ours, kv(queueKey(QUEUE, SEM, 'b1', 0), 11)]), 0, true)).toBeNull(); // a place is free
  });

  it("a reader waits behind any key that is not a reader's: our writers and another client's keys alike", () => {
    const place = new QueuePlace(`${QUEUE}`, { mode: 'shared' });
    const reader = kv(queueKey(QUEUE, { mode: 'shared' }, 'a1', 0), 20);
    const writer = kv(queueKey(QUEUE, { mode: 'exclusive' }, 'b1', 0), 15);
    // reads: the newest keys, then the newest key in each range around the readers' keys
    const [before, after] = place.inTheWay;
    expect(before.to.toString()).toBe(`${QUEUE}r-`);
    expect(recipeKey(1).key.compare(before.to) < 0 && recipeKey(1).key.compare(before.from) >= 0).toBe(true); // lease hex sorts before "r-"
    expect(writer.key.compare(after.from) >= 0 && writer.key.compare(after.to) < 0).toBe(true);
    expect(place.blockerFrom(response([reader, recipeKey(18)], [recipeKey(18)], [writer]), 0, true)).toEqual({ key: recipeKey(18).key, wakeOnPut: false });
    expect(place.blockerFrom(response([reader, writer], [], [writer]), 0, true)).toEqual({ key: writer.key, wakeOnPut: false });
    expect(place.blockerFrom(response([reader, kv(queueKey(QUEUE, { mode: 'shared' }, 'c1', 0), 19)], [], []), 0, true)).toBeNull();
  });
});
