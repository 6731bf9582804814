// A separate OS process running the fixture's Nest app (test/fixtures/orders.app.ts) over
// HTTP, so that @WithLock is tested across two real app instances sharing one etcd. Runs
// under tsx, which emits no decorator metadata: the fixture injects explicitly (@Inject).
// Env: ETCD_ENDPOINTS (comma-separated), LOCK_PREFIX, DATA_PREFIX. Sends { port } when listening.
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { ordersModule } from '../fixtures/orders.app.js';

const endpoints = process.env.ETCD_ENDPOINTS!.split(',');

async function main(): Promise<void> {
  const app = await NestFactory.create(
    ordersModule({ etcd: { hosts: endpoints }, prefix: process.env.LOCK_PREFIX, ttl: 1 }, endpoints, process.env.DATA_PREFIX!),
    { logger: false, abortOnError: false },
  );
  app.enableShutdownHooks(); // SIGTERM: close the app (LockService revokes its lease), then exit
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  process.send?.({ port });
}

main().catch((err: unknown) => {
  console.error('nest-app worker failed to start:', err);
  process.exit(1);
});
