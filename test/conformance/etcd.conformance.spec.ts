// The conformance suite on etcd (see lock-conformance.ts): a real etcd, sessions expired by
// revoking their lease behind their back, and real processes for the multi-process part.
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { LockWorker } from '../support/lock-worker.js';
import { describeConformance } from './lock-conformance.js';

let etcd: EtcdHandle;
let admin: Etcd3;

describeConformance('etcd', {
  start: async () => {
    etcd = await startEtcd();
    admin = new Etcd3({ hosts: etcd.endpoints });
    return { etcd: { hosts: etcd.endpoints } };
  },
  // the lease goes in etcd: the session learns at its next keepalive
  expireSession: async holder => void (await admin.leaseClient.leaseRevoke({ ID: holder.lease })),
  expectClean: prefix => expectEtcdClean(admin, prefix),
  stop: async () => {
    admin?.close();
    await etcd?.stop();
  },
  startProcess: prefix => LockWorker.start(etcd.endpoints, prefix, 2),
  readCounter: async key => {
    const value = Number(await admin.get(key).string());
    await admin.delete().key(key);
    return value;
  },
});
