// The library's requests written with bare etcd3 calls and nothing else: no handle, no session
// checks, no retries, no events. They run in the same run, topology and load as the library,
// so their ratio to it is what the library itself adds (and what they reach is the most this
// machine gives those requests).
import { CompareResult, CompareTarget, type Etcd3, type ITxnRequest, type Lease } from 'etcd3';
import { createdAt, newestKeys, rangeAt } from '../../lib/backends/etcd/lock-key.js';
import { TxnBatcher } from '../../lib/backends/etcd/txn-batcher.js';

const VALUE = Buffer.from('{"host":"bench","pid":1}');
const leases = new WeakMap<Etcd3, Lease>();

/** One kept-alive lease per client for the bare keys, as the library keeps one per session. */
export function bareLease(client: Etcd3): Promise<string> {
  let lease = leases.get(client);
  if (!lease) leases.set(client, (lease = client.lease(30)));
  return lease.grant();
}

/** Revokes {@link bareLease}'s lease: its keys go with it. */
export async function revokeBareLease(client: Etcd3): Promise<void> {
  await leases.get(client)?.revoke();
  leases.delete(client);
}

/** The enqueue of an exclusive key: put it if absent, and read the newest key of its queue. */
export function enqueue(queue: Buffer, key: Buffer, lease: string): ITxnRequest {
  return {
    compare: [{ key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }],
    success: [{ request_put: { key, value: VALUE, lease } }, newestKeys(queue, 2)],
    failure: [{ request_range: { key } }, newestKeys(queue, 1)],
  };
}

/** The release of a key created at `token`: delete it only if it is still that key. */
export function guardedDelete(key: Buffer, token: bigint): ITxnRequest {
  return { compare: [createdAt(key, token)], success: [{ request_delete_range: { key } }], failure: [] };
}

/** Case 2's baseline: an acquire + release of a free lock as the library sends them (through its group commit), with nothing around them. */
export function bareGroupCommitCycle(client: Etcd3): (name: string) => Promise<void> {
  const batcher = new TxnBatcher(client);
  const leased = bareLease(client);
  return async name => {
    const lease = await leased;
    const queue = Buffer.from(`${name}/`);
    const key = Buffer.from(`${name}/x-${lease}-0`);
    const res = await batcher.txn(name, enqueue(queue, key, lease));
    await batcher.txn(name, guardedDelete(key, BigInt(res.header.revision)));
  };
}

/**
 * Case 3's baseline: the library's FIFO protocol with bare etcd3 calls. Enqueue (one Txn);
 * while a key is ahead, watch it from the revision read, and on its deletion read again;
 * release with a guarded delete. Token: the key's create revision.
 */
export async function bareFifoAcquire(client: Etcd3, name: string, who: string): Promise<{ token: bigint; release(): Promise<unknown> }> {
  const lease = await bareLease(client);
  const queue = Buffer.from(`${name}/`);
  const key = Buffer.from(`${name}/x-${who}`);
  const res = await client.kv.txn(enqueue(queue, key, lease));
  const token = BigInt(res.header.revision);
  let seenAt = token;
  let ahead = rangeAt(res, 1)[1]?.key; // newest first: ours, then the one ahead
  while (ahead) {
    const watcher = await client.watch().key(ahead).startRevision(String(seenAt + 1n)).only('delete').create();
    await new Promise(resolve => watcher.once('delete', resolve));
    void watcher.cancel(); // the read goes first
    const read = await client.kv.txn({ compare: [], success: [newestKeys(queue, 1, token)], failure: [] });
    seenAt = BigInt(read.header.revision);
    ahead = rangeAt(read, 0)[0]?.key;
  }
  return { token, release: () => client.kv.txn(guardedDelete(key, token)) };
}
