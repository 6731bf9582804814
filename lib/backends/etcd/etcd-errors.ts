import { EtcdAuthenticationFailedError, EtcdPermissionDeniedError, isRecoverableError } from 'etcd3';
import { untilAnswered } from '../../util/retry.js';
import { EtcdUnavailableError, LockConfigurationError } from '../../common/lock.errors.js';
import * as messages from '../../common/lock.messages.js';

// what grpc-js and OpenSSL say when a TLS handshake fails, on our side and on etcd's
const SERVER_NOT_TRUSTED = /unable to (verify|get (local )?issuer)|self[- ]signed certificate|certificate (has expired|is not yet valid|not trusted|signature failure)|does not match certificate|ERR_TLS_CERT/i;
const CLIENT_CERT_REFUSED = /alert (bad certificate|certificate required|unknown ca|certificate unknown|handshake failure)/i;
// what a TLS handshake gets from a plain-HTTP server: the connection closed, or bytes that are no TLS record
const PLAIN_HTTP_SERVER = /before secure TLS connection was established|wrong version number|packet length too long/i;

/**
 * A failure no retry can fix, as the configuration error that says what to change: wrong
 * credentials, missing permission on the lock prefix, or a TLS certificate one side does not
 * trust. Undefined for anything else (etcd down, a reset: worth another try).
 */
export function configurationProblem(err: unknown, hosts: string, prefix: string): LockConfigurationError | undefined {
  if (!(err instanceof Error)) return undefined;
  const detail = err.message.split('\n')[0].replace(/^\d+ [A-Z_]+: /, '');
  if (err instanceof EtcdAuthenticationFailedError) return new LockConfigurationError(messages.ETCD_AUTH_FAILED(hosts, detail), { cause: err });
  if (/user name is empty/.test(err.message)) return new LockConfigurationError(messages.ETCD_AUTH_MISSING(hosts), { cause: err });
  if (err instanceof EtcdPermissionDeniedError) return new LockConfigurationError(messages.ETCD_PERMISSION_DENIED(hosts, prefix), { cause: err });
  const tls = /Last error: (?:Error: )?(.*?)(?:\. Resolution note|$)/s.exec(err.message)?.[1]?.trim() ?? detail;
  if (SERVER_NOT_TRUSTED.test(err.message)) return new LockConfigurationError(messages.ETCD_SERVER_NOT_TRUSTED(hosts, tls), { cause: err });
  if (CLIENT_CERT_REFUSED.test(err.message)) {
    const alert = CLIENT_CERT_REFUSED.exec(err.message)![0];
    return new LockConfigurationError(messages.ETCD_CLIENT_CERT_REFUSED(hosts, `TLS ${alert}`), { cause: err });
  }
  return undefined;
}

/**
 * etcd did not answer: the error that names the endpoints, the cause without grpc-js's
 * wrapping, and the setting to check (an option, or the CLI's flag).
 */
export function unavailableError(err: unknown, hosts: string, settings = messages.OPTION_SETTINGS): EtcdUnavailableError {
  const text = err instanceof Error ? err.message : String(err);
  // a plain-HTTP etcd may also just reset a TLS client that never got connected
  const resetBeforeTls = /https:\/\//.test(hosts) && /No connection established\. Last error: (?:Error: )?read ECONNRESET/.test(text);
  if (PLAIN_HTTP_SERVER.test(text) || resetBeforeTls) return new EtcdUnavailableError(hosts, err, messages.ETCD_NOT_TLS(hosts, settings));
  return new EtcdUnavailableError(hosts, err, messages.ETCD_UNAVAILABLE(hosts, unavailableCause(text), settings));
}

/**
 * The cause in grpc-js's message: 'connect ECONNREFUSED 127.0.0.1:2379' out of '14 UNAVAILABLE:
 * No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution
 * note: ', and 'no answer within 5 s' out of a deadline exceeded.
 */
export function unavailableCause(message: string): string {
  const last = /Last error: (?:Error: )?(.*?)(?:\s*\(\d{4}-\d\d-\d\dT[^)]*\))?\.?\s*(?:Resolution note|$)/s.exec(message)?.[1].trim();
  if (last === 'null') return 'no connection could be established'; // grpc-js had not recorded why yet
  if (last) return last;
  const deadline = /Deadline exceeded after ([\d.]+)s/.exec(message)?.[1];
  if (deadline) return `no answer within ${Number(deadline).toFixed(1)} s`;
  return message.split('\n')[0].replace(/^\d+ [A-Z_]+: /, '');
}

/** A read-only transaction (a linearizable read, no Raft entry) or an idempotent write, retried while etcd is unreachable. */
export function untilEtcdAnswers<T>(signal: AbortSignal, request: () => Promise<T>): Promise<T> {
  return untilAnswered(signal, request, err => err instanceof Error && isRecoverableError(err));
}
