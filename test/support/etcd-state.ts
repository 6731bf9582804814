import { expect } from '@jest/globals';
import type { Etcd3 } from 'etcd3';

/**
 * Asserts etcd holds no keys under `prefix` and no leases: what every test file must leave.
 * Leases of killed processes expire on etcd's clock, so this waits up to `graceMs` for them.
 */
export async function expectEtcdClean(client: Etcd3, prefix: string, graceMs = 5_000): Promise<void> {
  const until = Date.now() + graceMs;
  let leases: string[] = [];
  for (;;) {
    leases = (await client.leaseClient.leaseLeases()).leases.map(l => l.ID);
    if (leases.length === 0 || Date.now() > until) break;
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  expect(await client.getAll().prefix(prefix).keys()).toEqual([]);
  expect(leases).toEqual([]);
}

/**
 * The keys under `prefix` that belong to locks (queue and waiting-room keys), without the
 * lease marker each open session keeps (`<its prefix>\0lease/<lease>`, see leaseMarkerKey).
 */
export async function lockKeys(client: Etcd3, prefix: string): Promise<string[]> {
  return (await client.getAll().prefix(prefix).keys()).filter(key => !isInternalKey(key));
}

/** A key of the library's own (a lease marker, say): a NUL follows its prefix, and no lock name has one. */
export function isInternalKey(key: string | Buffer): boolean {
  return key.toString().includes('\u0000');
}

export { metric } from '../../harness/etcd-metrics.js';
