// A real Redis for tests that integrate with Redis-backed Nest modules (@nestjs/bullmq). Lookup
// order: REDIS_URL, else a `redis-server` binary (REDIS_BIN or PATH) spawned on a free loopback
// port (without persistence unless asked), else a message that says how to get one (`.ci/run`
// installs Debian's). Ours can be killed and started again on the same port and data.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { freePorts } from './etcd.js';

export interface RedisHandle {
  readonly host: string;
  readonly port: number;
  readonly url: string; // redis://127.0.0.1:<port>
  readonly pid: number | undefined; // undefined for REDIS_URL, or while stopped
  stop(): Promise<void>; // idempotent; no-op for REDIS_URL
  kill(): Promise<void>; // SIGKILL, wait for exit (ours only)
  start(): Promise<void>; // again on the same port and data dir, after kill() (ours only)
}

const HOW_TO =
  'nestjs-etcd-lock harness: no Redis available. Set REDIS_URL to a running Redis, or install redis-server ' +
  '(Debian/Ubuntu: `apt-get install redis-server`) and put it on PATH or set REDIS_BIN=/path/to/redis-server.';

export interface RedisOptions {
  /** AOF with `appendfsync always`: every write is on disk before Redis answers, so a restart keeps it. Default: no persistence. */
  appendOnly?: boolean;
  /** A replica of the Redis on this port (asynchronous replication, as Redis does it). */
  replicaOf?: number;
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisHandle> {
  if (process.env.REDIS_URL) {
    const url = new URL(process.env.REDIS_URL);
    const notOurs = async () => { throw new Error('REDIS_URL: this Redis is not ours to kill or restart'); };
    return { host: url.hostname, port: Number(url.port || 6379), url: process.env.REDIS_URL, pid: undefined, stop: async () => {}, kill: notOurs, start: notOurs };
  }
  const onPath = (process.env.PATH ?? '').split(':').filter(Boolean).map(dir => `${dir}/redis-server`);
  const bin = process.env.REDIS_BIN || [...onPath, '/usr/bin/redis-server'].find(executable);
  if (!bin) throw new Error(HOW_TO);
  const [port] = await freePorts(1);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'redis-'));
  // no persistence by default: nothing shared between runs
  const persistence = options.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const replica = options.replicaOf ? ['--replicaof', '127.0.0.1', String(options.replicaOf)] : [];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...persistence, ...replica];
  let proc: ChildProcess | undefined;
  let exited = Promise.resolve();
  const launch = async () => {
    const child = spawn(bin, args, { stdio: 'ignore' });
    proc = child;
    exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
    await untilOursAnswers(port, child);
  };
  await launch();
  process.once('exit', () => {
    proc?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return proc?.exitCode === null ? proc.pid : undefined;
    },
    kill: async () => {
      proc?.kill('SIGKILL');
      await exited;
    },
    start: launch,
    stop: () => (stopped ??= (async () => {
      proc?.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    })()),
  };
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves once our redis-server answers on `port`; throws if it exits or takes over 10 s. It
 * asks for the server's process id: files run side by side, and a port freed by a killed Redis
 * may be taken by another file's server, whose answer must not pass for ours.
 */
async function untilOursAnswers(port: number, proc: ChildProcess): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise(resolve => setTimeout(resolve, 50))) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode} (port ${port} taken?). ${HOW_TO}`);
    const pid = await new Promise<number | undefined>(resolve => {
      let reply = '';
      const socket = net.connect(port, '127.0.0.1', () => socket.write('INFO server\r\n'));
      socket.on('data', data => {
        reply += data.toString();
        const found = /process_id:(\d+)\r\n/.exec(reply);
        if (found || reply.startsWith('-')) {
          socket.destroy();
          resolve(found ? Number(found[1]) : undefined);
        }
      });
      socket.once('error', () => resolve(undefined));
      socket.once('close', () => resolve(undefined));
    });
    if (pid === proc.pid) return;
    if (pid !== undefined) throw new Error(`port ${port} is answered by another redis-server (pid ${pid}), not the one started here (pid ${proc.pid})`);
  }
  throw new Error(`redis-server did not answer on port ${port} within 10 s`);
}

export interface RedisClusterHandle {
  readonly nodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` primaries (no replicas) on free loopback ports, made with
 * `redis-cli --cluster create` (Debian's redis-tools, which redis-server brings along).
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const onPath = (name: string) => [...(process.env.PATH ?? '').split(':').filter(Boolean).map(dir => `${dir}/${name}`), `/usr/bin/${name}`].find(executable);
  const bin = process.env.REDIS_BIN || onPath('redis-server');
  const cli = onPath('redis-cli');
  if (!bin || !cli) throw new Error(HOW_TO);
  const ports = await freePorts(masters);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'redis-cluster-'));
  const procs = ports.map(port =>
    spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'], { stdio: 'ignore' }),
  );
  const exits = procs.map(proc => new Promise<void>(resolve => proc.once('exit', () => resolve())));
  const stop = async () => {
    for (const proc of procs) proc.kill('SIGKILL');
    await Promise.all(exits);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(ports.map((port, i) => untilOursAnswers(port, procs[i])));
    await new Promise<void>((resolve, reject) => {
      const create = spawn(cli, ['--cluster', 'create', ...ports.map(port => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
      create.once('exit', code => (code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create exited with ${code}`))));
    });
    // every node agrees the cluster is up
    for (const end = Date.now() + 15_000; ; await new Promise(resolve => setTimeout(resolve, 100))) {
      const states = await Promise.all(ports.map(port => clusterState(cli, port)));
      if (states.every(state => state === 'ok')) break;
      if (Date.now() > end) throw new Error(`Redis Cluster not ok within 15 s: ${states.join(', ')}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: ports.map(port => ({ host: '127.0.0.1', port })), stop };
}

function clusterState(cli: string, port: number): Promise<string> {
  return new Promise(resolve => {
    const info = spawn(cli, ['-p', String(port), 'cluster', 'info']);
    let out = '';
    info.stdout.on('data', chunk => (out += chunk));
    info.once('exit', () => resolve(/cluster_state:(\w+)/.exec(out)?.[1] ?? 'unknown'));
  });
}
