import { describe, expect, it } from '@jest/globals';
import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortScope } from '../../lib/util/abort-scope.js';

describe('AbortScope', () => {
  it('aborts with the first of its signals to abort, and its race rejects with that reason', async () => {
    const a = new AbortController();
    const b = new AbortController();
    const scope = new AbortScope([a.signal, undefined, b.signal]);
    const raced = scope.race(new Promise(() => undefined));
    b.abort('b first');
    a.abort('a later');
    await expect(raced).rejects.toBe('b first');
    expect({ aborted: scope.aborted, reason: scope.reason, signalReason: scope.signal.reason, timedOut: scope.timedOut }).toEqual({
      aborted: true,
      reason: 'b first',
      signalReason: 'b first',
      timedOut: false,
    });
    expect(() => scope.throwIfAborted()).toThrow('b first');
  });

  it('a signal made before the abort aborts with it; one made after is born aborted', () => {
    const a = new AbortController();
    const early = new AbortScope([a.signal]);
    const signal = early.signal;
    a.abort('gone');
    expect(signal.aborted).toBe(true);
    const late = new AbortScope([a.signal]);
    expect([late.aborted, late.signal.aborted, late.signal.reason]).toEqual([true, true, 'gone']);
  });

  it('times out: timedOut is set and the race rejects', async () => {
    const scope = new AbortScope([], 10);
    await expect(scope.race(new Promise(() => undefined))).rejects.toThrow('timeout');
    expect(scope.timedOut).toBe(true);
  });

  it('a race settles with its promise when nothing aborts', async () => {
    const scope = new AbortScope([new AbortController().signal], 1_000);
    await expect(scope.race(Promise.resolve(42))).resolves.toBe(42);
    scope.dispose();
  });

  it('shares one listener per signal among all its scopes, and a disposed scope no longer follows', async () => {
    const service = new AbortController();
    const scopes = Array.from({ length: 50 }, () => new AbortScope([service.signal], 60_000));
    expect(getEventListeners(service.signal, 'abort')).toHaveLength(1);
    for (const scope of scopes.slice(0, 49)) scope.dispose();
    service.abort('closing');
    await sleep(20); // a disposed scope's timer is cleared too: none of them times out
    expect(scopes.map(scope => scope.aborted)).toEqual([...Array(49).fill(false), true]);
    expect(scopes.some(scope => scope.timedOut)).toBe(false);
  });
});
