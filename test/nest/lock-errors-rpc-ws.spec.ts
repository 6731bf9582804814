// What microservice (RPC) and WebSocket clients are told about lock errors, with
// LockRpcExceptionFilter and LockWsExceptionFilter: the error's code and the status it would
// have over HTTP, where Nest's default filters say "Internal server error". A real TCP
// microservice and ClientProxy, a real gateway on the ws adapter (@nestjs/platform-ws) with
// real `ws` clients, a real etcd. Injection is explicit (@Inject) like in the fixtures.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Inject, Injectable, Module, UseFilters, type DynamicModule, type INestApplication, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, MessagePattern, Payload, Transport, type ClientProxy } from '@nestjs/microservices';
import { WsAdapter } from '@nestjs/platform-ws';
import { Test } from '@nestjs/testing';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { WebSocket } from 'ws';
import { freePorts } from '../../harness/etcd.js';
import { EtcdLockModule, LockRpcExceptionFilter, LockService, LockWsExceptionFilter, WithLock } from '../../lib/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { useEtcdAndWorkers } from '../support/worker-fixture.js';

const PREFIX = 'lock-errors-rpc-ws-spec/';
const WAIT_MS = 100;

interface Order {
  id?: string;
  seq?: number; // WebSocket: echoed in the exception's cause, to pair it with its message
}

/** Locks through LockService itself: its errors reach the filter without passing @WithLock. */
@Injectable()
class RefundsService {
  constructor(@Inject(LockService) private readonly locks: LockService) {}

  refund(id: string | undefined): Promise<string> {
    return this.locks.withLock(`order:${id}`, () => `refunded ${id}`, { waitTimeout: WAIT_MS });
  }

  /** Holds the lock while an operator force-unlocks it: LockLostError. */
  refundLost(id: string | undefined): Promise<string> {
    return this.locks.withLock(`lost:${id}`, async lock => {
      await this.locks.forceUnlock(lock.key);
      await new Promise(resolve => lock.signal.addEventListener('abort', resolve, { once: true }));
      return 'too late';
    });
  }
}

@Controller()
@UseFilters(LockRpcExceptionFilter)
class PaymentsRpcController {
  constructor(@Inject(RefundsService) private readonly refunds: RefundsService) {}

  @MessagePattern('pay-now')
  @WithLock('order:<<id>>', { onContention: 'fail' })
  payNow(@Payload() order: Order): string {
    return `paid ${order.id}`;
  }

  @MessagePattern('refund')
  refund(@Payload() order: Order): Promise<string> {
    return this.refunds.refund(order.id);
  }

  @MessagePattern('refund-lost')
  refundLost(@Payload() order: Order): Promise<string> {
    return this.refunds.refundLost(order.id);
  }
}

@WebSocketGateway()
@UseFilters(LockWsExceptionFilter)
class PaymentsGateway {
  constructor(@Inject(RefundsService) private readonly refunds: RefundsService) {}

  @SubscribeMessage('pay-now')
  @WithLock('order:<<order.id>>', { onContention: 'fail' })
  payNow(@MessageBody() order: Order): string {
    return `paid ${order.id}`;
  }

  @SubscribeMessage('refund')
  refund(@MessageBody() order: Order): Promise<string> {
    return this.refunds.refund(order.id);
  }
}

function appModule(endpoints: string[], parts: Pick<DynamicModule, 'controllers' | 'providers'>): DynamicModule {
  @Module({})
  class AppModule {}
  return {
    module: AppModule,
    imports: [EtcdLockModule.forRoot({ etcd: { hosts: endpoints }, prefix: PREFIX, ttl: 2, conflictStatus: 423 })],
    controllers: parts.controllers,
    providers: [RefundsService, ...(parts.providers ?? [])],
  };
}

const fixture = useEtcdAndWorkers(PREFIX, 1);

