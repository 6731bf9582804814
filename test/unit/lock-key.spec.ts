// Pure code: key validation and encoding. No etcd involved.
import { describe, expect, it } from '@jest/globals';
import { decodeLockKey, encodeLockKey, prefixEnd, queuePrefix } from '../../lib/backends/etcd/lock-key.js';
import { validateLockKey } from '../../lib/common/lock-name.js';
import { InvalidLockKeyError, MAX_LOCK_KEY_LENGTH } from '../../lib/index.js';

describe('validateLockKey', () => {
  it.each([
    ['empty', '', /empty/],
    ['a number', 42, /expected a string, got number/],
    ['undefined', undefined, /got undefined/],
    ['null', null, /got null/],
    ['over-long', 'x'.repeat(MAX_LOCK_KEY_LENGTH + 1), /513 characters, the maximum is 512/],
    ['a newline', 'order:\n1', /control character/],
    ['a NUL', 'a\u0000b', /control character/],
    ['DEL', 'a\u007fb', /control character/],
  ])('rejects %s with INVALID_KEY', (_what, key, message) => {
    const attempt = () => validateLockKey(key);
    expect(attempt).toThrow(InvalidLockKeyError);
    expect(attempt).toThrow(message);
    try {
      attempt();
    } catch (err) {
      expect((err as InvalidLockKeyError).code).toBe('INVALID_KEY');
    }
  });

  it('accepts printable text, unicode and the maximum length', () => {
    for (const key of ['order:42', 'ünïcødé 锁', 'x'.repeat(MAX_LOCK_KEY_LENGTH), 'a/b%c']) {
      expect(validateLockKey(key)).toBe(key);
    }
  });
});

describe('encodeLockKey', () => {
  it('escapes "/" and "%" so no name reaches into another name\'s queue', () => {
    expect(encodeLockKey('a/b')).toBe('a%2Fb');
    expect(encodeLockKey('100%')).toBe('100%25');
    // "a" owns the range "p/a/…"; the name "a/b" must not fall inside it
    expect(queuePrefix('p/', 'a/b').startsWith(queuePrefix('p/', 'a'))).toBe(false);
  });

  it('is injective: different names never share an encoding, and decoding restores them', () => {
    const names = ['a/b', 'a%2Fb', 'a%252Fb', 'a%', '%', '/', '%2F', 'a', 'a/', '/a'];
    const encoded = names.map(encodeLockKey);
    expect(new Set(encoded).size).toBe(names.length);
    expect(encoded.map(decodeLockKey)).toEqual(names);
    for (const e of encoded) expect(e).not.toContain('/');
  });
});

describe('prefixEnd', () => {
  it('is the first key after every key with the prefix', () => {
    expect(prefixEnd(Buffer.from('abc/')).toString()).toBe('abc0');
    expect([...prefixEnd(Buffer.from([0x61, 0xff]))]).toEqual([0x62]);
    expect([...prefixEnd(Buffer.from([0xff, 0xff]))]).toEqual([0]);
  });
});
