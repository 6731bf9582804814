// A Nest app in its own process (a fresh one: no SIGTERM listener of a test runner's), for the
// shutdown-hooks warning. Env: ETCD_ENDPOINTS, LOCK_PREFIX, HOOKS: 'none' (never enabled),
// 'after-init' (enableShutdownHooks() after createApplicationContext(), which runs init) or
// 'before-init' (before app.init()). Prints each log line as JSON on stdout, waits past the
// module's check, then closes the app and prints "closed".
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { LoggerService } from '@nestjs/common';
import { SHUTDOWN_HOOKS_CHECK_DELAY_MS } from '../../lib/nest/etcd-lock.constants.js';
import { EtcdLockModule } from '../../lib/index.js';

const print = (level: string) => (message: unknown, context?: unknown) => console.log(JSON.stringify({ level, message, context }));
const logger: LoggerService = { log: print('log'), warn: print('warn'), error: print('error'), debug: () => undefined, verbose: () => undefined };
const root = EtcdLockModule.forRoot({ etcd: { hosts: process.env.ETCD_ENDPOINTS!.split(',') }, prefix: process.env.LOCK_PREFIX, ttl: 2 });

async function main(): Promise<void> {
  const hooks = process.env.HOOKS;
  const app = hooks === 'before-init' ? await NestFactory.create(root, { logger }) : await NestFactory.createApplicationContext(root, { logger });
  if (hooks !== 'none') app.enableShutdownHooks();
  if (hooks === 'before-init') await app.init();
  await new Promise(resolve => setTimeout(resolve, SHUTDOWN_HOOKS_CHECK_DELAY_MS + 700));
  await app.close();
  console.log('closed');
}

main().catch((err: unknown) => {
  console.error('shutdown-hooks worker failed:', err);
  process.exit(1);
});
