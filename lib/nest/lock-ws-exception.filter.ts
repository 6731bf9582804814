import { Catch, Inject, Logger, Optional, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import { LockError } from '../common/lock.errors.js';
import { DEFAULT_CONFLICT_STATUS } from './with-lock.options.js';
import { answerLockError, lockErrorPayload } from './lock-error.answer.js';
import { LockServiceRegistry } from './lock-service.registry.js';

/** The two kinds of gateway client: a WebSocket of `ws` (@nestjs/platform-ws), or a socket.io socket. */
interface GatewayClient {
  readyState?: unknown;
  send?(data: string): void;
  emit?(event: string, data: unknown): void;
}

/**
 * Sends WebSocket gateway clients a LockError's `code` where Nest's default filter sends
 * "Internal server error": an `exception` message whose data is `{ status: 'error', code,
 * statusCode, message, key?, retryAfter?, cause: { pattern, data } }` (a WsException's
 * shape, with the message it answers, as Nest's filter adds it), with the statuses of HTTP
 * (see LockExceptionFilter). A lock error that is a server fault keeps its code, not its
 * message, and is logged.
 *
 * Register it with `@UseFilters(LockWsExceptionFilter)` on the gateway (Nest applies no
 * global filter to gateways). It imports nothing from `@nestjs/websockets`.
 * @publicApi
 */
@Catch(LockError)
export class LockWsExceptionFilter implements WsExceptionFilter<LockError> {
  private static readonly logger = new Logger('LockWsExceptionFilter');

  @Optional()
  @Inject(LockServiceRegistry)
  private readonly registry?: LockServiceRegistry;

  catch(error: LockError, host: ArgumentsHost): void {
    const answer = answerLockError(error, this.registry?.defaultConflictStatus() ?? DEFAULT_CONFLICT_STATUS);
    if (!answer) LockWsExceptionFilter.logger.error(error);
    const ws = host.switchToWs();
    const data = { ...lockErrorPayload(error, answer), cause: { pattern: ws.getPattern?.(), data: ws.getData() } };
    const client = ws.getClient<GatewayClient>();
    // a `ws` WebSocket also has an emit(), which only reaches local listeners
    if (typeof client.readyState === 'number' && typeof client.send === 'function') client.send(JSON.stringify({ event: 'exception', data }));
    else client.emit?.('exception', data);
  }
}
