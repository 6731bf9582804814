// An etcd that cannot be reached: the first acquire fails within connectTimeout, not after
// the whole waitTimeout.
import { describe, expect, it } from '@jest/globals';
import { EtcdUnavailableError, LockService } from '../lib/index.js';
import { closedPort } from './support/ports.js';
import { rejection } from './support/rejection.js';

const PREFIX = 'unreachable-spec/';

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
  it('a closed port: the first acquire fails within about connectTimeout, not waitTimeout', async () => {
    const port = await closedPort();
    const { error, ms } = await firstAcquire(`127.0.0.1:${port}`, 1_000);
    // the class and the message together: a failure shows what was thrown instead
    expect({ type: error.constructor.name, code: (error as EtcdUnavailableError).code, message: error.message }).toEqual({
      type: EtcdUnavailableError.name,
      code: 'ETCD_UNAVAILABLE',
      message: expect.stringContaining(`etcd did not answer at 127.0.0.1:${port}`),
    });
    expect(ms).toBeLessThan(15_000); // connectTimeout 1 s (and a little); the waitTimeout is 30 s
  });
});
