import { HttpStatus } from '@nestjs/common';
import { LockError, type LockErrorCode } from '../common/lock.errors.js';
import { STORE_UNAVAILABLE_FOR_CLIENTS, INTERNAL_ERROR } from './etcd-lock.messages.js';

/**
 * Seconds a client is asked to wait (HTTP `Retry-After`) before it retries a request that
 * found etcd unreachable: a leader election or an etcd restart is usually over by then, and
 * the acquire itself already retried for its whole waitTimeout.
 */
export const RETRY_AFTER_SECONDS = 1;

/** What a client is told about a LockError, whatever the transport. */
export interface LockErrorAnswer {
  /** The HTTP status; RPC and WebSocket clients get it as `statusCode`. */
  readonly status: number;
  readonly code: LockErrorCode;
  readonly message: string;
  /** The lock's name, when the error is about one lock. */
  readonly key?: string;
  /** Seconds to wait before retrying (HTTP: the `Retry-After` header). */
  readonly retryAfter?: number;
}

/**
 * The one mapping of lock errors to client answers, for the interceptor and the HTTP, RPC
 * and WebSocket filters: not acquired (timeout, or held with onContention 'fail') →
 * `conflictStatus`, invalid key → 400, etcd unreachable → 503 with a retry delay (and a
 * message that does not show etcd's addresses to clients; the LockError keeps them).
 * Undefined for the others (a lost lock, a configuration error, a closed service): server
 * faults, answered as such.
 */
export function answerLockError(err: LockError, conflictStatus: number): LockErrorAnswer | undefined {
  const key = (err as { key?: string }).key;
  const answer = (status: number, message = err.message, retryAfter?: number): LockErrorAnswer => ({
    status,
    code: err.code,
    message,
    ...(key !== undefined && { key }),
    ...(retryAfter !== undefined && { retryAfter }),
  });
  switch (err.code) {
    case 'INVALID_KEY':
      return answer(HttpStatus.BAD_REQUEST);
    case 'LOCK_TIMEOUT':
    case 'LOCK_ALREADY_HELD':
      return answer(conflictStatus);
    case 'STORE_UNAVAILABLE':
    case 'ETCD_UNAVAILABLE':
    case 'REDIS_UNAVAILABLE':
      return answer(HttpStatus.SERVICE_UNAVAILABLE, STORE_UNAVAILABLE_FOR_CLIENTS(RETRY_AFTER_SECONDS), RETRY_AFTER_SECONDS);
    default:
      return undefined;
  }
}

/** What RPC and WebSocket clients get: the shape of an RpcException's or WsException's error. */
export interface LockErrorPayload {
  readonly status: 'error';
  readonly code: LockErrorCode;
  /** The HTTP status the same error gets on a route, for a gateway that forwards it. */
  readonly statusCode: number;
  readonly message: string;
  readonly key?: string;
  readonly retryAfter?: number;
}

/**
 * The payload of an answer (see answerLockError) for RPC and WebSocket clients. A server
 * fault (no answer) keeps its code and hides its message, as Nest hides an unknown error's.
 */
export function lockErrorPayload(err: LockError, answer: LockErrorAnswer | undefined): LockErrorPayload {
  if (!answer) return { status: 'error', code: err.code, statusCode: HttpStatus.INTERNAL_SERVER_ERROR, message: INTERNAL_ERROR };
  const { status, ...rest } = answer;
  return { status: 'error', statusCode: status, ...rest };
}
