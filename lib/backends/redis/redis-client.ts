import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { untilAnswered } from '../../util/retry.js';

/** A client of one Redis, or of a Redis Cluster. */
export type RedisClient = Redis | Cluster;

const shas = new Map<string, string>();

/**
 * Runs a script by its SHA1 (EVALSHA), sending its text only when Redis does not know it yet
 * (after a restart, say). KEYS[1] routes the call.
 */
export async function runScript(client: RedisClient, script: string, key: string, args: (string | number)[]): Promise<unknown> {
  let sha = shas.get(script);
  if (!sha) shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
  try {
    return await client.evalsha(sha, 1, key, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return client.eval(script, 1, key, ...args);
  }
}

/**
 * The hash tag of a namespace: every key of it lands in one Cluster slot. Braces in the
 * prefix would end the tag early, so they are escaped.
 */
export function namespaceOf(prefix: string): string {
  return `{${prefix.replace(/%/g, '%25').replace(/\{/g, '%7B').replace(/\}/g, '%7D')}}:`;
}

/** Redis did not answer (down, restarting, loading, a failover under way): worth another try. */
export function isRedisUnreachable(err: unknown): boolean {
  return err instanceof Error && /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|Stream isn't writeable|max retries per request|LOADING|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY/i.test(err.message);
}

/** A script call retried while Redis does not answer. */
export function untilRedisAnswers<T>(signal: AbortSignal, request: () => Promise<T>): Promise<T> {
  return untilAnswered(signal, request, isRedisUnreachable);
}
