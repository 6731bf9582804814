// The conformance suite on the in-memory backend (see lock-conformance.ts).
import { expect } from '@jest/globals';
import { MemoryBackend } from '../../lib/testing/index.js';
import { describeConformance } from './lock-conformance.js';

const backend = new MemoryBackend();
let sessionsOpen = 0;

describeConformance('memory', {
  start: async () => ({ backend }),
  expireSession: async holder => void backend.expireSessions(owner => owner === holder.owner),
  expectClean: async prefix => {
    const probe = backend.connect({ prefix, ttl: 2, connectTimeout: 1_000, ownerId: 'probe' });
    expect(await probe.list('')).toEqual([]);
    sessionsOpen = backend.expireSessions();
    expect(sessionsOpen).toBe(0); // every service closed its session
  },
  stop: async () => undefined,
});
