// The conformance suite on a real Redis Cluster of 3 primaries (redis-cli --cluster create):
// every key of a prefix shares one hash tag, so each script runs on one node, and pub/sub
// reaches the subscribers wherever they are connected.
import { expect } from '@jest/globals';
import { Cluster } from 'ioredis';
import { startRedisCluster, type RedisClusterHandle } from '../../harness/redis.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import { describeConformance } from './lock-conformance.js';

// the token counter stays by design (tokens only go up); `swept` expires one session TTL after the last sweep
const UNTIL_IT_EXPIRES = ['seq', 'swept'];

let cluster: RedisClusterHandle;
let admin: Cluster;

describeConformance('redis-cluster', {
  start: async () => {
    cluster = await startRedisCluster(3);
    admin = new Cluster(cluster.nodes);
    return { backend: new RedisBackend({ cluster: cluster.nodes }) };
  },
  expireSession: async holder => void (await admin.del(`{conformance-redis-cluster/}:s:${holder.lease}`)),
  expectClean: async prefix => {
    const perNode = await Promise.all(admin.nodes('master').map(node => node.keys(`{${prefix}}:*`)));
    expect(perNode.flat().filter(key => !UNTIL_IT_EXPIRES.includes(key.slice(`{${prefix}}:`.length)))).toEqual([]);
    // the namespace lived on one node of the three: one slot
    expect(perNode.filter(keys => keys.length > 0)).toHaveLength(1);
  },
  stop: async () => {
    admin?.disconnect();
    await cluster?.stop();
  },
});
