// EtcdLockModule's warning when an app would not release its locks on SIGTERM (shutdown hooks
// not enabled), with Nest apps in child processes: they start with no SIGTERM listener, and a
// test runner's process may have its own. Real etcd (harness/etcd.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { createEtcdClient } from '../lib/backends/etcd/etcd-client.js';
import { expectEtcdClean } from './support/etcd-state.js';

const PREFIX = 'shutdown-hooks-spec/';
const worker = fileURLToPath(new URL('./workers/shutdown-hooks.worker.ts', import.meta.url));
let etcd: EtcdHandle;
let admin: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = createEtcdClient({ hosts: etcd.endpoints });
});

afterAll(async () => {
  admin?.close();
  await etcd?.stop();
});

interface Line {
  level: 'log' | 'warn' | 'error';
  message: string;
  context?: string;
}

describe('shutdown hooks', () => {

  /** Runs the worker app with `hooks`; its log lines of context EtcdLockModule, once it closed. */
  async function runApp(hooks: 'none' | 'after-init' | 'before-init'): Promise<Line[]> {
    const child = spawn(process.execPath, ['--import', 'tsx', worker], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, NODE_OPTIONS: '', ETCD_ENDPOINTS: etcd.endpoints.join(','), LOCK_PREFIX: PREFIX, HOOKS: hooks },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', chunk => (out += chunk));
    child.stderr.on('data', chunk => (err += chunk));
    const code = await new Promise(resolve => child.on('close', resolve));
    expect({ hooks, code, err }).toEqual({ hooks, code: 0, err: '' });
    const lines = out.trim().split('\n');
    expect(lines.at(-1)).toBe('closed');
    return lines
      .slice(0, -1)
      .map(line => JSON.parse(line) as Line)
      .filter(line => line.context === 'EtcdLockModule');
  }

  it('warns once at bootstrap when nothing would close the app on SIGTERM, and not when enableShutdownHooks() was called before or just after init', async () => {
    const [none, afterInit, beforeInit] = await Promise.all([runApp('none'), runApp('after-init'), runApp('before-init')]);
    expect(none.map(l => l.level)).toEqual(['log', 'warn', 'log']);
    expect(none[1].message).toMatch(/^No SIGTERM handler .* exits without releasing its locks.*app\.enableShutdownHooks\(\)/);
    for (const lines of [afterInit, beforeInit]) expect(lines.map(l => l.level)).toEqual(['log', 'log']);
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases in etcd', async () => {
    await expectEtcdClean(admin, PREFIX);
  });
});
