// A throwaway etcd for tests (users' e2e tests, and this project's tests, demo and benchmarks). Lookup
// order: ETCD_ENDPOINTS, an etcd binary on free loopback ports, Docker via testcontainers, `apt-get install
// etcd-server` (root on Debian), else a helpful error. startEtcdCluster() always runs its own binaries: a
// cluster must be ours to break.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string; // http://127.0.0.1:<port>
  readonly pid: number | undefined; // undefined while stopped
  stop(): Promise<void>; // SIGTERM, wait for exit (SIGKILL after 5 s)
  kill(): Promise<void>; // SIGKILL, wait for exit
  pause(): void; // SIGSTOP
  resume(): void; // SIGCONT
  start(): Promise<void>; // restart with the same data dir and ports (as an existing member), wait healthy
}
export interface EtcdHandle {
  readonly endpoints: string[]; // client URLs, e.g. ['http://127.0.0.1:23791']
  readonly members: EtcdMember[]; // empty unless we run the etcd processes ourselves ('binary')
  readonly source: 'env' | 'binary' | 'docker';
  metrics(): Promise<string>; // GET <endpoints[0]>/metrics text (Prometheus format)
  stop(): Promise<void>; // stops everything started and removes data dirs; idempotent; no-op for 'env'
}
type Log = (line: string) => void;
export interface StartEtcdOptions {
  log?: Log;
  fastRaft?: boolean; // default true; false keeps etcd's default timings (100 ms / 1 s, minimum lease TTL 2 s)
  // client TLS with client certificates (mTLS), PEM file paths; needs the etcd binary (not ETCD_ENDPOINTS or Docker).
  // Health and metrics are then served over plain HTTP on a separate port.
  tls?: { cert: string; key: string; ca: string };
  // more etcd flags, e.g. ['--max-txn-ops', '8']; for a binary or Docker (not ETCD_ENDPOINTS)
  args?: string[];
}

