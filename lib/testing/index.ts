// nestjs-etcd-lock/testing: what users' tests need, on its own export path so that production
// bundles do not carry it. Unit tests: LockTestingModule (the in-memory backend behind the
// usual Nest API) and LockTesting (contention, loss, what was locked). End-to-end tests:
// startEtcd, a throwaway real etcd.
export { MemoryBackend } from '../backends/memory/memory.backend.js';
export { ANOTHER_PROCESS, LockTesting } from './lock-testing.js';
export { LockTestingModule, type LockTestingModuleOptions } from './lock-testing.module.js';
export { startEtcd, startEtcdCluster, type EtcdHandle, type EtcdMember, type StartEtcdOptions } from './etcd-server.js';
