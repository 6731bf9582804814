// An etcd that cannot be reached, or not the way the options say: the first acquire fails
// within connectTimeout (not after the whole waitTimeout), and the error names the endpoint
// and the real cause (a refused connection, TLS against plain HTTP), with what to change:
// the etcd.hosts option for the library, --endpoints for the CLI.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { freePorts, startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { EtcdUnavailableError, LockService } from '../lib/index.js';
import { expectEtcdClean } from './support/etcd-state.js';
import { rejection } from './support/rejection.js';
import { runCli } from './support/run-cli.js';

const PREFIX = 'unreachable-spec/';
let etcd: EtcdHandle;

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await etcd?.stop();
});

/** The first acquire of a new service on `hosts`: its error and how long it took. */
async function firstAcquire(hosts: string, connectTimeout: number): Promise<{ error: Error; ms: number }> {
  const locks = new LockService({ etcd: { hosts }, prefix: PREFIX, connectTimeout, waitTimeout: 30_000 });
  try {
    const started = performance.now();
    const error = await rejection(locks.acquire('first'));
    return { error, ms: performance.now() - started };
  } finally {
    await locks.close();
  }
}

describe('an unreachable etcd', () => {
  it('a closed port: the first acquire fails within about connectTimeout, not waitTimeout, naming the endpoint and ECONNREFUSED', async () => {
    const [port] = await freePorts(1);
    const { error, ms } = await firstAcquire(`127.0.0.1:${port}`, 1_000);
    // the class and the message together: a failure shows what was thrown instead
    expect({ type: error.constructor.name, code: (error as EtcdUnavailableError).code, message: error.message }).toEqual({
      type: EtcdUnavailableError.name,
      code: 'ETCD_UNAVAILABLE',
      message: expect.stringContaining(`etcd did not answer at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}.`),
    });
    expect(error.message).toContain('the etcd.hosts option');
    expect(error.message).not.toMatch(/deadline|name resolution/i);
    expect(ms).toBeLessThan(15_000); // connectTimeout 1 s (and a little); the waitTimeout is 30 s
  });

  it('https:// against a plain-HTTP etcd says etcd serves plain HTTP, and to use http://', async () => {
    const https = etcd.endpoints[0].replace(/^http:/, 'https:');
    const { error, ms } = await firstAcquire(https, 1_000);
    expect({ type: error.constructor.name, message: error.message }).toEqual({
      type: EtcdUnavailableError.name,
      message: expect.stringMatching(new RegExp(`^etcd at ${https} .*TLS.*plain HTTP.*http:// in the etcd\\.hosts option`)),
    });
    expect(ms).toBeLessThan(15_000);
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await expectEtcdClean(admin, PREFIX);
    } finally {
      admin.close();
    }
  });

  it('the CLI says the same with --endpoints instead of the etcd.hosts option', async () => {
    const [port] = await freePorts(1);
    const refused = await runCli(['list'], { ETCDCTL_ENDPOINTS: `127.0.0.1:${port}` });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`etcd did not answer at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}.`);
    expect(refused.stderr).toContain('--endpoints');
    expect(refused.stderr).not.toContain('etcd.hosts');
    const https = etcd.endpoints[0].replace(/^http:/, 'https:');
    const tls = await runCli(['list', '--prefix', PREFIX], { ETCDCTL_ENDPOINTS: https });
    expect(tls.code).toBe(1);
    expect(tls.stderr).toMatch(/plain HTTP.*http:\/\/ in --endpoints/);
    expect(tls.stderr).not.toContain('etcd.hosts');
  });
});