// 10 ms heartbeat / 100 ms election: failover within ~0.1 s, and etcd's minimum lease TTL
// (1.5 election timeouts, rounded up to whole seconds) becomes 1 s, so expiry tests are quick.
const FAST = ['--heartbeat-interval', '10', '--election-timeout', '100'];
const raft = (options: StartEtcdOptions) => [...(options.fastRaft === false ? [] : FAST), '--snapshot-count', '10000', ...(options.args ?? [])];
const QUIET = ['--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'error'];
const HEALTH_TIMEOUT_MS = 20_000;
const HOW_TO =
  'nestjs-etcd-lock harness: no etcd available. Either set ETCD_ENDPOINTS to a running etcd >= 3.4 ' +
  '(e.g. ETCD_ENDPOINTS=http://127.0.0.1:2379), or install etcd (Debian/Ubuntu: `apt-get install etcd-server`; ' +
  'elsewhere the release tarball from https://github.com/etcd-io/etcd/releases) and put it on PATH or set ' +
  'ETCD_BIN=/path/to/etcd, or start a Docker engine (testcontainers then runs quay.io/coreos/etcd).';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Members whose process or data dir may still exist; swept synchronously if Node exits without stop().
const live = new Set<Member>();
let exitHook = false;

class Member implements EtcdMember {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private paused = false;
  private tail: string[] = [];
  // Jest hands tests a sandboxed copy of `process` whose 'exit' never fires, and a crash or SIGKILL
  // skips exit handlers anyway. So each member gets a tiny shell that learns every etcd pid on its
  // stdin; when that pipe closes (this Node process is gone) it SIGKILLs etcd and removes the dir.
  private readonly watchdog: ChildProcess;

  constructor(readonly name: string, readonly clientUrl: string, readonly dataDir: string,
    private readonly bin: string, private readonly args: string[], readonly metricsUrl = clientUrl) {
    this.watchdog = spawn('sh', ['-c',
      'trap "" INT TERM HUP; p=; while read l; do p=$l; done; [ -n "$p" ] && kill -9 "$p"; rm -rf "$0"', dataDir],
    { stdio: ['pipe', 'ignore', 'ignore'] });
    this.watchdog.unref();
    this.watchdog.on('error', () => {}); // best effort only
    this.watchdog.stdin?.on('error', () => {});
    live.add(this);
    if (!exitHook) process.on('exit', () => live.forEach((m) => m.killSync()));
    exitHook = true;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  spawn(state: 'new' | 'existing'): void {
    const proc = spawn(this.bin, [...this.args, '--initial-cluster-state', state], { stdio: ['ignore', 'ignore', 'pipe'] });
    [this.proc, this.paused, this.tail] = [proc, false, []];
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.tail.push(...chunk.split('\n').filter(Boolean));
      this.tail.splice(0, this.tail.length - 30); // ring buffer for startup errors
    });
    this.exited = new Promise((resolve) => {
      const gone = (why: string) => {
        this.tail.push(`(${why})`);
        if (this.proc === proc) {
          this.proc = undefined;
          this.watchdog.stdin?.write('\n'); // forget the pid: it may be reused
        }
        resolve();
      };
      proc.once('exit', (code, signal) => gone(`exited with ${signal ?? `code ${code}`}`));
      proc.once('error', (err) => gone(String(err)));
    });
    if (proc.pid) this.watchdog.stdin?.write(`${proc.pid}\n`);
  }

  async waitHealthy(): Promise<void> {
    for (const deadline = Date.now() + HEALTH_TIMEOUT_MS; Date.now() < deadline; await sleep(50)) {
      if (!this.proc) throw this.failure('exited during startup');
      if (await healthy(this.metricsUrl)) return;
    }
    throw this.failure(`was not healthy within ${HEALTH_TIMEOUT_MS / 1000} s`);
  }

  portTaken(): boolean {
    return this.tail.some((line) => line.includes('address already in use'));
  }

  async start(): Promise<void> {
    if (this.proc) return;
    if (!live.has(this)) throw new Error(`etcd member ${this.name}: its handle was stopped, data dir removed`);
    this.spawn('existing'); // the data dir already holds membership; existing = no re-bootstrap
    await this.waitHealthy();
  }

  stop(): Promise<void> { return this.terminate('SIGTERM'); }
  kill(): Promise<void> { return this.terminate('SIGKILL'); }
  pause(): void { if (this.proc?.kill('SIGSTOP')) this.paused = true; }
  resume(): void { if (this.proc?.kill('SIGCONT')) this.paused = false; }

  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    if (this.paused) this.resume(); // a stopped process does not act on SIGTERM until continued
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  async destroy(): Promise<void> {
    // SIGKILL: the data is discarded anyway, and a 3.4 leader whose followers are also stopping
    // hangs on SIGTERM (leadership transfer) until the 5 s fallback.
    await this.kill();
    await rm(this.dataDir, { recursive: true, force: true });
    this.watchdog.stdin?.end(); // nothing left to guard: the shell exits on its own
    live.delete(this);
  }

  killSync(): void {
    this.proc?.kill('SIGKILL'); // sync syscall; returns false instead of throwing when already gone
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private failure(why: string): Error {
    return new Error(`etcd member ${this.name} (${this.clientUrl}) ${why}; last stderr lines:\n` +
      (this.tail.join('\n') || '(none)'));
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    return ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

function makeHandle(source: EtcdHandle['source'], endpoints: string[], members: EtcdMember[],
  teardown: () => Promise<void>, metricsUrl = endpoints[0]): EtcdHandle {
  let stopping: Promise<void> | undefined;
  return {
    source, endpoints, members,
    async metrics() {
      const res = await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`GET ${metricsUrl}/metrics: HTTP ${res.status}`);
      return res.text();
    },
    stop: () => (stopping ??= teardown()),
  };
}

// Listen on port 0 and close; all listeners stay open until every port is known so they differ.
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function can(file: string, mode: number): boolean {
  try {
    return accessSync(file, mode) === undefined;
  } catch {
    return false;
  }
}
const executable = (file: string) => can(file, constants.X_OK);

function onPath(cmd: string): string | undefined {
  return (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, cmd)).find(executable);
}

function findBinary(): string | undefined {
  const bin = process.env.ETCD_BIN;
  if (bin && !executable(bin)) throw new Error(`ETCD_BIN=${bin} is not an executable file. ${HOW_TO}`);
  return bin || onPath('etcd') || ['/usr/bin/etcd', '/usr/local/bin/etcd'].find(executable);
}

// tmpfs makes etcd's fsyncs nearly free; fall back to the regular temp dir.
const tmpBase = () => (can('/dev/shm', constants.W_OK) ? '/dev/shm' : os.tmpdir());

async function launch(bin: string, size: number, options: StartEtcdOptions): Promise<EtcdHandle> {
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(3 * size);
    const tls = options.tls;
    const names = Array.from({ length: size }, (_, i) => `etcd${i}`);
    const peer = (i: number) => `http://127.0.0.1:${ports[size + i]}`;
    const cluster = names.map((name, i) => `${name}=${peer(i)}`).join(',');
    const token = `nestjs-etcd-lock-${randomUUID()}`;
    const members = await Promise.all(names.map(async (name, i) => {
      const clientUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${ports[i]}`;
      const metricsUrl = `http://127.0.0.1:${ports[2 * size + i]}`;
      const dataDir = await mkdtemp(path.join(tmpBase(), 'nestjs-etcd-lock-'));
      const secure = tls ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, '--client-cert-auth', '--listen-metrics-urls', metricsUrl] : [];
      return new Member(name, clientUrl, dataDir, bin, ['--name', name, '--data-dir', dataDir,
        '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peer(i), '--initial-advertise-peer-urls', peer(i),
        '--initial-cluster', cluster, '--initial-cluster-token', token, ...secure, ...raft(options), ...QUIET], tls ? metricsUrl : clientUrl);
    }));
    const handle = makeHandle('binary', members.map((m) => m.clientUrl), members,
      async () => void (await Promise.all(members.map((m) => m.destroy()))), members[0].metricsUrl);
    try {
      members.forEach((m) => m.spawn('new'));
      await Promise.all(members.map((m) => m.waitHealthy()));
      return handle;
    } catch (err) {
      await handle.stop();
      // Another process may grab a port between freePorts() and etcd's bind: retry once.
      if (attempt > 1 || !members.some((m) => m.portTaken())) throw err;
    }
  }
}

