// One replica of the built sample app (sample-app/dist/main.js) as a child process.
import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface ReplicaEnv {
  ETCD_ENDPOINTS: string;
  LOCK_REDIS_URL: string; // empty: the locks are in etcd
  LOCK_PREFIX: string;
  DATA_PREFIX: string;
  LOCK_TTL: string;
}

export class Replica {
  port = 0;
  alive = false;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise(resolve => child.once('exit', () => resolve()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /**
   * Starts `node <main>` with PORT=0 and an IPC channel; resolves once it sent its port.
   * Output goes to `log`; warnings and errors are also passed to `onAlert`.
   */
  static async start(main: string, name: string, env: ReplicaEnv, log: WriteStream, onAlert: (line: string) => void): Promise<Replica> {
    const child = fork(main, [], {
      env: { ...process.env, ...env, PORT: '0', REPLICA: name, NO_COLOR: '1', NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const replica = new Replica(name, child);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', line => {
        log.write(`[${name}] ${line}\n`);
        if (/\b(WARN|ERROR)\b/.test(line)) onAlert(`[${name}] ${line.replace(/^\[Nest\]\s+\d+\s+-\s+\S+\s+\S+\s+\S+\s+/, '')}`);
      });
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`replica ${name} did not start within 30 s (see ${log.path})`)), 30_000);
      child.once('message', (message: { port?: number }) => {
        clearTimeout(timer);
        replica.port = message.port!;
        replica.alive = true;
        resolve();
      });
      child.once('exit', code => {
        clearTimeout(timer);
        reject(new Error(`replica ${name} exited with code ${code} before listening (see ${log.path})`));
      });
    });
    child.once('exit', () => (replica.alive = false));
    return replica;
  }

  /** SIGKILL: no shutdown hooks, the session (etcd lease, Redis session key) stays until its TTL runs out. */
  async kill(): Promise<void> {
    this.alive = false;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (shutdown hooks end the session), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.alive = false;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    this.child.kill('SIGTERM');
    await this.exited;
    clearTimeout(timer);
  }
}

export const openLog = (path: string) => createWriteStream(path, { flags: 'a' });
