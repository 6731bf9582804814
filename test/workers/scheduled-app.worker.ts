// A Nest app whose @Cron / @Interval jobs and @OnEvent handler are @WithLock'ed, started with
// ScheduleModule and EventEmitterModule imported before or after EtcdLockModule (IMPORT_ORDER:
// 'integrations-first' | 'lock-first'). Each run writes one key to etcd, so the test counts
// runs per tick across processes. Env: ETCD_ENDPOINTS, LOCK_PREFIX, DATA_PREFIX, IMPORT_ORDER.
// Sends 'ready' once bootstrapped; on a { op: 'emit', id } message it emits 'order.paid'.
import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventEmitter2, EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { Cron, Interval, ScheduleModule } from '@nestjs/schedule';
import { Etcd3 } from 'etcd3';
import { EtcdLockModule, WithLock } from '../../lib/index.js';

const hosts = process.env.ETCD_ENDPOINTS!.split(',');
const data = process.env.DATA_PREFIX!;
const store = new Etcd3({ hosts });

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

  @OnEvent('order.paid', { async: true, promisify: true })
  @WithLock('order:<<0.id>>')
  async onPaid(event: { id: string }): Promise<void> {
    // an unsafe read-modify-write: exact only if the handlers of one order never overlap
    const key = `${data}paid/${event.id}`;
    const count = Number((await store.get(key).string()) ?? '0');
    await sleep(20);
    await store.put(key).value(String(count + 1));
  }
}

const integrations = [ScheduleModule.forRoot(), EventEmitterModule.forRoot()];
const lock = EtcdLockModule.forRoot({ etcd: { hosts }, prefix: process.env.LOCK_PREFIX, ttl: 1 });

@Module({
  imports: process.env.IMPORT_ORDER === 'lock-first' ? [lock, ...integrations] : [...integrations, lock],
  providers: [Jobs],
})
class AppModule {}

const app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
app.enableShutdownHooks();
const events = app.get(EventEmitter2);
process.on('message', (message: { op: 'emit'; id: string; times: number }) => {
  void Promise.all(Array.from({ length: message.times }, () => events.emitAsync('order.paid', { id: message.id }))).then(() => process.send!('emitted'));
});
process.send!('ready');
