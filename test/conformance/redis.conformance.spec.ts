// The conformance suite on a real Redis (see lock-conformance.ts): Debian's redis-server started
// by the harness, sessions expired by deleting their key behind their back.
import { expect } from '@jest/globals';
import { Redis } from 'ioredis';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { startRedis, type RedisHandle } from '../../harness/redis.js';
import { LockWorker } from '../support/lock-worker.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import { describeConformance } from './lock-conformance.js';

// the token counter stays by design (tokens only go up); `swept` expires one session TTL after the last sweep
const UNTIL_IT_EXPIRES = ['seq', 'swept'];

let redis: RedisHandle;
let admin: Redis;
// the resource the processes protect (a counter) lives apart from the locks, in an etcd
let data: Promise<EtcdHandle> | undefined;
let dataClient: Etcd3 | undefined;

describeConformance('redis', {
  start: async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    return { backend: new RedisBackend({ url: redis.url }) };
  },
  // the session key goes in Redis: the session learns at its next heartbeat
  expireSession: async holder => void (await admin.del(`{conformance-redis/}:s:${holder.lease}`)),
  expectClean: async prefix => {
    const left = await admin.keys(`{${prefix}}:*`);
    expect(left.filter(key => !UNTIL_IT_EXPIRES.includes(key.slice(`{${prefix}}:`.length)))).toEqual([]);
  },
  stop: async () => {
    admin?.disconnect();
    dataClient?.close();
    await Promise.all([redis?.stop(), data?.then(etcd => etcd.stop())]);
  },
  startProcess: async prefix => {
    const etcd = await (data ??= startEtcd()); // once, for every process
    dataClient ??= new Etcd3({ hosts: etcd.endpoints });
    return LockWorker.start(etcd.endpoints, prefix, 2, undefined, undefined, redis.url);
  },
  readCounter: async key => {
    const value = Number(await dataClient!.get(key).string());
    await dataClient!.delete().key(key);
    return value;
  },
});
