import { Catch, Inject, Optional, type ArgumentsHost } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { LockError } from '../common/lock.errors.js';
import { DEFAULT_CONFLICT_STATUS } from './with-lock.options.js';
import { responseHeaderSetter, toHttpException } from './lock-http.exception.js';
import { LockServiceRegistry } from './lock-service.registry.js';

/**
 * Answers a LockError thrown anywhere in an HTTP request (a service calling
 * `LockService.acquire` under a route without @WithLock, say) the way @WithLock routes are
 * answered: not acquired → the module's `conflictStatus` (409), invalid key → 400, etcd
 * unreachable → 503 with `Retry-After`, each with the JSON body `{ statusCode, error: code,
 * message, key }`; other lock errors are server faults (500, logged), as Nest answers them.
 *
 * Register it with `{ provide: APP_FILTER, useClass: LockExceptionFilter }` or
 * `@UseFilters(LockExceptionFilter)`, so that it reads `conflictStatus` from the module
 * (that of the default instance when there are several).
 * @publicApi
 */
@Catch(LockError)
export class LockExceptionFilter extends BaseExceptionFilter {
  @Optional()
  @Inject(LockServiceRegistry)
  private readonly registry?: LockServiceRegistry;

  override catch(error: LockError, host: ArgumentsHost): void {
    const adapter = this.applicationRef ?? this.httpAdapterHost?.httpAdapter;
    const status = this.registry?.defaultConflictStatus() ?? DEFAULT_CONFLICT_STATUS;
    super.catch(toHttpException(error, status, responseHeaderSetter(host, adapter)), host);
  }
}
