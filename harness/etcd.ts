// The real etcd of this project's tests, demo and benchmarks is the one the testing kit gives users.
export * from '../lib/testing/etcd-server.js';
