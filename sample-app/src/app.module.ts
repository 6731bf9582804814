import { Module } from '@nestjs/common';
import { EtcdLockModule } from 'nestjs-etcd-lock';
import { RedisBackend } from 'nestjs-etcd-lock/redis';
import { AccountsController } from './accounts/accounts.controller.js';
import { ConfigModule } from './config/config.module.js';
import { SampleConfig } from './config/sample.config.js';
import { SettlementJob } from './jobs/settlement.job.js';
import { LockEventsListener } from './locks/lock-events.listener.js';
import { OrdersController } from './orders/orders.controller.js';
import { PaymentsService } from './payments/payments.service.js';
import { StatsController } from './stats/stats.controller.js';
import { StatsService } from './stats/stats.service.js';
import { EtcdStore } from './store/etcd.store.js';

@Module({
  imports: [
    ConfigModule,
    EtcdLockModule.forRootAsync({
      isGlobal: true,
      inject: [SampleConfig],
      useFactory: (config: SampleConfig) => ({
        // locks in Redis when LOCK_REDIS_URL is set, else in etcd beside the data
        ...(config.lockRedisUrl ? { backend: new RedisBackend({ url: config.lockRedisUrl }) } : { etcd: { hosts: config.etcdEndpoints } }),
        prefix: config.lockPrefix,
        ttl: config.lockTtl,
        ownerId: config.replica, // what other replicas (and etcdctl) see as the holder
      }),
    }),
  ],
  controllers: [OrdersController, AccountsController, StatsController],
  providers: [EtcdStore, PaymentsService, SettlementJob, LockEventsListener, StatsService],
})
export class AppModule {}
