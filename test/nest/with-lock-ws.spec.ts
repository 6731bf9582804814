// @WithLock on WebSocket gateway handlers: Nest applies no global interceptor (our APP_INTERCEPTOR)
// to gateways, so WithLockExplorer wraps them at bootstrap. A real Nest app with the ws adapter
// (@nestjs/platform-ws) on a free loopback port, real `ws` clients, a real etcd. Keys on gateway
// methods name the method's parameters, like on providers. Injection is explicit (@Inject).
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Catch, Inject, Injectable, Module, UseFilters, type ArgumentsHost, type DynamicModule, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { WsAdapter } from '@nestjs/platform-ws';
import { BaseWsExceptionFilter, MessageBody, SubscribeMessage, WebSocketGateway, type WsResponse } from '@nestjs/websockets';
import { Etcd3 } from 'etcd3';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { concatMap, filter as where, from, interval, map, of, take, type Observable, type Subscription } from 'rxjs';
import { WebSocket } from 'ws';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { Rendezvous } from '../support/rendezvous.js';
import { EtcdLockModule, InvalidLockKeyError, LockAlreadyHeldError, LockService, WithLock, type LockEvent } from '../../lib/index.js';
import { expectEtcdClean, isInternalKey, lockKeys } from '../support/etcd-state.js';
import { Gate } from '../support/gate.js';

const PREFIX = 'ws-spec/';
const DATA = 'ws-spec-data/';
const ETCD = Symbol('ETCD');

/** A critical section as seen from inside the handler; `seq` pairs it with the message that caused it. */
interface Span {
  seq: number;
  key: string;
  token: string;
  enter: number;
  exit: number;
  lockKeys?: string[]; // with `probe`: the keys under PREFIX while inside
}

interface PayBody {
  id?: string;
  seq?: number; // echoed back, to pair replies with messages (one socket answers in any order)
  meet?: { group: string; parties: number }; // wait inside the critical section for the others
  probe?: boolean; // list the keys under PREFIX while inside
}

/** What the ws adapter sends: a handler's WsResponse, or the filter's `exception` message. */
interface WsMessage {
  event: string;
  data: unknown;
}

interface ExceptionData {
  status: string;
  message: string;
  cause?: { pattern: string; data: PayBody };
}

/** An unsafe read, pause, write counter in etcd (like the fixture's Ledger): only mutual exclusion keeps it exact. */
@Injectable()
class Counter {
  private readonly meetings = new Map<string, Rendezvous>();

  constructor(
    @Inject(ETCD) private readonly etcd: Etcd3,
    @Inject(LockService) private readonly locks: LockService,
  ) {}

  async increment(counter: string, body: PayBody): Promise<Span> {
    const lock = this.locks.current();
    const enter = performance.now();
    const keys = body.probe ? await lockKeys(this.etcd, PREFIX) : undefined;
    const read = await this.read(counter);
    await sleep(5);
    if (body.meet) {
      if (!this.meetings.has(body.meet.group)) this.meetings.set(body.meet.group, new Rendezvous(body.meet.parties));
      await this.meetings.get(body.meet.group)!.arrive();
    }
    await this.etcd.put(`${DATA}${counter}`).value(String(read + 1));
    return { seq: body.seq ?? -1, key: lock?.key ?? '(none)', token: String(lock?.token), enter, exit: performance.now(), lockKeys: keys };
  }

  async read(counter: string): Promise<number> {
    return Number((await this.etcd.get(`${DATA}${counter}`).string()) ?? '0');
  }
}

/** Records what reaches the gateway's filter; the client then gets what Nest's base filter sends. */
@Catch()
class RecordingFilter extends BaseWsExceptionFilter {
  readonly caught: unknown[] = [];

  override catch(exception: unknown, host: ArgumentsHost): void {
    this.caught.push(exception);
    super.catch(exception, host);
  }
}
const filter = new RecordingFilter();

/** Opened by the test: holds the 'stream' handler mid-stream, so the check does not race it. */
const gate = new Gate();

