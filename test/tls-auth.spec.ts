// A production etcd: client TLS with client certificates (certificates made here with
// openssl), and authentication with a user whose role only allows the lock prefix. Locks
// work with least privilege; wrong credentials and untrusted certificates fail at startup
// with an error that says which, at once rather than after retries.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync, rmSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { LockConfigurationError, LockService } from '../lib/index.js';
import { makeCertificates, type TestCertificates } from './support/certificates.js';
import { expectEtcdClean } from './support/etcd-state.js';
import { rejection } from './support/rejection.js';
import { runCli } from './support/run-cli.js';

const PREFIX = 'tls-auth-spec/';
let certs: TestCertificates;

/** Opens a service's session as Nest does at startup; resolves with the error it fails with, if any. */
async function startup(etcd: IOptions, prefix = PREFIX): Promise<{ error: unknown; ms: number }> {
  const locks = new LockService({ etcd, prefix, ttl: 2, connectTimeout: 5000 });
  const started = performance.now();
  const error = await rejection(locks.onModuleInit());
  await locks.close();
  return { error, ms: performance.now() - started };
}

beforeAll(() => {
  certs = makeCertificates();
});

afterAll(() => {
  rmSync(certs.dir, { recursive: true, force: true });
});

describe('etcd with client TLS and client certificates (mTLS)', () => {
  let etcd: EtcdHandle;
  const credentials = (ca: string, withClientCert = true) => ({
    rootCertificate: readFileSync(ca),
    ...(withClientCert && { certChain: readFileSync(certs.clientCert), privateKey: readFileSync(certs.clientKey) }),
  });

  beforeAll(async () => {
    etcd = await startEtcd({ tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } });
  });

  afterAll(async () => {
    await etcd?.stop();
  });

  it('locks work over TLS with a client certificate: two services contend, inspect, release; the CLI lists them', async () => {
    const options = { etcd: { hosts: etcd.endpoints, credentials: credentials(certs.ca) }, prefix: PREFIX, ttl: 2 };
    const a = new LockService(options);
    const b = new LockService(options);
    try {
      expect(etcd.endpoints[0]).toMatch(/^https:/);
      const held = await a.acquire('tls:1');
      const waiting = b.acquire('tls:1');
      while ((await a.getLockInfo('tls:1'))!.waiters.length === 0) await new Promise(resolve => setTimeout(resolve, 5));
      const cli = await runCli(['list', '--json', '--prefix', PREFIX, '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey], {
        ETCDCTL_ENDPOINTS: etcd.endpoints.join(','),
      });
      expect(cli.stderr.replace(/.*DeprecationWarning.*\n|.*trace-deprecation.*\n/g, '')).toBe('');
      expect(cli.code).toBe(0);
      expect((JSON.parse(cli.stdout) as { key: string; waiters: unknown[] }[]).map(l => [l.key, l.waiters.length])).toEqual([['tls:1', 1]]);
      await held.release();
      await (await waiting).release();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    const admin = new Etcd3({ hosts: etcd.endpoints, credentials: credentials(certs.ca) });
    try {
      await expectEtcdClean(admin, PREFIX);
    } finally {
      admin.close();
    }
  });

  it('an unknown CA fails at startup, at once, naming the rootCertificate to set', async () => {
    const { error, ms } = await startup({ hosts: etcd.endpoints, credentials: credentials(certs.otherCa) });
    // the class and the message together: a failure shows what etcd3 said instead
    expect({ type: (error as Error).constructor.name, message: (error as Error).message }).toEqual({
      type: LockConfigurationError.name,
      message: expect.stringMatching(/TLS certificate of etcd at https:\/\/127\.0\.0\.1:\d+ is not trusted \(.*verify.*\)\. Set etcd\.credentials\.rootCertificate/),
    });
    expect(ms).toBeLessThan(3000); // no retries until a timeout: no retry can fix it
  });

  it('no client certificate fails at startup, saying etcd refused it', async () => {
    const { error } = await startup({ hosts: etcd.endpoints, credentials: credentials(certs.ca, false) });
    expect(error).toBeInstanceOf(LockConfigurationError);
    expect((error as Error).message).toMatch(/refused our TLS client certificate .*certChain and privateKey/);
  });
});

