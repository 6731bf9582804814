// An ES module consumer of nestjs-etcd-lock installed as a package (Nest 12 from its own
// node_modules): imports it by name, takes and releases a lock on a real etcd, and reports
// what it resolved. Run by test/compat-esm.spec.ts from a temp copy.
// Env: ETCD_ENDPOINTS (comma-separated), LOCK_PREFIX. Sends its report over IPC, then exits.
import 'reflect-metadata';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { EtcdLockModule, LockService, WithLock } from 'nestjs-etcd-lock';

const require = createRequire(import.meta.url);
const locks = new LockService({ etcd: { hosts: process.env.ETCD_ENDPOINTS.split(',') }, prefix: process.env.LOCK_PREFIX, ttl: 1 });
try {
  const lock = await locks.acquire('esm:1');
  const busy = await locks.tryAcquire('esm:1', { reentrant: false }).catch((err) => err.name);
  const heldToken = String(lock.token);
  await lock.release();
  const again = await locks.tryAcquire('esm:1');
  await again?.release();
  process.send({
    lockPath: fileURLToPath(import.meta.resolve('nestjs-etcd-lock')),
    nestVersion: require('@nestjs/core/package.json').version,
    exports: { EtcdLockModule: typeof EtcdLockModule.forRoot, WithLock: typeof WithLock },
    heldToken,
    busy,
    againToken: again ? String(again.token) : null,
  });
} finally {
  await locks.close();
}