async function startDocker(options: StartEtcdOptions): Promise<EtcdHandle | undefined> {
  let tc: typeof import('testcontainers');
  let host: string;
  try {
    tc = await import('testcontainers');
    host = (await tc.getContainerRuntimeClient()).info.containerRuntime.host;
  } catch {
    return undefined; // no reachable container runtime
  }
  // Bind a known host port so etcd can advertise the URL clients actually use.
  const [port] = await freePorts(1);
  const url = `http://${host}:${port}`;
  const container = await new tc.GenericContainer('quay.io/coreos/etcd:v3.5.17')
    .withExposedPorts({ container: 2379, host: port })
    .withCommand(['/usr/local/bin/etcd', '--name', 'etcd0', '--data-dir', '/var/lib/etcd',
      '--listen-client-urls', 'http://0.0.0.0:2379', '--advertise-client-urls', url, ...raft(options), ...QUIET])
    .withWaitStrategy(tc.Wait.forHttp('/health', 2379).forResponsePredicate((body) => body.includes('"true"')))
    .start();
  return makeHandle('docker', [url], [], async () => void (await container.stop()));
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

let installing: Promise<string> | undefined;
function installEtcd(log: Log = (line) => console.error(line)): Promise<string> {
  if (process.getuid?.() !== 0 || !existsSync('/etc/debian_version') || !onPath('apt-get')) {
    return Promise.reject(new Error(HOW_TO));
  }
  return (installing ??= (async () => {
    log("nestjs-etcd-lock harness: no etcd found, installing Debian's etcd-server with apt-get…");
    const lock = ['-o', 'DPkg::Lock::Timeout=300']; // parallel jest workers may race for the dpkg lock
    await run('apt-get', [...lock, 'update']);
    await run('apt-get', [...lock, 'install', '-y', 'etcd-server']);
    const bin = findBinary();
    if (!bin) throw new Error(`apt-get installed etcd-server, yet no etcd binary was found. ${HOW_TO}`);
    return bin;
  })());
}

/**
 * A throwaway etcd for a test run: ETCD_ENDPOINTS if set (never stopped by us), else an etcd
 * binary (ETCD_BIN or PATH) on free loopback ports with fast raft timings (TTLs down to 1 s),
 * else Docker through testcontainers (an optional dependency), else, as root on Debian or
 * Ubuntu, Debian's etcd-server installed with apt-get. `stop()` it when done.
 * @publicApi
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdHandle> {
  const env = process.env.ETCD_ENDPOINTS?.split(',').map((url) => url.trim()).filter(Boolean);
  if (options.tls) return launch(findBinary() ?? (await installEtcd(options.log)), 1, options); // our own etcd, with our certificates
  if (env?.length) return makeHandle('env', env, [], async () => {});
  const bin = findBinary();
  if (bin) return launch(bin, 1, options);
  return (await startDocker(options)) ?? launch(await installEtcd(options.log), 1, options);
}

/** A cluster of `size` etcd members of our own (binaries), to stop, kill, pause and restart one by one. @publicApi */
export async function startEtcdCluster(size = 3, options: StartEtcdOptions = {}): Promise<EtcdHandle> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`cluster size must be a positive integer, got ${size}`);
  return launch(findBinary() ?? (await installEtcd(options.log)), size, options);
}
