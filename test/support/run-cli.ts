// Runs the operator CLI (lib/cli/main.ts) as a child process, as an operator would.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EventList } from './event-list.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs the CLI with `args` and `env`, `stdin` piped in; resolves with its exit code and output. */
export function runCli(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', chunk => (stdout += chunk));
  child.stderr.on('data', chunk => (stderr += chunk));
  child.stdin.end(stdin);
  return new Promise(resolve => child.on('close', code => resolve({ code, stdout, stderr })));
}

/** A CLI command that runs until stopped (`watch`): its output lines as they come. */
export interface RunningCli {
  readonly stdout: EventList<string>;
  readonly stderr: EventList<string>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the CLI with `args` and `env`, and collects its output line by line. */
export function startCli(args: string[], env: Record<string, string>): RunningCli {
  const child = spawnCli(args, env);
  const lines = (stream: NodeJS.ReadableStream) => {
    const list = new EventList<string>();
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop()!;
      parts.forEach(line => list.push(line));
    });
    return list;
  };
  const exited = new Promise<number | null>(resolve => child.on('close', code => resolve(code)));
  return {
    stdout: lines(child.stdout),
    stderr: lines(child.stderr),
    stop: signal => {
      child.kill(signal ?? 'SIGINT');
      return exited;
    },
  };
}

function spawnCli(args: string[], env: Record<string, string>): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '', ...env } });
}
