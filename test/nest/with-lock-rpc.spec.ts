// @WithLock on microservice (RPC) handlers through the module's APP_INTERCEPTOR: a real Nest
// microservice on the TCP transport (free loopback port), a real ClientProxy, a real etcd.
// Injection is explicit (@Inject) like in the fixtures.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Catch, Controller, Inject, Injectable, Module, UseFilters, type ArgumentsHost, type DynamicModule, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  BaseRpcExceptionFilter,
  ClientProxyFactory,
  MessagePattern,
  Payload,
  RpcException,
  Transport,
  type ClientProxy,
} from '@nestjs/microservices';
import { Etcd3 } from 'etcd3';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { concatMap, firstValueFrom, from, interval, lastValueFrom, map, of, take, tap, toArray, type Observable } from 'rxjs';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { Rendezvous } from '../support/rendezvous.js';
import { EtcdLockModule, InvalidLockKeyError, LockAlreadyHeldError, LockError, LockService, WithLock } from '../../lib/index.js';
import { expectEtcdClean, isInternalKey } from '../support/etcd-state.js';
import { Gate } from '../support/gate.js';

const PREFIX = 'rpc-spec/';
const DATA = 'rpc-spec-data/';
const ETCD = Symbol('ETCD');

/** A critical section as seen from inside the handler. */
interface Span {
  key: string;
  token: string;
  enter: number;
  exit: number;
}

interface PayMessage {
  id?: string;
  meet?: { group: string; parties: number }; // wait inside the critical section for the others
}

/** An unsafe read, pause, write counter in etcd (like the fixture's Ledger): only mutual exclusion keeps it exact. */
@Injectable()
class Counter {
  private readonly meetings = new Map<string, Rendezvous>();

  constructor(
    @Inject(ETCD) private readonly etcd: Etcd3,
    @Inject(LockService) private readonly locks: LockService,
  ) {}

  async increment(counter: string, meet?: PayMessage['meet']): Promise<Span> {
    const lock = this.locks.current();
    const enter = performance.now();
    const read = await this.read(counter);
    await sleep(5);
    if (meet) {
      if (!this.meetings.has(meet.group)) this.meetings.set(meet.group, new Rendezvous(meet.parties));
      await this.meetings.get(meet.group)!.arrive();
    }
    await this.etcd.put(`${DATA}${counter}`).value(String(read + 1));
    return { key: lock?.key ?? '(none)', token: String(lock?.token), enter, exit: performance.now() };
  }

  async read(counter: string): Promise<number> {
    return Number((await this.etcd.get(`${DATA}${counter}`).string()) ?? '0');
  }
}

/** Records what reaches the controller's filter, and answers the client with the error's code. */
@Catch()
class RecordingFilter extends BaseRpcExceptionFilter {
  readonly caught: unknown[] = [];

  override catch(exception: unknown, host: ArgumentsHost): Observable<unknown> {
    this.caught.push(exception);
    const code = exception instanceof LockError ? exception.code : 'UNEXPECTED';
    const message = exception instanceof Error ? exception.message : String(exception);
    return super.catch(new RpcException({ code, message }), host); // the client receives { code, message }
  }
}
const filter = new RecordingFilter();

/** Opened by the test: holds the 'stream' handler mid-stream, so the check does not race it. */
const gate = new Gate();

@Controller()
@UseFilters(filter)
class PaymentsRpcController {
  readonly runs = new Map<string, number>(); // how often each handler actually ran

  constructor(@Inject(Counter) private readonly counter: Counter) {}

  private ran(pattern: string): void {
    this.runs.set(pattern, (this.runs.get(pattern) ?? 0) + 1);
  }

  @MessagePattern('pay')
  @WithLock('order:<<id>>')
  pay(@Payload() message: PayMessage): Promise<Span> {
    this.ran('pay');
    return this.counter.increment(`paid-${message.id}`, message.meet);
  }

  @MessagePattern('pay-now')
  @WithLock('order:<<id>>', { onContention: 'fail' })
  payNow(@Payload() message: PayMessage): Promise<Span> {
    this.ran('pay-now');
    return this.counter.increment(`paid-${message.id}`);
  }

  @MessagePattern('stream')
  @WithLock('order:<<id>>')
  stream(@Payload() message: PayMessage): Observable<string> {
    this.ran('stream');
    return interval(50).pipe(
      take(3),
      concatMap(i => (i === 1 ? from(gate.passed()).pipe(map(() => i)) : of(i))), // the 2nd value waits for the gate
      map(i => `${message.id}:${i}`),
    );
  }
}

function rpcModule(endpoints: string[]): DynamicModule {
  @Module({})
  class RpcAppModule {}
  return {
    module: RpcAppModule,
    imports: [EtcdLockModule.forRoot({ etcd: { hosts: endpoints }, prefix: PREFIX, ttl: 1 })],
    controllers: [PaymentsRpcController],
    providers: [
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

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise(resolve => server.close(resolve));
  return port;
}

let etcd: EtcdHandle;
let admin: Etcd3;
let app: INestMicroservice;
let client: ClientProxy;
let locks: LockService;
let counter: Counter;
let controller: PaymentsRpcController;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoints });
  const port = await freePort();
  app = await NestFactory.createMicroservice(rpcModule(etcd.endpoints), {
    transport: Transport.TCP,
    options: { host: '127.0.0.1', port },
    logger: false,
  });
  await app.listen();
  locks = app.get(LockService);
  counter = app.get(Counter);
  controller = app.get(PaymentsRpcController);
  client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port } });
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await app?.close();
  await admin?.delete().prefix(DATA);
  admin?.close();
  await etcd?.stop();
});

