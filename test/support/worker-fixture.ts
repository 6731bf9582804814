// The set-up of a spec file whose locks are held by worker processes: one etcd for the file,
// an admin client on it, and the workers a test started stopped after it.
import { afterAll, afterEach, beforeAll } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import { startEtcd, startEtcdCluster, type EtcdHandle } from '../../harness/etcd.js';
import { createEtcdClient } from '../../lib/backends/etcd/etcd-client.js';
import { LockWorker } from './lock-worker.js';

export interface WorkerFixture {
  readonly etcd: EtcdHandle;
  /** no circuit breaker after a restart, unlike etcd3's default client */
  readonly admin: Etcd3;
  /** Starts `count` workers on `prefix` with lease TTL `ttl` s (and the `watch` option, if given); stopped after the test. */
  startWorkers(count: number, watch?: true | { prefix: string }): Promise<LockWorker[]>;
  stopWorkers(): Promise<void>;
}

/**
 * Registers the file's hooks; call it at the top level of a spec. `restartable`: an etcd
 * member of our own (never ETCD_ENDPOINTS), which the tests can stop and start.
 */
export function useEtcdAndWorkers(prefix: string, ttl: number, { restartable = false } = {}): WorkerFixture {
  let etcd: EtcdHandle | undefined;
  let admin: Etcd3 | undefined;
  let workers: LockWorker[] = [];
  const stopWorkers = async () => {
    await Promise.all(workers.map(w => w.stop()));
    workers = [];
  };
  beforeAll(async () => {
    etcd = restartable ? await startEtcdCluster(1) : await startEtcd();
    admin = createEtcdClient({ hosts: etcd.endpoints });
  });
  afterEach(stopWorkers);
  afterAll(async () => {
    admin?.close();
    await etcd?.stop();
  });
  return {
    get etcd() {
      return etcd!;
    },
    get admin() {
      return admin!;
    },
    async startWorkers(count, watch) {
      const started = await Promise.all(Array.from({ length: count }, () => LockWorker.start(etcd!.endpoints, prefix, ttl, undefined, watch)));
      workers.push(...started);
      return started;
    },
    stopWorkers,
  };
}
