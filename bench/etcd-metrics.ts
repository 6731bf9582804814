import type { EtcdHandle } from '../harness/etcd.js';
import { metric } from '../harness/etcd-metrics.js';

/** The etcd counters a lock operation costs, read from etcd's own /metrics (exact where times are noisy). */
export interface EtcdCounters {
  unary: number; // unary gRPC calls handled
  txn: number;
  range: number;
  put: number;
  deleteRange: number;
  leaseGrant: number;
  leaseRevoke: number;
  streams: number; // bidi streams opened (watch, keepalive)
  watchEvents: number; // events sent to watchers
  watchRequests: number; // messages received on watch streams (watch creates and cancels)
  cpuSeconds: number; // CPU time etcd's process has used (its process collector)
}

export async function readCounters(etcd: EtcdHandle): Promise<EtcdCounters> {
  const text = await etcd.metrics();
  const method = (m: string) => metric(text, 'grpc_server_handled_total', { grpc_method: m });
  return {
    unary: metric(text, 'grpc_server_handled_total', { grpc_type: 'unary' }),
    txn: method('Txn'),
    range: method('Range'),
    put: method('Put'),
    deleteRange: method('DeleteRange'),
    leaseGrant: method('LeaseGrant'),
    leaseRevoke: method('LeaseRevoke'),
    streams: metric(text, 'grpc_server_started_total', { grpc_type: 'bidi_stream' }),
    watchEvents: metric(text, 'etcd_debugging_mvcc_events_total', {}),
    watchRequests: metric(text, 'grpc_server_msg_received_total', { grpc_method: 'Watch' }),
    cpuSeconds: metric(text, 'process_cpu_seconds_total', {}),
  };
}

/** Counters spent between two readings, divided by the number of operations. */
export function perOperation(before: EtcdCounters, after: EtcdCounters, operations: number): EtcdCounters {
  const out = {} as EtcdCounters;
  for (const key of Object.keys(before) as (keyof EtcdCounters)[]) out[key] = (after[key] - before[key]) / operations;
  return out;
}
