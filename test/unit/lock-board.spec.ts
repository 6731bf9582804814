// Pure code of the lock board: its per-lock figures, its CSRF check, its options and who a request is.
import { describe, expect, it } from '@jest/globals';
import { BoardCsrf } from '../../lib/board/board-csrf.js';
import { BoardFigures, spread } from '../../lib/board/board-figures.js';
import type { BoardEvent } from '../../lib/board/board-event.js';
import { LockConfigurationError } from '../../lib/index.js';
import { defaultActor, resolveBoardOptions } from '../../lib/nest/board/lock-board.options.js';

const event = (type: BoardEvent['type'], key: string, at: number, ms?: number): BoardEvent => ({
  id: at,
  type,
  key,
  owner: 'o',
  token: '1',
  at: new Date(at).toISOString(),
  ...(ms !== undefined && (type === 'acquired' ? { waitedMs: ms } : { heldMs: ms })),
});

describe('board figures', () => {
  it('nearest-rank percentiles of the durations, null without any', () => {
    expect(spread([])).toBeNull();
    expect(spread([5])).toEqual({ p50: 5, p95: 5, max: 5 });
    expect(spread([40, 10, 30, 20])).toEqual({ p50: 20, p95: 40, max: 40 });
    expect(spread(Array.from({ length: 100 }, (_, i) => i + 1))).toEqual({ p50: 50, p95: 95, max: 100 });
  });

  it('counts each kind of event per lock, waits from acquires, holds from ends; forgets what left the window', () => {
    const figures = new BoardFigures(60_000);
    const t = 1_000_000;
    figures.record(event('acquired', 'a', t, 100));
    figures.record(event('released', 'a', t + 10, 7));
    figures.record(event('acquired', 'a', t + 20_000, 300));
    figures.record(event('expired', 'a', t + 30_000, 2000));
    figures.record(event('forced', 'b', t + 40_000));
    figures.record(event('acquired', 'b', t + 41_000)); // found by a read: no wait known
    expect(figures.figures(() => true, t + 50_000)).toEqual({
      a: { acquired: 2, released: 1, expired: 1, forced: 0, lost: 0, waitMs: { p50: 100, p95: 300, max: 300 }, holdMs: { p50: 7, p95: 2000, max: 2000 } },
      b: { acquired: 1, released: 0, expired: 0, forced: 1, lost: 0, waitMs: null, holdMs: null },
    });
    expect(Object.keys(figures.figures(key => key === 'b', t + 50_000))).toEqual(['b']);
    // a minute after the first events: a's first acquire and release are gone
    expect(figures.figures(() => true, t + 60_015).a).toMatchObject({ acquired: 1, released: 0, waitMs: { max: 300 } });
    expect(figures.figures(() => true, t + 200_000)).toEqual({});
  });
});

describe('board CSRF', () => {
  const csrf = new BoardCsrf();
  const token = csrf.token('alice');

  it('passes the token made for the same viewer, from the same site', () => {
    expect(csrf.check('alice', { 'x-csrf-token': token, 'sec-fetch-site': 'same-origin', origin: 'http://app:3000', host: 'app:3000' })).toBeUndefined();
    expect(csrf.check('alice', { 'x-csrf-token': token })).toBeUndefined(); // a script: no browser headers
  });

  it('refuses a missing or wrong token, another viewer\'s, another site\'s request', () => {
    expect(csrf.check('alice', {})).toMatch(/x-csrf-token header is missing/);
    expect(csrf.check('alice', { 'x-csrf-token': 'x' + token.slice(1) })).toMatch(/does not match/);
    expect(csrf.check('bob', { 'x-csrf-token': token })).toMatch(/does not match/);
    expect(csrf.check('alice', { 'x-csrf-token': token, 'sec-fetch-site': 'cross-site' })).toMatch(/another site/);
    expect(csrf.check('alice', { 'x-csrf-token': token, origin: 'http://evil.test', host: 'app:3000' })).toMatch(/another origin/);
    expect(new BoardCsrf().check('alice', { 'x-csrf-token': token })).toMatch(/does not match/); // another process's key
  });
});

describe('LockBoardModule options', () => {
  it('a board without authorize or guards does not start, and says how to open it', () => {
    expect(() => resolveBoardOptions({})).toThrow(LockConfigurationError);
    expect(() => resolveBoardOptions({})).toThrow(/needs `authorize` or `guards`.*authorize: \(\) => true/s);
    expect(() => resolveBoardOptions({ guards: [] })).toThrow(/needs `authorize` or `guards`/);
  });

  it('checks each option and defaults to a read-only board at /locks over the last hour', () => {
    expect(resolveBoardOptions({ authorize: () => true })).toMatchObject({ path: 'locks', forceUnlock: false, windowMinutes: 60, lock: undefined });
    expect(() => resolveBoardOptions({ authorize: true as never })).toThrow(/"authorize": expected a function/);
    expect(() => resolveBoardOptions({ authorize: () => true, forceUnlock: 'yes' as never })).toThrow(/"forceUnlock": expected true or false/);
    expect(() => resolveBoardOptions({ authorize: () => true, windowMinutes: 0 })).toThrow(/"windowMinutes"/);
    expect(() => resolveBoardOptions({ authorize: () => true, path: 'locks?x' })).toThrow(/"path"/);
  });

  it('names a request by what Passport put in request.user, else anonymous, with its address', () => {
    expect(defaultActor({ user: { username: 'alice' }, ip: '10.0.0.7' })).toBe('alice (10.0.0.7)');
    expect(defaultActor({ user: { sub: 42 } })).toBe('42');
    expect(defaultActor({ ip: '::1' })).toBe('anonymous (::1)');
  });
});
