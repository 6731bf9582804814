/**
 * How often a session renews its lease (etcd) or its key (Redis). The deadline counts from the send time of the last
 * acknowledged keepalive, so an outage that starts just before the next one is due has only
 * TTL − margin − interval left: keeping alive every 0.15 × TTL − margin (0.5 s at TTL 10,
 * 0.1 s at TTL 2) lets a session ride out an outage of 0.8 × TTL with 0.05 × TTL to spare for
 * the answer, where etcd's TTL / 3 would lose it after 0.57 × TTL. Each is one small message
 * on the session's stream, no Raft write; never less often than TTL / 3.
 */
export function keepAliveInterval(ttlMs: number, marginMs: number): number {
  return Math.min(ttlMs / 3, Math.max(50, 0.15 * ttlMs - marginMs));
}
