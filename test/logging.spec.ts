// What LockService and EtcdLockModule log, against a real etcd: one line at startup and at
// shutdown, a warning for each lock lost with its key and reason, an error when the session
// expires, nothing per acquisition.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcdCluster, type EtcdHandle } from '../harness/etcd.js';
import { createEtcdClient } from '../lib/backends/etcd/etcd-client.js';
import { EtcdLockModule, LockService, type EtcdLockModuleOptions, type LockLogger } from '../lib/index.js';
import { expectEtcdClean } from './support/etcd-state.js';

const PREFIX = 'logging-spec/';
let etcd: EtcdHandle;
let admin: Etcd3;
const services: LockService[] = [];

beforeAll(async () => {
  etcd = await startEtcdCluster(1); // ours: one test pauses it
  admin = createEtcdClient({ hosts: etcd.endpoints });
});

afterAll(async () => {
  await Promise.all(services.map(s => s.close()));
  admin?.close();
  await etcd?.stop();
});

interface Line {
  level: 'log' | 'warn' | 'error';
  message: string;
  context?: string;
}

/** A logger that keeps what it is told; as a Nest app's logger, also the context. */
class CapturingLogger implements LoggerService, LockLogger {
  readonly lines: Line[] = [];
  log(message: string, context?: string) {
    this.lines.push({ level: 'log', message, ...(context && { context }) });
  }
  warn(message: string, context?: string) {
    this.lines.push({ level: 'warn', message, ...(context && { context }) });
  }
  error(message: string, context?: string) {
    this.lines.push({ level: 'error', message, ...(context && { context }) });
  }
  debug() {}
  verbose() {}
}

function newService(options: EtcdLockModuleOptions): LockService {
  const service = new LockService({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 2, ...options });
  services.push(service);
  return service;
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !condition(); await sleep(10)) {
    if (Date.now() > end) throw new Error('condition not met in time');
  }
}

/** The hex ids of etcd's leases now. */
async function leasesHex(): Promise<string[]> {
  return (await admin.leaseClient.leaseLeases()).leases.map(l => BigInt(l.ID).toString(16));
}

describe('EtcdLockModule', () => {
  it("logs through Nest's Logger, context EtcdLockModule: startup, a lock force-unlocked elsewhere (key and reason), shutdown; nothing per acquisition", async () => {
    const logs = new CapturingLogger();
    const app = await NestFactory.createApplicationContext(EtcdLockModule.forRoot({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 2 }), { logger: logs });
    app.enableShutdownHooks();
    const ours = () => logs.lines.filter(l => l.context === 'EtcdLockModule');
    try {
      expect(ours()).toEqual([{ level: 'log', context: 'EtcdLockModule', message: expect.stringMatching(/^Locks on etcd at .* under prefix "logging-spec\/": session lease [0-9a-f]+, TTL 2 s\.$/) }]);
      expect(ours()[0].message).toContain(etcd.endpoints[0]);
      const lease = /session lease ([0-9a-f]+)/.exec(ours()[0].message)![1];
      expect(await leasesHex()).toContain(lease);

      const locks = app.get(LockService);
      for (let i = 0; i < 20; i++) await (await locks.acquire(`quiet:${i}`)).release();
      await (await locks.acquire('contended')).release();
      expect(ours()).toHaveLength(1); // nothing per acquisition

      const lock = await locks.acquire('order:7');
      await sleep(300); // held past 100 ms: its holder watches its key
      await newService({}).forceUnlock('order:7'); // an operator, elsewhere
      await until(() => lock.signal.aborted);
      expect(ours().slice(1)).toEqual([{ level: 'warn', context: 'EtcdLockModule', message: expect.stringContaining('Lock "order:7" was lost: an operator force-unlocked it') }]);
      expect(ours()[1].message).toMatch(new RegExp(`\\(reason 'forced', token ${lock.token}, held \\d+\\.\\d s\\)$`));

      await locks.acquire('held-at-shutdown');
      await app.close();
      expect(ours().slice(2)).toEqual([{ level: 'log', context: 'EtcdLockModule', message: `Closed: 1 held lock(s) released, session lease ${lease} revoked.` }]);
    } finally {
      await app.close();
    }
  });

  it('logs to the logger option instead, or nowhere with logger: false', async () => {
    const appLogs = new CapturingLogger();
    const own = new CapturingLogger();
    for (const logger of [own, false as const]) {
      const app = await NestFactory.createApplicationContext(EtcdLockModule.forRoot({ etcd: { hosts: etcd.endpoints }, prefix: PREFIX, ttl: 2, logger }), { logger: appLogs });
      app.enableShutdownHooks();
      await app.close();
    }
    expect(appLogs.lines.filter(l => l.context === 'EtcdLockModule')).toEqual([]);
    expect(own.lines.map(l => [l.level, l.message.split(' ')[0]])).toEqual([['log', 'Locks'], ['log', 'Closed:']]);
  });
});

