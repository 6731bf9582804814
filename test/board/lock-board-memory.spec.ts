// The lock board on the in-memory backend (LockTestingModule): an app in development or a
// user's e2e test sees its own locks, events and force-unlock through the same API as on etcd.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { LockBoardModule, LockLostError, LockService } from '../../lib/index.js';
import { LockTesting, LockTestingModule } from '../../lib/testing/index.js';
import { EventList } from '../support/event-list.js';

let app: INestApplication;
let locks: LockService;
let base: string;

beforeAll(async () => {
  @Module({ imports: [LockTestingModule.forRoot(), LockBoardModule.forRoot({ authorize: () => true, forceUnlock: true })] })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  base = `${await app.getUrl()}/locks`;
  locks = app.get(LockService);
});

afterAll(async () => {
  await app?.close();
});

interface Snapshot {
  store: string;
  csrf: string;
  locks: { key: string; holders: { token: string }[]; waiters: { token: string }[] }[];
}

/** The board's event stream, its messages as they come (type and parsed data). */
async function openStream(signal: AbortSignal): Promise<EventList<{ type: string; data: { type?: string; key?: string } }>> {
  const response = await fetch(`${base}/api/events`, { signal });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const messages = new EventList<{ type: string; data: { type?: string; key?: string } }>();
  void (async () => {
    let buffer = '';
    for await (const chunk of response.body! as AsyncIterable<Uint8Array>) {
      buffer += Buffer.from(chunk).toString();
      const blocks = buffer.split('\n\n');
      buffer = blocks.pop()!;
      for (const block of blocks) {
        const field = (name: string) => block.split('\n').find(line => line.startsWith(`${name}: `))?.slice(name.length + 2);
        if (field('data')) messages.push({ type: field('event') ?? 'message', data: JSON.parse(field('data')!) });
      }
    }
  })().catch(() => undefined); // aborted at the end
  return messages;
}

describe('lock board on the in-memory backend', () => {
  it('shows holders and waiters, streams acquired and released, and force-unlock takes the lock from its holder', async () => {
    const stop = new AbortController();
    const stream = await openStream(stop.signal);
    const seen = () => `stream so far: ${JSON.stringify(stream.items)}`;
    await stream.waitFor(m => m.type === 'snapshot', 5000, seen);

    const held = await locks.acquire('order:1');
    const waiting = locks.acquire('order:1');
    await stream.waitFor(m => m.type === 'event' && m.data.type === 'acquired' && m.data.key === 'order:1', 5000, seen);

    // the waiter shows at the next reading (at most a second while a viewer is open)
    let snapshot: Snapshot | undefined;
    for (const until = Date.now() + 5000; Date.now() < until; await new Promise(r => setTimeout(r, 100))) {
      snapshot = (await (await fetch(`${base}/api/snapshot`)).json()) as Snapshot;
      if (snapshot.locks[0]?.waiters.length) break;
    }
    expect(snapshot!.store).toBe('memory');
    expect(snapshot!.locks).toEqual([expect.objectContaining({ key: 'order:1', holders: [expect.objectContaining({ token: held.token.toString() })], waiters: [expect.any(Object)] })]);

    await held.release();
    const next = await waiting;
    await stream.waitFor(m => m.type === 'event' && m.data.type === 'released' && m.data.key === 'order:1', 5000, seen);

    const unlocked = await fetch(`${base}/api/force-unlock`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': snapshot!.csrf },
      body: JSON.stringify({ key: 'order:1', token: next.token.toString(), confirm: 'order:1' }),
    });
    expect(unlocked.status).toBe(200);
    await stream.waitFor(m => m.type === 'event' && m.data.type === 'forced' && m.data.key === 'order:1', 5000, seen);
    expect(next.signal.aborted).toBe(true);
    expect(next.signal.reason).toBeInstanceOf(LockLostError);
    expect((next.signal.reason as LockLostError).reason).toBe('forced');
    stop.abort();

    const after = (await (await fetch(`${base}/api/snapshot`)).json()) as Snapshot;
    expect(after.locks).toEqual([]);
    expect(await app.get(LockTesting).info('order:1')).toBeNull();
    expect(await locks.listLocks()).toEqual([]);
  });
});
