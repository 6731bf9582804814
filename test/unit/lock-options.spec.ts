// Pure code: option defaults and validation. No etcd involved.
import { describe, expect, it } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { DEFAULT_PREFIX, resolveLockOptions, validateWaitTimeout } from '../../lib/etcd-lock.options.js';
import { LockConfigurationError } from '../../lib/index.js';

function configError(run: () => unknown): LockConfigurationError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(LockConfigurationError);
    expect((err as LockConfigurationError).code).toBe('INVALID_OPTIONS');
    return err as LockConfigurationError;
  }
  throw new Error('expected a LockConfigurationError');
}

describe('resolveLockOptions', () => {
  it('applies documented defaults', () => {
    const options = resolveLockOptions({});
    expect(options.prefix).toBe(DEFAULT_PREFIX);
    expect(options.ttl).toBe(10);
    expect(options.waitTimeout).toBe(30_000);
    expect(options.ownerId).toMatch(/^.+:\d+:[0-9a-f]{6}$/);
  });

  it('adds the missing "/" to a prefix so "app" and "app2" cannot share keys', () => {
    expect(resolveLockOptions({ prefix: 'app' }).prefix).toBe('app/');
    expect(resolveLockOptions({ prefix: 'app/' }).prefix).toBe('app/');
  });

  it.each([
    [{ ttl: 1.5 }, /"ttl".*whole seconds >= 1.*1\.5/],
    [{ ttl: 0 }, /"ttl".*got 0/],
    [{ ttl: '10' as unknown as number }, /"ttl"/],
    [{ waitTimeout: -1 }, /"waitTimeout".*milliseconds >= 0.*got -1/],
    [{ waitTimeout: NaN }, /"waitTimeout".*got NaN/],
    [{ prefix: '' }, /"prefix".*non-empty/],
    [{ prefix: 'a\nb' }, /"prefix".*control characters/],
    [{ ownerId: '' }, /"ownerId"/],
    [{ connectTimeout: Infinity }, /"connectTimeout"/],
  ])('rejects %p naming the option', (options, message) => {
    expect(configError(() => resolveLockOptions(options)).message).toMatch(message);
  });

  it('refuses both an existing client and options to create one', () => {
    const client = new Etcd3({ hosts: '127.0.0.1:1' });
    try {
      expect(configError(() => resolveLockOptions({ client, etcd: { hosts: 'x' } })).message).toMatch(/either.*not both/);
    } finally {
      client.close();
    }
  });

  it('accepts Infinity as a wait timeout (wait forever) and rejects it elsewhere', () => {
    expect(validateWaitTimeout(Infinity)).toBe(Infinity);
    expect(validateWaitTimeout(0)).toBe(0);
  });
});
