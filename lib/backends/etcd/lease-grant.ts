import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { GRPCDeadlineExceededError, isRecoverableError, type Etcd3 } from 'etcd3';
import { configurationProblem } from './etcd-errors.js';
import { retryWithBackoff } from '../../util/retry.js';

/** A lease etcd granted: its id, the TTL it gave (s), and when the grant was sent (monotonic ms). */
export interface GrantedLease {
  id: string;
  ttl: number;
  sentAt: number;
}

/**
 * Grants a lease with an id chosen here, so a grant retried after an unknown outcome cannot
 * leak a second lease. While etcd does not answer (down, starting, a connection dropped
 * before it said why), it tries again with the same id until `timeoutMs` has passed; a
 * refusal (credentials, certificates) ends it at once. etcd raises a TTL below its minimum
 * without saying so: the caller compares `ttl` with what it asked for.
 */
export async function grantLease(client: Etcd3, ttl: number, timeoutMs: number): Promise<GrantedLease> {
  const id = (randomBytes(8).readBigUInt64BE() >> 2n).toString(); // 62 bits: a positive int64
  const deadline = performance.now() + timeoutMs;
  const firstSentAt = performance.now();
  const remaining = () => Date.now() + Math.max(1, deadline - performance.now());
  // the last failure that says why: a try cut short by the deadline ('waiting for name resolution') does not,
  // nor grpc-js's 'No connection established. Last error: null' (a pick made before the connection's failure was recorded)
  let reason: unknown;
  const saysWhy = (err: unknown) => !(err instanceof GRPCDeadlineExceededError) && !/Last error: null/.test(String((err as Error)?.message));
  const grant = async (): Promise<GrantedLease> => {
    const sentAt = performance.now();
    try {
      const res = await client.leaseClient.leaseGrant({ ID: id, TTL: ttl }, { deadline: remaining() });
      return { id, ttl: Number(res.TTL), sentAt };
    } catch (err) {
      if (!String((err as Error)?.message).includes('lease already exists')) throw err;
      // an earlier try of this same grant succeeded: read what was granted; it counts from the first try
      const res = await client.leaseClient.leaseTimeToLive({ ID: id }, { deadline: remaining() });
      return { id, ttl: Number(res.grantedTTL), sentAt: firstSentAt };
    }
  };
  return retryWithBackoff(
    async () => {
      if (reason !== undefined && performance.now() >= deadline) throw reason; // a try now would only be cut short
      try {
        return await grant();
      } catch (err) {
        if (reason === undefined || saysWhy(err)) reason = err;
        throw err;
      }
    },
    {
      initialMs: 50,
      maxMs: 500,
      retryIf: err => performance.now() < deadline && err instanceof Error && isRecoverableError(err) && !configurationProblem(err, '', ''),
    },
  ).catch((err: unknown) => {
    throw reason ?? err;
  });
}