describe('new LockService({ logger })', () => {
  it('logs its start at its first acquire, each lock lost with its key and reason, and its close', async () => {
    const logs = new CapturingLogger();
    const plain = newService({ logger: logs });
    expect(logs.lines).toEqual([]); // a plain service starts at its first acquire
    const lock = await plain.acquire('deleted');
    expect(logs.lines).toEqual([{ level: 'log', message: expect.stringMatching(/^Locks on etcd at .* session lease [0-9a-f]+, TTL 2 s\.$/) }]);
    await sleep(300);
    await admin.delete().prefix(`${PREFIX}deleted/`); // an admin, behind its back
    await until(() => lock.signal.aborted);
    expect(logs.lines[1]).toEqual({ level: 'warn', message: expect.stringMatching(/^Lock "deleted" was lost: its key was deleted in the lock store\..*\(reason 'key-deleted', token \d+, held \d+\.\d s\)$/) });
    await plain.close();
    expect(logs.lines.slice(2)).toEqual([{ level: 'log', message: expect.stringMatching(/^Closed: 0 held lock\(s\) released, session lease [0-9a-f]+ revoked\.$/) }]);
  });

  it('logs an error when its session expires (etcd paused past the TTL), a warning per lock lost with it, and the new session', async () => {
    if (etcd.members.length === 0) return expect(etcd.source).toBe('env');
    const logs = new CapturingLogger();
    const locks = newService({ logger: logs, ttl: 1 });
    const held = [await locks.acquire('a'), await locks.acquire('b')];
    const lease = /session lease ([0-9a-f]+)/.exec(logs.lines[0].message)![1];
    etcd.members[0].pause();
    try {
      await until(() => held.every(l => l.signal.aborted));
    } finally {
      etcd.members[0].resume();
    }
    expect(logs.lines.slice(1).map(l => l.level)).toEqual(['error', 'warn', 'warn']);
    expect(logs.lines[1].message).toMatch(new RegExp(`^Session lease ${lease} expired: no keepalive was acknowledged within its TTL of 1 s .* 2 lock\\(s\\) lost with it`));
    expect(logs.lines.slice(2).map(l => /^Lock "(\w)".*reason 'session-expired'/.exec(l.message)?.[1]).sort()).toEqual(['a', 'b']);
    await (await locks.acquire('a')).release();
    expect(logs.lines[4]).toEqual({ level: 'log', message: expect.stringMatching(/^New session lease [0-9a-f]+ \(TTL 1 s\) in place of the one that expired\.$/) });
    expect(logs.lines).toHaveLength(5);
  });

  it('refuses a logger without log, warn and error, naming the option', () => {
    expect(() => newService({ logger: { log: () => undefined } as unknown as LockLogger })).toThrow(/Invalid option "logger"/);
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases in etcd', async () => {
    await Promise.all(services.map(s => s.close()));
    await expectEtcdClean(admin, PREFIX);
  });
});
