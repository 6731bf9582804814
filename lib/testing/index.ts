// nestjs-etcd-lock/testing: what users' tests need, on its own export path so that
// production bundles do not carry it.
export { MemoryBackend } from '../backends/memory/memory.backend.js';
