import { Catch, Inject, Logger, Optional, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { LockError } from '../common/lock.errors.js';
import { DEFAULT_CONFLICT_STATUS } from './with-lock.options.js';
import { answerLockError, lockErrorPayload, type LockErrorPayload } from './lock-error.answer.js';
import { LockServiceRegistry } from './lock-service.registry.js';

/**
 * Sends microservice (RPC) clients a LockError's `code` where Nest's default filter sends
 * "Internal server error": the client's observable errors with `{ status: 'error', code,
 * statusCode, message, key?, retryAfter? }` (an RpcException's shape), with the statuses
 * of HTTP (see LockExceptionFilter). A lock error that is a server fault keeps its code,
 * not its message, and is logged.
 *
 * Register it with `@UseFilters(LockRpcExceptionFilter)` or as APP_FILTER. It imports
 * nothing from `@nestjs/microservices`.
 * @publicApi
 */
@Catch(LockError)
export class LockRpcExceptionFilter implements RpcExceptionFilter<LockError> {
  private static readonly logger = new Logger('LockRpcExceptionFilter');

  @Optional()
  @Inject(LockServiceRegistry)
  private readonly registry?: LockServiceRegistry;

  catch(error: LockError, _host: ArgumentsHost): Observable<never> {
    const answer = answerLockError(error, this.registry?.defaultConflictStatus() ?? DEFAULT_CONFLICT_STATUS);
    if (!answer) LockRpcExceptionFilter.logger.error(error);
    const payload: LockErrorPayload = lockErrorPayload(error, answer);
    return throwError(() => payload);
  }
}
