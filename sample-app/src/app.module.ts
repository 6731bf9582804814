import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { EtcdLockModule } from 'nestjs-etcd-lock';
import { RedisBackend } from 'nestjs-etcd-lock/redis';
import { LockHealthIndicator } from 'nestjs-etcd-lock/terminus';
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
import { HealthController } from './health/health.controller.js';
import { MetricsController } from './telemetry/metrics.controller.js';

@Module({
  imports: [
    ConfigModule,
    TerminusModule.forRoot({ logger: false }),
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
  controllers: [OrdersController, AccountsController, StatsController, HealthController, MetricsController],
  providers: [EtcdStore, PaymentsService, SettlementJob, LockEventsListener, StatsService, LockHealthIndicator],
})
export class AppModule {}
