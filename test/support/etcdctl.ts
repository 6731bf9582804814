// etcd's own lock recipe from outside: `etcdctl lock` (Debian's etcd-client) as a child process,
// and etcd's Lock service through its JSON gateway, which jetcd and other clients call.
import { spawn, type ChildProcess } from 'node:child_process';

/** One `etcdctl lock <name>`, its session on a 2 s lease: it queues at once and prints its key when it holds the lock, until SIGINT. */
export class EtcdctlLock {
  /** Resolves with etcdctl's key when it holds the lock (and the wall time it said so). */
  readonly acquired: Promise<{ key: string; at: number }>;
  /** Set when it printed its key: it holds the lock. */
  holding = false;
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    let stderr = '';
    child.stderr!.on('data', chunk => (stderr += chunk));
    // no etcdctl on the PATH: fail with what to install (never skip), not an unhandled 'error'
    const missing = new Promise<never>((_, reject) =>
      child.once('error', error => reject(new Error(`No etcdctl (${error.message}): install Debian's etcd-client (apt-get install etcd-client; .ci/run does) or set ETCDCTL_BIN`))),
    );
    missing.catch(() => undefined);
    this.exited = Promise.race([new Promise<number | null>(resolve => child.on('exit', code => resolve(code))), missing]);
    this.acquired = new Promise((resolve, reject) => {
      child.stdout!.once('data', (chunk: Buffer) => {
        this.holding = true;
        resolve({ key: chunk.toString().trim().split('\n')[0], at: Date.now() });
      });
      child.once('exit', code => reject(new Error(`etcdctl lock exited with ${code} before it held the lock: ${stderr}`)));
      missing.catch(reject);
    });
    this.acquired.catch(() => undefined);
  }

  static start(endpoints: string[], name: string): EtcdctlLock {
    const child = spawn(process.env.ETCDCTL_BIN ?? 'etcdctl', [`--endpoints=${endpoints.join(',')}`, 'lock', '--ttl=2', name], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
    return new EtcdctlLock(child);
  }

  /** Ctrl-C: etcdctl unlocks (deletes its key) and exits; resolves when it has. */
  async release(): Promise<void> {
    this.child.kill('SIGINT');
    await this.exited;
    this.holding = false;
  }

  /** Ends it whatever its state (after a test). */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** etcd's Lock service (v3lock) through the JSON gateway: what jetcd's Lock client calls. */
export class GatewayLock {
  constructor(private readonly endpoint: string) {}

  /** A lease of `ttl` s that nobody keeps alive: it expires unless revoked first. */
  async grantLease(ttl: number): Promise<string> {
    return ((await this.post('/v3/lease/grant', { TTL: ttl })) as { ID: string }).ID;
  }

  async revokeLease(id: string): Promise<void> {
    await this.post('/v3/lease/revoke', { ID: id });
  }

  /** Blocks until the lock `name` is held on `lease`; resolves with the key it holds it by. */
  async lock(name: string, lease: string): Promise<string> {
    const { key } = (await this.post('/v3/lock/lock', { name: Buffer.from(name).toString('base64'), lease })) as { key: string };
    return Buffer.from(key, 'base64').toString();
  }

  async unlock(key: string): Promise<void> {
    await this.post('/v3/lock/unlock', { key: Buffer.from(key).toString('base64') });
  }

  private async post(path: string, body: object): Promise<unknown> {
    const res = await fetch(`${this.endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`etcd gateway ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  }
}