@WebSocketGateway()
@UseFilters(filter)
class PaymentsGateway {
  readonly runs = new Map<string, number>(); // how often each handler actually ran

  constructor(@Inject(Counter) private readonly counter: Counter) {}

  private ran(event: string): void {
    this.runs.set(event, (this.runs.get(event) ?? 0) + 1);
  }

  @SubscribeMessage('pay')
  @WithLock('order:<<body.id>>')
  async pay(@MessageBody() body: PayBody): Promise<WsResponse<Span>> {
    this.ran('pay');
    return { event: 'paid', data: await this.counter.increment(`paid-${body.id}`, body) };
  }

  @SubscribeMessage('pay-now')
  @WithLock('order:<<body.id>>', { onContention: 'fail' })
  async payNow(@MessageBody() body: PayBody): Promise<WsResponse<Span>> {
    this.ran('pay-now');
    return { event: 'paid-now', data: await this.counter.increment(`paid-${body.id}`, body) };
  }

  @SubscribeMessage('stream')
  @WithLock('order:<<body.id>>')
  stream(@MessageBody() body: PayBody): Observable<WsResponse<string>> {
    this.ran('stream');
    return interval(20).pipe(
      take(3),
      concatMap(i => (i === 1 ? from(gate.passed()).pipe(map(() => i)) : of(i))), // the 2nd value waits for the gate
      map(i => ({ event: 'streamed', data: `${body.id}:${i}` })),
    );
  }
}

function wsModule(endpoints: string[]): DynamicModule {
  @Module({})
  class WsAppModule {}
  return {
    module: WsAppModule,
    imports: [EtcdLockModule.forRoot({ etcd: { hosts: endpoints }, prefix: PREFIX, ttl: 1 })],
    providers: [
      PaymentsGateway,
      Counter,
      {
        provide: ETCD,
        useFactory: () => {
          const client = new Etcd3({ hosts: endpoints });
          return Object.assign(client, { onApplicationShutdown: () => client.close() });
        },
      },
    ],
  };
}

/** A `ws` client: sends `{ event, data }`, keeps every message it receives, waits (bounded) for one. */
class Client {
  readonly received: WsMessage[] = [];
  private readonly waiters = new Set<{ match: (m: WsMessage) => boolean; resolve: (m: WsMessage) => void }>();
  private readonly closed: Promise<void>;

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', raw => {
      const message = JSON.parse(raw.toString()) as WsMessage;
      this.received.push(message);
      for (const waiter of this.waiters) if (waiter.match(message)) waiter.resolve(message);
    });
    this.closed = new Promise(resolve => socket.once('close', () => resolve()));
  }

  static async open(url: string): Promise<Client> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));
    return new Client(socket);
  }

  send(event: string, data: PayBody): void {
    this.socket.send(JSON.stringify({ event, data }));
  }

  /** The first message (already received or still to come) that matches; rejects after 10 s rather than hang. */
  async next(match: (m: WsMessage) => boolean, what: string): Promise<WsMessage> {
    const seen = this.received.find(match);
    if (seen) return seen;
    let waiter!: { match: (m: WsMessage) => boolean; resolve: (m: WsMessage) => void };
    const arrived = new Promise<WsMessage>(resolve => (waiter = { match, resolve }));
    this.waiters.add(waiter);
    const stop = new AbortController();
    const bound = sleep(10_000, undefined, { signal: stop.signal }).then(() => {
      throw new Error(`no ${what} within 10 s; received: ${JSON.stringify(this.received)}`);
    }, () => undefined as never);
    try {
      return await Promise.race([arrived, bound]);
    } finally {
      stop.abort();
      this.waiters.delete(waiter);
    }
  }

  async close(): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) this.socket.close();
    await this.closed;
  }
}

