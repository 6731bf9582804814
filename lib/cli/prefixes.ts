import type { Etcd3 } from 'etcd3';
import { LockInspector } from '../backends/etcd/lock-inspector.js';

/** A lock prefix some process uses, and the names of the locks held under it. */
export interface PrefixInUse {
  readonly prefix: string;
  readonly held: string[];
}

/** Keys read per request, and at most in all: an etcd shared with other apps may be large. */
const PAGE = 1000;
const MAX_KEYS = 100_000;

const MARKER = '\u0000lease/';

/**
 * The lock prefixes in use in this etcd, found by their lease markers
 * (`<prefix>\0lease/<lease hex>`, see leaseMarkerKey: every session puts one), with the
 * locks held under each. For an operator whose `--prefix` finds nothing: an app configured
 * with `prefix: 'shop/'` is found instead of being reported as holding nothing. etcd has no
 * search by infix, so this reads key names (not values), a page at a time, up to 100,000.
 */
export async function findPrefixesInUse(client: Etcd3): Promise<{ prefixes: PrefixInUse[]; complete: boolean }> {
  const found = new Set<string>();
  let from = Buffer.from([0]);
  let read = 0;
  let complete = false;
  while (read < MAX_KEYS) {
    // the next page of key names, from the start of the keyspace (range_end \0: to its end)
    const res = await client.kv.range({ key: from, range_end: Buffer.from([0]), limit: PAGE, keys_only: true });
    read += res.kvs.length;
    for (const { key } of res.kvs) {
      const name = key.toString();
      const at = name.indexOf(MARKER);
      if (at > 0 && name[at - 1] === '/') found.add(name.slice(0, at)); // every prefix ends with "/"
    }
    if (!res.more || res.kvs.length === 0) {
      complete = true;
      break;
    }
    from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]); // just after the last key
  }
  const prefixes = await Promise.all(
    [...found].sort().map(async prefix => ({ prefix, held: (await new LockInspector(client, prefix).list()).map(info => info.key) })),
  );
  return { prefixes, complete };
}
