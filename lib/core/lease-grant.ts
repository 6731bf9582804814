import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Etcd3 } from 'etcd3';

/** A lease etcd granted: its id, the TTL it gave (s), and when the grant was sent (monotonic ms). */
export interface GrantedLease {
  id: string;
  ttl: number;
  sentAt: number;
}

/**
 * Grants a lease with an id chosen here, so a grant retried after an unknown outcome cannot
 * leak a second lease. etcd raises a TTL below its minimum without saying so: the caller
 * compares `ttl` with what it asked for.
 */
export async function grantLease(client: Etcd3, ttl: number, timeoutMs: number): Promise<GrantedLease> {
  const id = (randomBytes(8).readBigUInt64BE() >> 2n).toString(); // 62 bits: a positive int64
  const sentAt = performance.now();
  try {
    const res = await client.leaseClient.leaseGrant({ ID: id, TTL: ttl }, { deadline: Date.now() + timeoutMs });
    return { id, ttl: Number(res.TTL), sentAt };
  } catch (err) {
    if (!String((err as Error)?.message).includes('lease already exists')) throw err;
    // an earlier try of this same grant succeeded: read what was granted
    const res = await client.leaseClient.leaseTimeToLive({ ID: id }, { deadline: Date.now() + timeoutMs });
    return { id, ttl: Number(res.grantedTTL), sentAt };
  }
}