let etcd: EtcdHandle;
let admin: Etcd3;
let app: INestApplication;
let url: string;
let clients: Client[] = [];
let locks: LockService;
let counter: Counter;
let gateway: PaymentsGateway;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
  const moduleRef = await Test.createTestingModule({ imports: [wsModule(etcd.endpoints)] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.useWebSocketAdapter(new WsAdapter(app));
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  url = `ws://127.0.0.1:${port}`;
  clients = await Promise.all([Client.open(url), Client.open(url), Client.open(url)]);
  locks = app.get(LockService);
  counter = app.get(Counter);
  gateway = app.get(PaymentsGateway);
});

afterAll(async () => {
  gate.open();
  await Promise.all(clients.map(c => c.close()));
  await app?.close();
  await admin?.delete().prefix(DATA);
  admin?.close();
  await etcd?.stop();
});

let lastSeq = 0;
const nextSeq = () => ++lastSeq;
const overlaps = (a: Span, b: Span) => a.enter < b.exit && b.enter < a.exit;
const causeOf = (m: WsMessage) => (m.event === 'exception' ? (m.data as ExceptionData).cause?.data : undefined);
/** The reply to message `seq`: its WsResponse, or the `exception` message whose cause carries it. */
const replyTo = (seq: number) => (m: WsMessage) => (m.data as Partial<Span> | null)?.seq === seq || causeOf(m)?.seq === seq;

/** Sends one message and resolves with its reply (a response or an exception), whichever comes. */
async function request(client: Client, event: string, body: PayBody): Promise<WsMessage> {
  const seq = nextSeq();
  client.send(event, { ...body, seq });
  return client.next(replyTo(seq), `reply to ${event} #${seq}`);
}

async function pay(client: Client, body: PayBody): Promise<Span> {
  const reply = await request(client, 'pay', body);
  expect(reply.event).toBe('paid');
  return reply.data as Span;
}

async function eventuallyUnlocked(key: string): Promise<boolean> {
  let locked = true;
  for (let i = 0; i < 100 && locked; i++) {
    locked = await locks.isLocked(key); // released right after completion (asynchronously)
    if (locked) await sleep(20);
  }
  return !locked;
}

