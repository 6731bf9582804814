// The etcd backend's face: the engine picks it when no other backend is given.
export { EtcdBackend } from './etcd.backend.js';