describe('etcd with authentication, and a user allowed only the lock prefix', () => {
  let etcd: EtcdHandle;
  let root: Etcd3;
  const app = { username: 'app', password: 'app-secret' };

  beforeAll(async () => {
    etcd = await startEtcd();
    // what the etcdctl commands of docs/production.md do: root, then a role with readwrite on the prefix only
    const setup = new Etcd3({ hosts: etcd.endpoints });
    await setup.user('root').create('root-secret');
    await setup.user('root').addRole('root');
    await (await setup.role('locks').create()).grant({ permission: 'Readwrite', range: setup.range({ prefix: PREFIX }) });
    await setup.user(app.username).create(app.password);
    await setup.user(app.username).addRole('locks');
    await setup.auth.authEnable();
    setup.close();
    root = new Etcd3({ hosts: etcd.endpoints, auth: { username: 'root', password: 'root-secret' } });
  });

  afterAll(async () => {
    root?.close();
    await etcd?.stop();
  });

  it('locks work with least privilege: contention, inspection, force-unlock, close; the CLI with --user', async () => {
    const options = { etcd: { hosts: etcd.endpoints, auth: app }, prefix: PREFIX, ttl: 2 };
    const a = new LockService(options);
    const b = new LockService(options);
    try {
      await a.onModuleInit();
      const held = await a.acquire('auth:1');
      const waiting = b.acquire('auth:1');
      while ((await b.getLockInfo('auth:1'))!.waiters.length === 0) await new Promise(resolve => setTimeout(resolve, 5));
      expect((await b.getLockInfo('auth:1'))!.holder!.ttlRemaining).toBeGreaterThan(0);
      const cli = await runCli(['info', 'auth:1', '--json', '--user', 'app:app-secret', '--prefix', PREFIX], { ETCDCTL_ENDPOINTS: etcd.endpoints.join(',') });
      expect(cli.code).toBe(0);
      expect(JSON.parse(cli.stdout)).toMatchObject({ key: 'auth:1', holder: { token: held.token.toString() } });
      expect((await b.forceUnlock('auth:1')).map(h => h.token)).toEqual([held.token]);
      await (await waiting).release();
      await held.release();
    } finally {
      await Promise.all([a.close(), b.close()]); // revokes the leases: allowed, their keys are under the prefix
    }
    await expectEtcdClean(root, PREFIX);
  });

  it('a wrong password fails at startup, and an acquire fails at once (no retry can fix it), saying the credentials were rejected', async () => {
    const wrong = { hosts: etcd.endpoints, auth: { username: 'app', password: 'wrong' } };
    const { error } = await startup(wrong);
    expect(error).toBeInstanceOf(LockConfigurationError);
    expect((error as Error).message).toContain('rejected the username or password');
    const locks = new LockService({ etcd: wrong, prefix: PREFIX, ttl: 2 });
    try {
      const started = performance.now();
      const err = await rejection(locks.acquire('x', { waitTimeout: 10_000 }));
      expect(err).toBeInstanceOf(LockConfigurationError);
      expect(performance.now() - started).toBeLessThan(3000); // not retried as if etcd were down
    } finally {
      await locks.close();
    }
  });

  it('no credentials, and a prefix outside the role, each fail with the fix named', async () => {
    const none = await startup({ hosts: etcd.endpoints });
    expect((none.error as Error).message).toContain('has authentication enabled and no credentials were given');
    const outside = await startup({ hosts: etcd.endpoints, auth: app }, 'elsewhere/'); // etcd grants leases to anyone: startup checks access
    expect(outside.error).toBeInstanceOf(LockConfigurationError);
    expect((outside.error as Error).message).toContain('denied this user access to the lock prefix "elsewhere/"');
    const locks = new LockService({ etcd: { hosts: etcd.endpoints, auth: app }, prefix: 'elsewhere/', ttl: 2 });
    try {
      const err = await rejection(locks.acquire('x', { waitTimeout: 5000 }));
      expect(err).toBeInstanceOf(LockConfigurationError);
      expect((err as Error).message).toContain(`etcdctl role grant-permission <role> --prefix=true readwrite 'elsewhere/'`);
    } finally {
      await locks.close();
    }
    expect(await root.getAll().prefix('elsewhere/').keys()).toEqual([]);
    await expectEtcdClean(root, PREFIX);
  });
});
