import 'reflect-metadata';
import './telemetry/instrumentation.js'; // first: the OpenTelemetry SDK before the lock service
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { SampleConfig } from './config/sample.config.js';

async function bootstrap(): Promise<void> {
  const config = SampleConfig.fromEnv();
  const logLevels = config.logLockEvents ? undefined : (['log', 'warn', 'error', 'fatal'] as const);
  const app = await NestFactory.create(AppModule, logLevels ? { logger: [...logLevels] } : {});
  // SIGTERM/SIGINT close the app: LockService revokes its lease, so other replicas get its locks at once
  app.enableShutdownHooks();
  await app.listen(config.port, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  new Logger('Sample').log(`replica ${config.replica} listening on http://127.0.0.1:${port} (data in etcd ${config.etcdEndpoints.join(',')}, locks in ${config.lockRedisUrl ? `Redis ${new URL(config.lockRedisUrl).host}` : 'etcd'})`);
  process.send?.({ port }); // started by the demo with an IPC channel: tell it the port (PORT=0 picks a free one)
}

bootstrap().catch((err: unknown) => {
  console.error('sample app failed to start:', err);
  process.exit(1);
});
