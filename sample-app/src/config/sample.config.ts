import { hostname } from 'node:os';

/**
 * The sample's settings, read once from the environment (no @nestjs/config needed):
 * ETCD_ENDPOINTS (comma-separated), LOCK_PREFIX, LOCK_TTL (s), DATA_PREFIX, PORT, REPLICA,
 * PAY_WORK_MS (simulated payment-gateway latency), LOG_LOCK_EVENTS=1, and LOCK_REDIS_URL: when
 * set, the locks are kept in that Redis; the orders and accounts stay in etcd either way.
 */
export class SampleConfig {
  constructor(
    readonly etcdEndpoints: string[],
    readonly lockPrefix: string,
    readonly lockTtl: number,
    readonly dataPrefix: string,
    readonly port: number,
    readonly replica: string,
    readonly payWorkMs: number,
    readonly logLockEvents: boolean,
    readonly lockRedisUrl?: string,
  ) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): SampleConfig {
    return new SampleConfig(
      (env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',').map(s => s.trim()).filter(Boolean),
      env.LOCK_PREFIX ?? 'sample/',
      Number(env.LOCK_TTL ?? 5),
      env.DATA_PREFIX ?? 'sample-data/',
      Number(env.PORT ?? 3000),
      env.REPLICA ?? `${hostname()}:${process.pid}`,
      Number(env.PAY_WORK_MS ?? 10),
      env.LOG_LOCK_EVENTS === '1',
      env.LOCK_REDIS_URL || undefined,
    );
  }
}