describe('LockRpcExceptionFilter on a TCP microservice', () => {
  let app: INestMicroservice;
  let client: ClientProxy;
  let locks: LockService;

  beforeAll(async () => {
    const [port] = await freePorts(1); // free a moment ago: the microservice listens on it
    app = await NestFactory.createMicroservice(appModule(fixture.etcd.endpoints, { controllers: [PaymentsRpcController] }), {
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
      logger: false,
    });
    await app.listen();
    locks = app.get(LockService);
    client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port } });
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    await app?.close();
  });

  /** The error the client's observable ends with. */
  const rpcError = (pattern: string, order: Order): Promise<unknown> =>
    firstValueFrom(client.send(pattern, order)).then(
      value => ({ unexpectedReply: value }),
      (err: unknown) => err,
    );

  it('sends the code, the HTTP status and the key: LOCK_ALREADY_HELD from @WithLock, LOCK_TIMEOUT from a service, at the module\'s conflictStatus', async () => {
    const held = await locks.acquire('order:7');
    let fail, timeout;
    try {
      [fail, timeout] = [await rpcError('pay-now', { id: '7' }), await rpcError('refund', { id: '7' })];
    } finally {
      await held.release();
    }
    expect(fail).toEqual({ status: 'error', code: 'LOCK_ALREADY_HELD', statusCode: 423, key: 'order:7', message: expect.stringContaining('held by another holder') });
    expect(timeout).toEqual({ status: 'error', code: 'LOCK_TIMEOUT', statusCode: 423, key: 'order:7', message: expect.stringContaining('Timed out') });
    expect(await firstValueFrom(client.send('refund', { id: '7' }))).toBe('refunded 7');
  });

  it('an invalid key is 400 with INVALID_KEY; a lost lock keeps its code but not its message, as a server fault', async () => {
    expect(await rpcError('pay-now', {})).toMatchObject({ status: 'error', code: 'INVALID_KEY', statusCode: 400, message: expect.stringMatching(/<<id>>/) });
    expect(await rpcError('refund-lost', { id: '1' })).toEqual({ status: 'error', code: 'LOCK_LOST', statusCode: 500, message: 'Internal server error' });
  });
});

describe('LockWsExceptionFilter on a gateway (ws adapter)', () => {
  let app: INestApplication;
  let socket: WebSocket;
  let locks: LockService;
  const received: { event: string; data: { cause?: { data?: Order } } }[] = [];
  let seq = 0;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [appModule(fixture.etcd.endpoints, { providers: [PaymentsGateway] })] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    app.useWebSocketAdapter(new WsAdapter(app));
    await app.listen(0, '127.0.0.1');
    locks = app.get(LockService);
    const { port } = app.getHttpServer().address() as AddressInfo;
    socket = new WebSocket(`ws://127.0.0.1:${port}`);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.on('message', raw => received.push(JSON.parse(raw.toString())));
  });

  afterAll(async () => {
    socket?.close();
    await app?.close();
  });

  /** Sends one message; resolves with the `exception` message about it (bounded: 10 s). */
  async function exceptionFor(event: string, order: Order): Promise<unknown> {
    const mine = { ...order, seq: ++seq };
    socket.send(JSON.stringify({ event, data: mine }));
    for (let waited = 0; waited < 10_000; waited += 10) {
      const reply = received.find(m => m.event === 'exception' && m.data.cause?.data?.seq === mine.seq);
      if (reply) return reply;
      await new Promise(resolve => setTimeout(resolve, 10));
    }
    throw new Error(`no exception for ${event} #${mine.seq}; received: ${JSON.stringify(received)}`);
  }

  it('sends an exception message with the code, the HTTP status, the key and the message it answers', async () => {
    const held = await locks.acquire('order:7');
    let fail, timeout;
    try {
      [fail, timeout] = [await exceptionFor('pay-now', { id: '7' }), await exceptionFor('refund', { id: '7' })];
    } finally {
      await held.release();
    }
    expect(fail).toEqual({
      event: 'exception',
      data: {
        status: 'error',
        code: 'LOCK_ALREADY_HELD',
        statusCode: 423,
        key: 'order:7',
        message: expect.stringContaining('held by another holder'),
        cause: { pattern: 'pay-now', data: { id: '7', seq: expect.any(Number) } },
      },
    });
    expect(timeout).toMatchObject({ event: 'exception', data: { code: 'LOCK_TIMEOUT', statusCode: 423, key: 'order:7', cause: { pattern: 'refund' } } });
    expect(await exceptionFor('pay-now', { id: '' })).toMatchObject({ data: { code: 'INVALID_KEY', statusCode: 400 } });
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases once the apps are closed', async () => {
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});
