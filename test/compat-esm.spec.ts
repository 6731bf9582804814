// An ES module consumer (test/compat-esm/main.js, "type": "module", Nest 12 in its own
// node_modules) importing the library by name from the packed tarball installed with npm (see
// support/nest11-consumer.ts): resolution through package.json "exports", run with plain `node`
// against a real etcd; and TypeScript (module nodenext) resolving the types from there.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, fork } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { expectEtcdClean } from './support/etcd-state.js';
import { prepareConsumer, typecheckConsumer, type Consumer } from './support/nest11-consumer.js';

const PREFIX = 'compat-esm/';

interface Report {
  lockPath: string;
  nestVersion: string;
  exports: Record<string, string>;
  heldToken: string;
  busy: unknown;
  againToken: string | null;
}

let consumer: Consumer;
let etcd: EtcdHandle;
let admin: Etcd3;

beforeAll(async () => {
  [consumer, etcd] = await Promise.all([prepareConsumer('compat-esm'), startEtcd()]);
  admin = new Etcd3({ hosts: etcd.endpoints });
}, 180_000);

afterAll(async () => {
  admin?.close();
  await etcd?.stop();
});

describe('an ES module consumer of the installed package', () => {
  it('imports it by name through "exports", takes and releases a lock, and exits cleanly', async () => {
    const child = fork(path.join(consumer.dir, 'main.js'), [], {
      cwd: consumer.dir,
      execArgv: [],
      env: { ...process.env, NODE_OPTIONS: '', ETCD_ENDPOINTS: etcd.endpoints.join(','), LOCK_PREFIX: PREFIX },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const reports: Report[] = [];
    child.on('message', message => reports.push(message as Report));
    const exit = await new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })));
    expect(exit).toEqual({ code: 0, signal: null }); // close() left nothing running
    expect(reports).toHaveLength(1);
    const [report] = reports;
    expect(report.lockPath).toBe(path.join(consumer.dir, 'node_modules', 'nestjs-etcd-lock', 'dist', 'index.js'));
    expect(report.nestVersion).toMatch(/^12\./);
    expect(report.exports).toEqual({ EtcdLockModule: 'function', WithLock: 'function' });
    expect(report.busy).toBeNull(); // tryAcquire while held: null, nothing queued
    expect(BigInt(report.againToken!) > BigInt(report.heldToken)).toBe(true);
    await expectEtcdClean(admin, PREFIX);
  });

  it('installs the operator CLI as node_modules/.bin/nestjs-etcd-lock, which lists locks from etcd', async () => {
    const bin = path.join(consumer.dir, 'node_modules', '.bin', 'nestjs-etcd-lock');
    const run = (args: string[]) => promisify(execFile)(bin, args, { cwd: consumer.dir, env: { ...process.env, NODE_OPTIONS: '', ETCDCTL_ENDPOINTS: etcd.endpoints.join(',') } });
    expect((await run(['--help'])).stdout).toContain('Usage: nestjs-etcd-lock <command>');
    expect((await run(['list', '--prefix', PREFIX, '--json'])).stdout.trim()).toBe('[]');
  }, 60_000);

  // skipLibCheck here: our .d.ts against Nest 11's are checked in full by compat-nest11.spec.ts
  it("resolves the package's types from an ESM .ts file (module nodenext)", async () => {
    await writeFile(path.join(consumer.dir, 'consumer.ts'), ESM_CONSUMER);
    const { code, output } = await typecheckConsumer(consumer);
    expect(output).toBe('');
    expect(code).toBe(0);
  }, 60_000);
});

const ESM_CONSUMER = `import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { EtcdLockModule, LockService, WithLock, type LockHandle } from 'nestjs-etcd-lock';

@Injectable()
export class Jobs {
  constructor(private readonly locks: LockService) {}

  @WithLock('job:<<0>>', { onContention: 'skip' })
  async run(name: string): Promise<string> {
    const lock: LockHandle | undefined = this.locks.current();
    return \`\${name} \${lock?.token ?? ''}\`;
  }
}

@Module({ imports: [EtcdLockModule.forRoot({ etcd: { hosts: ['http://127.0.0.1:2379'] } })], providers: [Jobs] })
export class AppModule {}

const locks = new LockService({ etcd: { hosts: ['http://127.0.0.1:2379'] } });
export const held: Promise<LockHandle> = locks.acquire('k');
// @ts-expect-error onContention takes 'wait' | 'fail' | 'skip': the types are real, not any
WithLock('k', { onContention: 'maybe' });
`;
