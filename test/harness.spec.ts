// The harness against a real etcd: no mocks. The single server honours ETCD_ENDPOINTS when set;
// the cluster is always ours (spawned binaries), so it can be killed, paused and restarted.
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { Etcd3 } from 'etcd3';
import { startEtcd, startEtcdCluster, type EtcdHandle, type EtcdMember } from '../harness/etcd.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withClient<T>(hosts: string | string[], fn: (client: Etcd3) => Promise<T>): Promise<T> {
  // Short deadlines: a call to a killed or paused member must fail fast so `eventually` can retry.
  const client = new Etcd3({ hosts, dialTimeout: 1000, defaultCallOptions: () => ({ deadline: Date.now() + 1000 }) });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

async function eventually<T>(fn: () => Promise<T>, ms = 10_000): Promise<T> {
  for (const deadline = Date.now() + ms; ; await sleep(20)) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}

function dataDirOf(pid: number): string {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return args[args.indexOf('--data-dir') + 1];
}

// Field 3 of /proc/<pid>/stat: 'T' = stopped by a signal. comm may contain spaces, so skip past ')'.
function procState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0];
}

function refusesConnections(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    const done = (refused: boolean) => {
      socket.destroy();
      resolve(refused);
    };
    socket.once('connect', () => done(false)).once('error', () => done(true)).setTimeout(2000, () => done(false));
  });
}

async function isHealthy(url: string): Promise<boolean> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
  return ((await res.json()) as { health?: string }).health === 'true';
}

describe('startEtcd (single server)', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(() => etcd?.stop());

  it('serves put/get and Prometheus metrics', async () => {
    expect(etcd.source).toBe(process.env.ETCD_ENDPOINTS ? 'env' : 'binary');
    const key = `harness-spec/${randomUUID()}`;
    const value = await withClient(etcd.endpoints, async (client) => {
      await client.put(key).value('hello');
      const got = await client.get(key).string();
      await client.delete().key(key);
      return got;
    });
    expect(value).toBe('hello');
    expect(await etcd.metrics()).toContain('grpc_server_handled_total');
  });

  it('stop() removes the data dir and frees the port; a second stop() is fine', async () => {
    const pid = etcd.members[0]?.pid;
    const dataDir = etcd.source === 'binary' && pid ? dataDirOf(pid) : undefined;
    if (etcd.source === 'binary') expect(dataDir && existsSync(dataDir)).toBe(true);
    await etcd.stop();
    await etcd.stop();
    if (etcd.source !== 'binary') return; // external etcd is not ours to stop
    expect(existsSync(dataDir!)).toBe(false);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(etcd.members[0].pid).toBeUndefined();
    expect(await refusesConnections(etcd.endpoints[0])).toBe(true);
  });
});

describe('startEtcdCluster(3)', () => {
  let cluster: EtcdHandle;
  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
  });
  afterAll(() => cluster?.stop());

  async function leaderIndex(members: readonly EtcdMember[]): Promise<number> {
    const statuses = await Promise.all(members.map((m) => withClient(m.clientUrl, (c) => c.maintenance.status())));
    return statuses.findIndex((s) => s.leader === s.header.member_id);
  }

  it('replicates: a write through member 0 is read through member 2', async () => {
    expect(cluster.source).toBe('binary');
    expect(cluster.endpoints).toHaveLength(3);
    expect(new Set(cluster.members.map((m) => m.pid)).size).toBe(3);
    await withClient(cluster.members[0].clientUrl, (c) => c.put('replicated').value('yes').exec());
    expect(await withClient(cluster.members[2].clientUrl, (c) => c.get('replicated').string())).toBe('yes');
  });

  it('keeps accepting writes when the leader is killed, and the leader rejoins after start()', async () => {
    const index = await leaderIndex(cluster.members);
    expect(index).toBeGreaterThanOrEqual(0);
    const leader = cluster.members[index];
    const survivors = cluster.members.filter((m) => m !== leader);

    await leader.kill();
    expect(leader.pid).toBeUndefined();
    const t0 = Date.now();
    // Followers keep the dead leader for one election timeout; a write forwarded to it meanwhile
    // is lost and only fails at the call deadline, so wait for the new leader first.
    await eventually(async () => expect(await leaderIndex(survivors)).toBeGreaterThanOrEqual(0));
    await eventually(() => withClient(survivors.map((m) => m.clientUrl), (c) => c.put('after-kill').value('ok').exec()));
    expect(Date.now() - t0).toBeLessThan(5000);

    await leader.start();
    expect(leader.pid).toBeDefined();
    expect(await isHealthy(leader.clientUrl)).toBe(true);
    expect(await eventually(() => withClient(leader.clientUrl, (c) => c.get('after-kill').string()))).toBe('ok');
  });

  it('pause() stops the process (state T), the others keep serving, resume() brings it back', async () => {
    const [other, paused] = cluster.members;
    paused.pause();
    // kill(2) returns before every thread of the Go process has stopped: poll the state.
    await eventually(async () => expect(procState(paused.pid!)).toBe('T'), 2000);
    await eventually(() => withClient(other.clientUrl, (c) => c.put('while-paused').value('ok').exec()));
    paused.resume();
    await eventually(async () => expect(procState(paused.pid!)).not.toBe('T'), 2000);
    expect(await eventually(async () => {
      if (!(await isHealthy(paused.clientUrl))) throw new Error('not healthy yet');
      return withClient(paused.clientUrl, (c) => c.get('while-paused').string());
    })).toBe('ok');
  });

  it('stop() ends every process, even a paused one, and removes every data dir', async () => {
    const pids = cluster.members.map((m) => m.pid!);
    const dataDirs = pids.map(dataDirOf);
    expect(dataDirs.every((dir) => existsSync(dir))).toBe(true);
    cluster.members[2].pause();

    await cluster.stop();
    await cluster.stop();
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
    for (const dir of dataDirs) expect(existsSync(dir)).toBe(false);
    expect(cluster.members.map((m) => m.pid)).toEqual([undefined, undefined, undefined]);
    for (const url of cluster.endpoints) expect(await refusesConnections(url)).toBe(true);
  });
});
