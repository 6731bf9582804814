import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('../workers/nest-app.worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How a process ended: graceful when it exited by itself after SIGTERM (no SIGKILL needed). */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  graceful: boolean;
}

/** A child process running test/workers/nest-app.worker.ts: the fixture app listening on HTTP. */
export class NestAppProcess {
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stopping: Promise<ProcessExit> | undefined;

  private constructor(
    readonly process: ChildProcess,
    readonly port: number,
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  ) {
    this.exited = exited;
  }

  /** Starts the app and resolves once it listens (rejects if it exits first or takes over `timeoutMs`). */
  static start(endpoints: string[], lockPrefix: string, dataPrefix: string, timeoutMs = 30_000): Promise<NestAppProcess> {
    const child = fork(WORKER, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ETCD_ENDPOINTS: endpoints.join(','), LOCK_PREFIX: lockPrefix, DATA_PREFIX: dataPrefix, NODE_OPTIONS: '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`nest-app worker did not listen within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('message', (message: { port?: number }) => {
        clearTimeout(timer);
        if (typeof message.port === 'number') resolve(new NestAppProcess(child, message.port, exited));
        else reject(new Error(`nest-app worker sent ${JSON.stringify(message)} instead of its port`));
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`nest-app worker exited with ${signal ?? `code ${code}`} before it listened`));
      });
    });
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /**
   * SIGTERM (Nest's shutdown hooks close the app, which revokes its lease) and waits for the
   * exit; SIGKILL after `timeoutMs`, reported as not graceful (as is a process that had
   * already ended). Idempotent.
   */
  stop(timeoutMs = 10_000): Promise<ProcessExit> {
    return (this.stopping ??= (async () => {
      if (!this.running) return { ...(await this.exited), graceful: false }; // it ended before we asked
      let forced = false;
      const timer = setTimeout(() => {
        forced = true;
        this.process.kill('SIGKILL');
      }, timeoutMs);
      this.process.kill('SIGTERM');
      const exit = await this.exited;
      clearTimeout(timer);
      return { ...exit, graceful: !forced };
    })());
  }
}
