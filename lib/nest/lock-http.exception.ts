import { HttpException, type ArgumentsHost, type HttpServer } from '@nestjs/common';
import { LockError } from '../common/lock.errors.js';
import { answerLockError } from './lock-error.answer.js';

/**
 * The HTTP answer for a lock error (see answerLockError): an HttpException with a JSON body
 * `{ statusCode, error: code, message, key }` and the LockError as its `cause`; when etcd
 * was unreachable, `setHeader` is given `Retry-After`. Other errors, and lock errors that
 * are server faults, pass unchanged.
 */
export function toHttpException(err: unknown, conflictStatus: number, setHeader: (name: string, value: string) => void = () => undefined): unknown {
  const answer = err instanceof LockError ? answerLockError(err, conflictStatus) : undefined;
  if (!answer) return err;
  if (answer.retryAfter !== undefined) setHeader('Retry-After', String(answer.retryAfter));
  const { status, code, message, key } = answer;
  return new HttpException({ statusCode: status, error: code, message, ...(key !== undefined && { key }) }, status, { cause: err });
}

/** Sets a header on the response of the HTTP request `host` is about, through the app's HTTP adapter (Express or Fastify). */
export function responseHeaderSetter(host: ArgumentsHost, adapter: HttpServer | undefined): (name: string, value: string) => void {
  return (name, value) => adapter?.setHeader(host.switchToHttp().getResponse(), name, value);
}
