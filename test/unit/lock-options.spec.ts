// Pure code: option defaults and validation. No etcd involved.
import { describe, expect, it } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { closestName } from '../../lib/util/closest-name.js';
import { DEFAULT_PREFIX, resolveLockOptions, validateWaitTimeout } from '../../lib/engine/lock-options.js';
import { resolveConflictStatus } from '../../lib/nest/with-lock.options.js';
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
    [{ ttl: '1.5' }, /"ttl".*whole seconds >= 1.*got "1\.5"/],
    [{ ttl: '0' }, /"ttl".*got "0"/],
    [{ ttl: '10s' }, /"ttl".*got "10s"/],
    [{ waitTimeout: '3 s' }, /"waitTimeout".*got "3 s"/],
    [{ connectTimeout: '' }, /"connectTimeout".*got ""/],
    [{ waitTimeout: -1 }, /"waitTimeout".*milliseconds >= 0.*got -1/],
    [{ waitTimeout: NaN }, /"waitTimeout".*got NaN/],
    [{ prefix: '' }, /"prefix".*non-empty/],
    [{ prefix: 'a\nb' }, /"prefix".*control characters/],
    [{ ownerId: '' }, /"ownerId"/],
    [{ backend: { connect: () => ({}) } as never, etcd: { hosts: 'h' } }, /"backend".*not both/],
    [{ backend: 'memory' as never }, /"backend".*expected a LockBackend/],
    [{ connectTimeout: Infinity }, /"connectTimeout"/],
  ])('rejects %p naming the option', (options, message) => {
    expect(configError(() => resolveLockOptions(options)).message).toMatch(message);
  });

  it('accepts whole numbers written as strings, as ConfigService and the environment give them', () => {
    const options = resolveLockOptions({ ttl: '10', waitTimeout: '3000', connectTimeout: '2000' });
    expect([options.ttl, options.waitTimeout, options.connectTimeout]).toEqual([10, 3000, 2000]);
    expect(resolveConflictStatus('423')).toBe(423);
    expect(configError(() => resolveConflictStatus('423 Locked')).message).toMatch(/"conflictStatus".*got "423 Locked"/);
  });

  it.each([
    [{ tll: 10 }, /^Unknown option "tll": did you mean "ttl"\?/],
    [{ waittimeout: 100 }, /^Unknown option "waittimeout": did you mean "waitTimeout"\?/],
    [{ conectTimeout: 100 }, /did you mean "connectTimeout"\?/],
    [{ prefx: 'app/' }, /did you mean "prefix"\?/],
    [{ banana: 1 }, /^Unknown option "banana": the options are etcd, client, backend, prefix, ttl, .*watch, logger\./],
    [{ hosts: ['127.0.0.1:2379'] }, /^Unknown option "hosts": it is an option of the etcd3 client\. Pass it inside etcd: \{ etcd: \{ hosts/],
    [{ isGlobal: true }, /^Unknown option "isGlobal": .*forRootAsync.*beside useFactory/],
  ])('refuses the unknown option %p, saying which was meant', (options, message) => {
    expect(configError(() => resolveLockOptions(options as never)).message).toMatch(message);
  });

  it('closestName: a typo within 2 edits (a swap counts as one), never a far-off name', () => {
    const known = ['ttl', 'waitTimeout', 'prefix', 'etcd'];
    expect(closestName('tll', known)).toBe('ttl');
    expect(closestName('TTL', known)).toBe('ttl');
    expect(closestName('wiatTimeout', known)).toBe('waitTimeout');
    expect(closestName('x', known)).toBeUndefined();
    expect(closestName('timeout', known)).toBeUndefined();
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
