import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerCommand } from '../workers/lock.worker.js';
import { EventList } from './event-list.js';

const WORKER = fileURLToPath(new URL('../workers/lock.worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** An event the worker's LockService emitted (or 'work-stopped'), with the worker's wall time. */
export interface WorkerEvent {
  event: string;
  key?: string;
  token?: bigint;
  reason?: string;
  origin?: 'local' | 'remote';
  owner?: string;
  code?: string;
  passes?: number[];
  at: number;
}

/** A child process running test/workers/lock.worker.ts: a LockService of its own. */
export class LockWorker {
  private readonly list = new EventList<WorkerEvent>();

  /** Events the worker's LockService emitted (and 'work-stopped'), in arrival order. */
  get events(): WorkerEvent[] {
    return this.list.items;
  }

  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(readonly process: ChildProcess) {
    process.on('message', (message: { id?: number; ok?: boolean; result?: unknown; error?: { code?: string; message: string } } & Partial<WorkerEvent>) => {
      if (message.id !== undefined) {
        const call = this.pending.get(message.id)!;
        this.pending.delete(message.id);
        if (message.ok) call.resolve(message.result);
        else call.reject(Object.assign(new Error(message.error!.message), { code: message.error!.code }));
      } else if (message.event) {
        this.list.push(message as WorkerEvent);
      }
    });
    process.on('exit', () => {
      for (const call of this.pending.values()) call.reject(new Error('worker exited'));
      this.pending.clear();
    });
  }

  /** `registerEndpoints`: where the worker reaches the fenced register, when not through `endpoints`. */
  /** `watch`: the LockService's watch option. */
  /** `redisUrl`: the worker's locks are in that Redis (its counter and register stay in etcd at `endpoints`). */
  static start(endpoints: string[], prefix: string, ttl = 1, registerEndpoints?: string[], watch?: true | { prefix: string }, redisUrl?: string): Promise<LockWorker> {
    const child = fork(WORKER, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced', // bigint fencing tokens cross the IPC channel as they are
      env: { ...process.env, ETCD_ENDPOINTS: endpoints.join(','), LOCK_PREFIX: prefix, LOCK_TTL: String(ttl), NODE_OPTIONS: '', ...(registerEndpoints && { REGISTER_ENDPOINTS: registerEndpoints.join(',') }), ...(watch && { LOCK_WATCH: JSON.stringify(watch) }), ...(redisUrl && { LOCK_REDIS_URL: redisUrl }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const worker = new LockWorker(child);
    return new Promise((resolve, reject) => {
      child.once('message', () => resolve(worker));
      child.once('exit', code => reject(new Error(`lock worker exited with ${code} before it was ready`)));
    });
  }

  request<T = unknown>(command: WorkerCommand): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.process.send({ id, command });
    });
  }

  /** Resolves with the first event (already seen or coming) that matches; rejects after timeoutMs. */
  waitForEvent(match: (e: WorkerEvent) => boolean, timeoutMs = 10_000): Promise<WorkerEvent> {
    return this.list.waitFor(match, timeoutMs, () => `no matching worker event within ${timeoutMs} ms; saw ${this.events.map(e => e.event).join(', ')}`);
  }

  /**
   * How far this worker's wall clock is ahead of ours (ms), and how much of that is unknown
   * (half the best IPC round trip): times from different processes are only comparable after it.
   */
  async clockOffset(): Promise<{ offset: number; uncertainty: number }> {
    const wallNow = () => performance.timeOrigin + performance.now();
    let best = { offset: 0, uncertainty: Infinity };
    for (let i = 0; i < 5; i++) {
      const sent = wallNow();
      const theirs = await this.request<number>({ op: 'clock' });
      const back = wallNow();
      if ((back - sent) / 2 < best.uncertainty) best = { offset: theirs - (sent + back) / 2, uncertainty: (back - sent) / 2 };
    }
    return best;
  }

  /** Sends a signal and, for SIGKILL/SIGTERM, waits for the process to exit. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    const exited = new Promise(resolve => (this.process.exitCode !== null || this.process.signalCode !== null ? resolve(null) : this.process.once('exit', resolve)));
    this.process.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
  }

  /** Closes the worker's LockService (revoking its lease) and ends the process. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill('SIGCONT'); // a paused worker cannot answer
    await this.request({ op: 'close' }).catch(() => undefined);
    await this.signal('SIGTERM');
  }
}
