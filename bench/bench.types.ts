import type { EtcdHandle } from '../harness/etcd.js';
import type { RedisHandle } from '../harness/redis.js';
import type { EtcdCounters } from './etcd-metrics.js';

export interface BenchContext {
  readonly etcd: EtcdHandle;
  /** The Redis of the Redis cases (8–10). */
  readonly redis: RedisHandle;
  /** Short run on tiny sizes: the test suite runs it so the bench cannot rot. */
  readonly quick: boolean;
  progress(message: string): void;
}

/** One subject measured in a case: this library, or a baseline. */
export interface SubjectResult {
  subject: string;
  perSecond?: number;
  p50?: number; // ms
  p99?: number; // ms
  mean?: number; // ms
  rpc?: Partial<EtcdCounters>; // per operation
  note?: string;
}

/** A target of the issue, with what was measured and whether it was met. */
export interface TargetResult {
  target: string;
  measured: string;
  met: boolean;
}

export interface CaseResult {
  id: string;
  title: string;
  subjects: SubjectResult[];
  targets: TargetResult[];
  /** Why a target was missed, when it was: a measured cause, never a weakened baseline. */
  notes?: string[];
}

export type BenchCase = (context: BenchContext) => Promise<CaseResult>;
