// A CommonJS Nest 11 app (test/compat-nest11/app.cjs, plain JS as tsc emits it) consuming the
// library as an installed package: `npm pack`, then `npm ci` + `npm install <tarball>` in a temp
// copy of the fixture (see support/nest11-consumer.ts). Run with plain `node`, against a real etcd.
// The library is ESM; the app's require('nestjs-etcd-lock') is Node's require(esm) (>= 20.19).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { expectEtcdClean } from './support/etcd-state.js';
import { prepareNest11Consumer, typecheckConsumer, type Consumer } from './support/nest11-consumer.js';

const PREFIX = 'compat-nest11/';
const DATA = 'compat-nest11-data/';

interface Ready {
  port: number;
  nestVersion: string;
  lockPath: string;
  commonPath: string;
}
interface Paid {
  key: string | null;
  token: string | null;
  read: number;
}

let consumer: Consumer;
let etcd: EtcdHandle;
let admin: Etcd3;
let app: ChildProcess;
let ready: Ready;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

beforeAll(async () => {
  [consumer, etcd] = await Promise.all([prepareNest11Consumer(), startEtcd()]);
  admin = new Etcd3({ hosts: etcd.endpoints });
  app = fork(path.join(consumer.dir, 'app.cjs'), [], {
    cwd: consumer.dir,
    execArgv: [],
    env: { ...process.env, NODE_OPTIONS: '', ETCD_ENDPOINTS: etcd.endpoints.join(','), LOCK_PREFIX: PREFIX, DATA_PREFIX: DATA },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  exited = new Promise(resolve => app.once('exit', (code, signal) => resolve({ code, signal })));
  ready = await Promise.race([
    new Promise<Ready>(resolve => app.once('message', message => resolve(message as Ready))),
    exited.then(({ code, signal }) => Promise.reject(new Error(`app.cjs exited with ${signal ?? `code ${code}`} before it listened`))),
  ]);
}, 180_000);

afterAll(async () => {
  if (app && app.exitCode === null && app.signalCode === null) app.kill('SIGKILL');
  await admin?.delete().prefix(DATA);
  admin?.close();
  await etcd?.stop();
});

const post = async <T>(route: string): Promise<{ status: number; body: T }> => {
  const res = await fetch(`http://127.0.0.1:${ready.port}${route}`, { method: 'POST' });
  return { status: res.status, body: (await res.json()) as T };
};

describe('a CommonJS Nest 11 app using the installed package', () => {
  it('runs Nest 11 from its own node_modules, and the packed library from there too', () => {
    expect(ready.nestVersion).toMatch(/^11\./);
    expect(ready.commonPath).toBe(path.join(consumer.dir, 'node_modules', '@nestjs', 'common', 'index.js'));
    expect(ready.lockPath).toBe(path.join(consumer.dir, 'node_modules', 'nestjs-etcd-lock', 'dist', 'index.js'));
  });

  it('serializes 8 concurrent requests of one @WithLock route: exact unsafe counter, distinct tokens', async () => {
    const responses = await Promise.all(Array.from({ length: 8 }, () => post<Paid>('/orders/o1/pay')));
    expect(responses.map(r => r.status)).toEqual(Array(8).fill(201));
    expect(Number(await admin.get(`${DATA}paid-o1`).string())).toBe(8);
    // in the order the critical sections ran (each read the count its predecessor wrote)
    const paid = responses.map(r => r.body).sort((a, b) => a.read - b.read);
    expect(paid.map(p => p.read)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(paid.every(p => p.key === 'order:o1')).toBe(true);
    const tokens = paid.map(p => BigInt(p.token!));
    for (let i = 1; i < tokens.length; i++) expect(tokens[i] > tokens[i - 1]).toBe(true);
  });

  it("skips a provider method with onContention 'skip' while another call holds its lock", async () => {
    // the running call holds the lock until it has seen the other one skipped (see app.cjs)
    const results = await Promise.all([post<{ result: string | null; runs: number }>('/jobs/nightly/run'),
      post<{ result: string | null; runs: number }>('/jobs/nightly/run')]);
    expect(results.map(r => r.status)).toEqual([201, 201]);
    expect(results.map(r => r.body.result).sort()).toEqual(['nightly done', null]);
    expect(Math.max(...results.map(r => r.body.runs))).toBe(1);
  });

  it('exits with code 0 on SIGTERM (shutdown hooks) and leaves no lock keys and no lease in etcd', async () => {
    app.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    await admin.delete().prefix(DATA);
    await expectEtcdClean(admin, PREFIX);
  });
});

describe('TypeScript in a CommonJS consumer', () => {
  // nodenext: TypeScript >= 5.8 allows a CJS file to import an ES module (require(esm)); under
  // node16 (or TypeScript < 5.8) the same file fails with TS1479, as for any ESM-only package.
  it.each([
    ['module nodenext', 'tsconfig.json'],
    ['module commonjs, moduleResolution node10 (no "exports": top-level "types")', 'tsconfig.commonjs.json'],
  ])("resolves the package's types from a .cts file, with import and import = require(): %s", async (_name, project) => {
    await writeFile(path.join(consumer.dir, 'consumer.cts'), CJS_CONSUMER);
    const { code, output } = await typecheckConsumer(consumer, project);
    expect(output).toBe('');
    expect(code).toBe(0);
  }, 60_000);
});

// Compiled as CommonJS (.cts): `import … from` becomes require(), so the types must resolve
// for a require of an ESM package. Each usage is checked against the real declarations.
const CJS_CONSUMER = `import 'reflect-metadata';
import { Controller, Injectable, Module, Param, Post } from '@nestjs/common';
import { EtcdLockModule, LockService, WithLock, type LockHandle } from 'nestjs-etcd-lock';
import lockLib = require('nestjs-etcd-lock');

@Injectable()
export class Jobs {
  constructor(private readonly locks: LockService) {}

  @WithLock('job:<<0>>', { onContention: 'skip' })
  async run(name: string): Promise<string> {
    const lock: LockHandle | undefined = this.locks.current();
    return \`\${name} \${lock?.token ?? ''}\`;
  }
}

@Controller('orders')
export class Orders {
  @Post(':id/pay')
  @WithLock('order:<<id>>')
  pay(@Param('id') id: string): string {
    return id;
  }
}

@Module({ imports: [EtcdLockModule.forRoot({ etcd: { hosts: ['http://127.0.0.1:2379'] }, ttl: 1 })], controllers: [Orders], providers: [Jobs] })
export class AppModule {}

export const viaRequire: typeof LockService = lockLib.LockService;
// @ts-expect-error onContention takes 'wait' | 'fail' | 'skip': the types are real, not any
WithLock('k', { onContention: 'maybe' });
`;
