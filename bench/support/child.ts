// Child processes for the bench: TypeScript run by tsx, driven over IPC (the way
// test/support/lock-worker.ts runs the test workers).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerCommand } from '../workers/bench.worker.js';

const WORKER = fileURLToPath(new URL('../workers/bench.worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A child process running bench/workers/bench.worker.ts. */
export class BenchChild {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(readonly process: ChildProcess) {
    process.on('message', (message: { id?: number; ok?: boolean; result?: unknown; error?: string }) => {
      if (message.id === undefined) return;
      const call = this.pending.get(message.id)!;
      this.pending.delete(message.id);
      if (message.ok) call.resolve(message.result);
      else call.reject(new Error(`bench worker: ${message.error}`));
    });
    process.on('exit', code => {
      for (const call of this.pending.values()) call.reject(new Error(`bench worker exited with ${code}`));
      this.pending.clear();
    });
  }

  /**
   * Starts a worker connected to `endpoints`; `exposeGc` gives it global.gc(); `openTelemetry`
   * registers the SDK in it first ('context': only its context manager).
   */
  static start(endpoints: string[], options: { exposeGc?: boolean; openTelemetry?: 'sdk' | 'context' } = {}): Promise<BenchChild> {
    const child = fork(WORKER, [], {
      cwd: ROOT,
      execArgv: [...(options.exposeGc ? ['--expose-gc'] : []), '--import', 'tsx'],
      serialization: 'advanced',
      env: { ...process.env, ETCD_ENDPOINTS: endpoints.join(','), NODE_OPTIONS: '', BENCH_OTEL: options.openTelemetry ?? '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const worker = new BenchChild(child);
    return new Promise((resolve, reject) => {
      child.once('message', () => resolve(worker));
      child.once('exit', code => reject(new Error(`bench worker exited with ${code} before it was ready`)));
    });
  }

  request<T>(command: WorkerCommand): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.process.send({ id, command });
    });
  }

  /** Closes the worker's clients and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise(resolve => this.process.once('exit', resolve));
    await this.request({ op: 'close' }).catch(() => undefined);
    this.process.kill('SIGTERM');
    await exited;
  }
}

/** Starts `count` workers in parallel. */
export function startChildren(count: number, endpoints: string[], options?: { exposeGc?: boolean }): Promise<BenchChild[]> {
  return Promise.all(Array.from({ length: count }, () => BenchChild.start(endpoints, options)));
}