describe('@WithLock on a WebSocket gateway handler (ws adapter)', () => {
  it('serializes concurrent messages for one id over three connections: the unsafe counter stays exact, no overlap, a token each', async () => {
    const spans = await Promise.all(Array.from({ length: 10 }, (_, i) => pay(clients[i % clients.length], { id: 'o1' })));
    expect(spans).toHaveLength(10); // every message answered
    expect(await counter.read('paid-o1')).toBe(10);
    expect(spans.map(s => s.key)).toEqual(Array(10).fill('order:o1')); // LockService.current() inside the handler
    expect(new Set(spans.map(s => s.token)).size).toBe(10);
    spans.sort((a, b) => a.enter - b.enter);
    for (let i = 1; i < spans.length; i++) expect(overlaps(spans[i - 1], spans[i])).toBe(false);
    expect(await eventuallyUnlocked('order:o1')).toBe(true);
  });

  it('runs messages for different ids in parallel: all are inside their critical sections at once', async () => {
    const ids = ['a', 'b', 'c', 'd'];
    // each handler, while holding its lock, waits until all four are inside: serialized handlers could never meet
    const spans = await Promise.all(ids.map((id, i) => pay(clients[i % clients.length], { id, meet: { group: 'abcd', parties: ids.length } })));
    expect(spans.map(s => s.key)).toEqual(ids.map(id => `order:${id}`));
    for (const s of spans) for (const t of spans) if (s !== t) expect(overlaps(s, t)).toBe(true);
    for (const id of ids) expect(await counter.read(`paid-${id}`)).toBe(1);
  });

  it('holds the lock of an Observable-returning handler until its stream completes', async () => {
    const [client] = clients;
    const value = (data: string) => (m: WsMessage) => m.event === 'streamed' && m.data === data;
    gate.close();
    try {
      client.send('stream', { id: 's1' });
      await client.next(value('s1:0'), 'first streamed value'); // the handler now waits at the gate
      expect(await locks.isLocked('order:s1')).toBe(true);
    } finally {
      gate.open();
    }
    await client.next(value('s1:2'), 'last streamed value');
    expect(client.received.filter(m => m.event === 'streamed').map(m => m.data)).toEqual(['s1:0', 's1:1', 's1:2']);
    expect(await eventuallyUnlocked('order:s1')).toBe(true);
    expect(gateway.runs.get('stream')).toBe(1);
  });

  it("rejects at once when onContention is 'fail' and the lock is held: the handler does not run, the filter sees LockAlreadyHeldError", async () => {
    const [client] = clients;
    const caughtBefore = filter.caught.length;
    const held = await locks.acquire('order:p1');
    let reply: WsMessage;
    try {
      reply = await request(client, 'pay-now', { id: 'p1' });
    } finally {
      await held.release();
    }
    // Nest's base filter answers an error it does not know (not a WsException) with a generic message
    expect(reply).toMatchObject({
      event: 'exception',
      data: { status: 'error', message: 'Internal server error', cause: { pattern: 'pay-now', data: { id: 'p1' } } },
    });
    expect(gateway.runs.get('pay-now') ?? 0).toBe(0); // the handler did not run
    expect(await counter.read('paid-p1')).toBe(0);
    const caught = filter.caught.slice(caughtBefore);
    expect(caught).toHaveLength(1);
    expect(caught[0]).toBeInstanceOf(LockAlreadyHeldError);
    expect(caught[0]).toMatchObject({ code: 'LOCK_ALREADY_HELD', key: 'order:p1' });

    // once released, the same message goes through
    const again = await request(client, 'pay-now', { id: 'p1' });
    expect(again).toMatchObject({ event: 'paid-now', data: { key: 'order:p1' } });
    expect(gateway.runs.get('pay-now')).toBe(1);
    expect(await counter.read('paid-p1')).toBe(1);
  });

  it('rejects a message without the key field: InvalidLockKeyError reaches the filter, the handler does not run, etcd is untouched', async () => {
    const [client] = clients;
    const caughtBefore = filter.caught.length;
    const runsBefore = gateway.runs.get('pay');
    const revisionBefore = (await admin.getAll().prefix(PREFIX).exec()).header.revision;
    const reply = await request(client, 'pay', {});
    expect(reply).toMatchObject({ event: 'exception', data: { status: 'error', cause: { pattern: 'pay' } } });
    const caught = filter.caught.slice(caughtBefore);
    expect(caught).toHaveLength(1);
    expect(caught[0]).toBeInstanceOf(InvalidLockKeyError);
    expect(caught[0]).toMatchObject({ code: 'INVALID_KEY' });
    expect((caught[0] as Error).message).toMatch(/<<body\.id>>/);
    expect(gateway.runs.get('pay')).toBe(runsBefore);
    const after = await admin.getAll().prefix(PREFIX).exec();
    expect(after.kvs.filter(kv => !isInternalKey(kv.key))).toEqual([]);
    expect(after.header.revision).toBe(revisionBefore); // nothing was even written and deleted
    expect(await counter.read('paid-undefined')).toBe(0);
  });

  it('takes the lock once per message, not twice: one queue key under the prefix while inside, one acquired event', async () => {
    const events: LockEvent[] = [];
    const subscription: Subscription = locks.events$.pipe(where(e => e.key === 'order:o6' && e.origin === 'local')).subscribe(e => events.push(e));
    let span: Span;
    try {
      span = await pay(clients[1], { id: 'o6', probe: true });
    } finally {
      subscription.unsubscribe();
    }
    expect(span.key).toBe('order:o6');
    expect(span.lockKeys).toHaveLength(1); // seen from inside the handler: only this message's queue key
    expect(span.lockKeys![0].startsWith(PREFIX)).toBe(true);
    expect(events.filter(e => e.type === 'acquired')).toHaveLength(1);
    expect(await counter.read('paid-o6')).toBe(1);
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases after the clients and app are closed', async () => {
    await Promise.all(clients.map(c => c.close()));
    await app.close();
    await admin.delete().prefix(DATA);
    await expectEtcdClean(admin, PREFIX);
  });
});
