// A Nest app whose methods reached through other Nest modules are @WithLock'ed: @Cron, @Interval
// and @Timeout (@nestjs/schedule), @OnEvent (@nestjs/event-emitter), a BullMQ processor
// (@nestjs/bullmq), microservice @MessagePattern / @EventPattern (TCP) and a WebSocket gateway
// (ws). The integrations are imported before or after EtcdLockModule (IMPORT_ORDER:
// 'integrations-first' | 'lock-first'). Scheduled runs write one key each, so the test counts
// runs per tick across processes; the other handlers bump a counter in etcd with an unsafe
// read-modify-write, exact only if the lock serializes them.
// Env: ETCD_ENDPOINTS, REDIS_URL, LOCK_PREFIX, DATA_PREFIX, IMPORT_ORDER, RPC_PORT, RPC_PORT_UNINTERCEPTED.
// Sends { httpPort } once listening; on { op: 'emit', id, times } it emits 'order.paid'.
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BullModule, Processor, WorkerHost } from '@nestjs/bullmq';
import { EventEmitter2, EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { EventPattern, MessagePattern, Payload, Transport } from '@nestjs/microservices';
import { WsAdapter } from '@nestjs/platform-ws';
import { Cron, Interval, ScheduleModule, Timeout } from '@nestjs/schedule';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import type { Job } from 'bullmq';
import { Etcd3 } from 'etcd3';
import { EtcdLockModule, WithLock } from '../../lib/index.js';

const hosts = process.env.ETCD_ENDPOINTS!.split(',');
const data = process.env.DATA_PREFIX!;
const store = new Etcd3({ hosts });
const redis = new URL(process.env.REDIS_URL!);

/** An unsafe increment of a counter in etcd: two overlapping runs lose one count. */
async function bump(counter: string): Promise<number> {
  const key = `${data}count/${counter}`;
  const count = Number((await store.get(key).string()) ?? '0');
  await sleep(10);
  await store.put(key).value(String(count + 1));
  return count + 1;
}

@Injectable()
class Jobs {
  @Cron('* * * * * *')
  @WithLock('job:cron', { onContention: 'skip', minHold: 900 })
  async cron(): Promise<void> {
    await store.put(`${data}cron/${Math.floor(Date.now() / 1000)}/${process.pid}`).value('ran');
  }

  @WithLock('job:interval', { onContention: 'skip', minHold: 400 })
  @Interval(500)
  async interval(): Promise<void> {
    await store.put(`${data}interval/${Math.floor(Date.now() / 500)}/${process.pid}`).value('ran');
  }

  /** Runs once in each process at startup: both run, one after the other. */
  @Timeout(100)
  @WithLock('job:timeout')
  async warmUp(): Promise<void> {
    await bump('timeout');
  }

  @OnEvent('order.paid', { async: true, promisify: true })
  @WithLock('order:<<0.id>>')
  async onPaid(event: { id: string }): Promise<void> {
    await bump(`event-${event.id}`);
  }
}

@Processor('payments', { concurrency: 5 })
class PaymentsProcessor extends WorkerHost {
  @WithLock('account:<<0.data.accountId>>')
  async process(job: Job<{ accountId: string }>): Promise<number> {
    return bump(`job-${job.data.accountId}`);
  }
}

@Controller()
class PaymentsRpcController {
  @MessagePattern('pay')
  @WithLock('order:<<id>>')
  pay(@Payload() message: { id: string }): Promise<number> {
    return bump(`rpc-${message.id}`);
  }

  /** Not locked: shows the microservice without interceptors answers at all. */
  @MessagePattern('ping')
  ping(): string {
    return 'pong';
  }

  @EventPattern('paid')
  @WithLock('order:<<id>>')
  async paid(@Payload() message: { id: string }): Promise<void> {
    await bump(`rpc-event-${message.id}`);
  }
}

@WebSocketGateway()
class PaymentsGateway {
  @SubscribeMessage('pay')
  @WithLock('order:<<body.id>>')
  async pay(@MessageBody() body: { id: string }): Promise<{ event: string; data: number }> {
    return { event: 'paid', data: await bump(`ws-${body.id}`) };
  }
}

const integrations = [
  ScheduleModule.forRoot(),
  EventEmitterModule.forRoot(),
  BullModule.forRoot({ connection: { host: redis.hostname, port: Number(redis.port) } }),
  BullModule.registerQueue({ name: 'payments' }),
];
const lock = EtcdLockModule.forRoot({ etcd: { hosts }, prefix: process.env.LOCK_PREFIX, ttl: 1 });

@Module({
  imports: process.env.IMPORT_ORDER === 'lock-first' ? [lock, ...integrations] : [...integrations, lock],
  controllers: [PaymentsRpcController],
  providers: [Jobs, PaymentsProcessor, PaymentsGateway],
})
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
app.useWebSocketAdapter(new WsAdapter(app));
// with the app's interceptors (EtcdLockModule's among them), as a hybrid app needs for @WithLock
app.connectMicroservice({ transport: Transport.TCP, options: { host: '127.0.0.1', port: Number(process.env.RPC_PORT) } }, { inheritAppConfig: true });
// without them: Nest runs no interceptor there, so a @WithLock handler must refuse to run
app.connectMicroservice({ transport: Transport.TCP, options: { host: '127.0.0.1', port: Number(process.env.RPC_PORT_UNINTERCEPTED) } });
app.enableShutdownHooks();
await app.startAllMicroservices();
await app.listen(0, '127.0.0.1');
const events = app.get(EventEmitter2);
process.on('message', (message: { op: 'emit'; id: string; times: number }) => {
  void Promise.all(Array.from({ length: message.times }, () => events.emitAsync('order.paid', { id: message.id }))).then(() => process.send!('emitted'));
});
process.send!({ httpPort: (app.getHttpServer().address() as AddressInfo).port });
