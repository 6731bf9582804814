import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { SHUTDOWN_HOOKS_CHECK_DELAY_MS } from './etcd-lock.constants.js';
import { SHUTDOWN_HOOKS_DISABLED } from './etcd-lock.messages.js';
import { LockServiceRegistry } from './lock-service.registry.js';

/**
 * Warns once per app when stopping it would not release its locks: without a SIGTERM handler
 * (`app.enableShutdownHooks()`, or the app's own), SIGTERM ends the process before any
 * shutdown hook runs, and other replicas wait out the lease TTL. Nest does not say whether its
 * shutdown hooks are on (the app context is not injectable, and Nest 11 and 12 keep them in
 * different private fields), so this looks at what matters: the process's SIGTERM listeners.
 */
@Injectable()
export class ShutdownHooksChecker implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;

  constructor(@Inject(LockServiceRegistry) private readonly registry: LockServiceRegistry) {}

  onApplicationBootstrap(): void {
    // a moment later: enableShutdownHooks() may come after init, and an app closed by then needs no warning
    this.timer = setTimeout(() => this.check(), SHUTDOWN_HOOKS_CHECK_DELAY_MS).unref();
  }

  onModuleDestroy(): void {
    clearTimeout(this.timer);
  }

  private check(): void {
    if (process.listenerCount('SIGTERM') > 0) return;
    const logger = this.registry.all().find(instance => instance.logger)?.logger; // the first instance that logs
    try {
      logger?.warn(SHUTDOWN_HOOKS_DISABLED(SHUTDOWN_HOOKS_CHECK_DELAY_MS));
    } catch {
      // a broken logger: nothing else to tell
    }
  }
}
