import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { catchError, defer, throwError, type Observable } from 'rxjs';
import { validateWithLockOptions } from './with-lock.options.js';
import { responseHeaderSetter, toHttpException } from './lock-http.exception.js';
import { compileHandlerKey } from './lock-key.template.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockServiceRegistry } from './lock-service.registry.js';
import { underInterceptorLock } from './with-lock.method.js';
import { WithLockRunner } from './with-lock.runner.js';

/**
 * Runs @WithLock controller handlers (HTTP and microservices) under their lock; registered by
 * EtcdLockModule as APP_INTERCEPTOR, one metadata read for handlers without @WithLock.
 * WebSocket gateways are wrapped by WithLockExplorer instead.
 */
@Injectable()
export class WithLockInterceptor implements NestInterceptor {
  private readonly keys = new WeakMap<object, (context: ExecutionContext) => string>();

  constructor(
    @Inject(LockMetadataAccessor) private readonly metadata: LockMetadataAccessor,
    @Inject(WithLockRunner) private readonly runner: WithLockRunner,
    @Inject(LockServiceRegistry) private readonly registry: LockServiceRegistry,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const handler = context.getHandler();
    const lock = this.metadata.getWithLock(handler);
    // gateways are wrapped at bootstrap (Nest gives them no global interceptors): never lock twice
    if (!lock || context.getType() === 'ws') return next.handle();
    const locked = defer(() => this.runner.observe(this.keyOf(handler, context)(context), lock.options, () => underInterceptorLock(handler, () => next.handle())));
    if (context.getType() !== 'http') return locked; // RPC and WebSocket callers get the typed LockError
    const { conflictStatus } = this.registry.get(lock.options.lock, '@WithLock');
    return locked.pipe(catchError(err => throwError(() => toHttpException(err, conflictStatus, responseHeaderSetter(context, this.adapterHost.httpAdapter)))));
  }

  /** Compiles a handler's key once (the explorer already checked it at bootstrap). */
  private keyOf(handler: object, context: ExecutionContext): (context: ExecutionContext) => string {
    let key = this.keys.get(handler);
    if (!key) {
      const { key: source, options } = this.metadata.getWithLock(handler)!;
      const where = `${context.getClass().name}.${context.getHandler().name}`;
      validateWithLockOptions(options, where);
      key = compileHandlerKey(source, where, this.metadata.getHttpRoute(context.getClass(), handler));
      this.keys.set(handler, key);
    }
    return key;
  }
}
