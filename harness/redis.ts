// A real Redis for tests that integrate with Redis-backed Nest modules (@nestjs/bullmq). Lookup
// order: REDIS_URL, else a `redis-server` binary (REDIS_BIN or PATH) spawned on a free loopback
// port without persistence, else a message that says how to get one (`.ci/run` installs Debian's).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import { freePorts } from './etcd.js';

export interface RedisHandle {
  readonly host: string;
  readonly port: number;
  readonly url: string; // redis://127.0.0.1:<port>
  stop(): Promise<void>; // idempotent; no-op for REDIS_URL
}

const HOW_TO =
  'nestjs-etcd-lock harness: no Redis available. Set REDIS_URL to a running Redis, or install redis-server ' +
  '(Debian/Ubuntu: `apt-get install redis-server`) and put it on PATH or set REDIS_BIN=/path/to/redis-server.';

export async function startRedis(): Promise<RedisHandle> {
  if (process.env.REDIS_URL) {
    const url = new URL(process.env.REDIS_URL);
    return { host: url.hostname, port: Number(url.port || 6379), url: process.env.REDIS_URL, stop: async () => {} };
  }
  const onPath = (process.env.PATH ?? '').split(':').filter(Boolean).map(dir => `${dir}/redis-server`);
  const bin = process.env.REDIS_BIN || [...onPath, '/usr/bin/redis-server'].find(executable);
  if (!bin) throw new Error(HOW_TO);
  const [port] = await freePorts(1);
  // no RDB or AOF file: nothing to clean up, nothing shared between runs
  const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>(resolve => proc.once('exit', () => resolve()));
  process.once('exit', () => proc.kill('SIGKILL'));
  await untilPong(port, proc);
  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => (stopped ??= (async () => {
      proc.kill('SIGTERM');
      await exited;
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

/** Resolves once redis-server answers PING on `port`; throws if it exits or takes over 10 s. */
async function untilPong(port: number, proc: ChildProcess): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise(resolve => setTimeout(resolve, 50))) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode}. ${HOW_TO}`);
    const pong = await new Promise<boolean>(resolve => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
      socket.once('data', data => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
    });
    if (pong) return;
  }
  throw new Error(`redis-server did not answer PING on port ${port} within 10 s`);
}