const overlaps = (a: Span, b: Span) => a.enter < b.exit && b.enter < a.exit;
const send = <T>(pattern: string, data: PayMessage) => firstValueFrom(client.send<T, PayMessage>(pattern, data));
const rejection = async (promise: Promise<unknown>): Promise<unknown> => promise.then(
  value => { throw new Error(`expected a rejection, got ${JSON.stringify(value)}`); },
  (err: unknown) => err,
);

describe('@WithLock on an RPC (TCP microservice) handler', () => {
  it('serializes concurrent messages for one id: the unsafe counter stays exact, no overlap, a token each', async () => {
    const spans = await Promise.all(Array.from({ length: 10 }, () => send<Span>('pay', { id: 'o1' })));
    expect(await counter.read('paid-o1')).toBe(10);
    spans.sort((a, b) => a.enter - b.enter);
    for (let i = 1; i < spans.length; i++) expect(overlaps(spans[i - 1], spans[i])).toBe(false);
    expect(new Set(spans.map(s => s.token)).size).toBe(10); // seen through LockService.current()
    expect(spans.every(s => s.key === 'order:o1')).toBe(true);
    expect(await locks.isLocked('order:o1')).toBe(false);
  });

  it('runs messages for different ids in parallel: all are inside their critical sections at once', async () => {
    const ids = ['a', 'b', 'c', 'd'];
    // each handler, while holding its lock, waits until all four are inside: serialized handlers could never meet
    const spans = await Promise.all(ids.map(id => send<Span>('pay', { id, meet: { group: 'abcd', parties: ids.length } })));
    expect(spans.map(s => s.key)).toEqual(ids.map(id => `order:${id}`));
    for (const s of spans) for (const t of spans) if (s !== t) expect(overlaps(s, t)).toBe(true);
    for (const id of ids) expect(await counter.read(`paid-${id}`)).toBe(1);
  });

  it("rejects at once when onContention is 'fail' and the lock is held; the filter sees the typed LockAlreadyHeldError", async () => {
    const caughtBefore = filter.caught.length;
    const held = await locks.acquire('order:p1');
    let err: unknown;
    try {
      err = await rejection(send('pay-now', { id: 'p1' }));
    } finally {
      await held.release();
    }
    expect(err).toMatchObject({ code: 'LOCK_ALREADY_HELD' }); // what the filter sent over the wire
    expect(controller.runs.get('pay-now') ?? 0).toBe(0); // the handler did not run
    expect(await counter.read('paid-p1')).toBe(0);
    const caught = filter.caught.slice(caughtBefore);
    expect(caught).toHaveLength(1);
    expect(caught[0]).toBeInstanceOf(LockAlreadyHeldError); // not turned into an HttpException
    expect(caught[0]).toMatchObject({ code: 'LOCK_ALREADY_HELD', key: 'order:p1', heldBy: 'another-holder' });

    // once released, the same message goes through
    expect(await send<Span>('pay-now', { id: 'p1' })).toMatchObject({ key: 'order:p1' });
    expect(controller.runs.get('pay-now')).toBe(1);
    expect(await counter.read('paid-p1')).toBe(1);
  });

  it('rejects a payload without the key field: InvalidLockKeyError reaches the filter, the handler does not run, etcd is untouched', async () => {
    const caughtBefore = filter.caught.length;
    const runsBefore = controller.runs.get('pay');
    const revisionBefore = (await admin.getAll().prefix(PREFIX).exec()).header.revision;
    const err = await rejection(send('pay', {}));
    expect(err).toMatchObject({ code: 'INVALID_KEY' });
    expect((err as { message: string }).message).toMatch(/<<id>>/);
    const caught = filter.caught.slice(caughtBefore);
    expect(caught).toHaveLength(1);
    expect(caught[0]).toBeInstanceOf(InvalidLockKeyError);
    expect(caught[0]).toMatchObject({ code: 'INVALID_KEY' });
    expect(controller.runs.get('pay')).toBe(runsBefore);
    const after = await admin.getAll().prefix(PREFIX).exec();
    expect(after.kvs.filter(kv => !isInternalKey(kv.key))).toEqual([]);
    expect(after.header.revision).toBe(revisionBefore); // nothing was even written and deleted
    expect(await counter.read('paid-undefined')).toBe(0);
  });

  it('holds the lock of an Observable-returning handler until its stream completes', async () => {
    gate.close();
    let firstValue!: () => void;
    const midStream = new Promise<void>(resolve => (firstValue = resolve));
    const values = lastValueFrom(client.send<string, PayMessage>('stream', { id: 's1' }).pipe(tap(() => firstValue()), toArray()));
    try {
      await midStream; // the client has consumed a value; the handler is waiting at the gate
      expect(await locks.isLocked('order:s1')).toBe(true);
    } finally {
      gate.open();
    }
    expect(await values).toEqual(['s1:0', 's1:1', 's1:2']);
    let locked = true;
    for (let i = 0; i < 100 && locked; i++) {
      locked = await locks.isLocked('order:s1'); // released right after completion (asynchronously)
      if (locked) await sleep(20);
    }
    expect(locked).toBe(false);
    expect(controller.runs.get('stream')).toBe(1);
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases after the client and app are closed', async () => {
    await client.close();
    await app.close();
    await admin.delete().prefix(DATA);
    await expectEtcdClean(admin, PREFIX);
  });
});
