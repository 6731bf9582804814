import type { Etcd3, IOptions } from 'etcd3';
import type { LockBackend } from './lock-backend.interface.js';
import type { LockLogger } from './lock-logger.interface.js';

/**
 * Options of `EtcdLockModule` and of `new LockService(options)`. An unknown name is refused
 * (a misspelt option would silently keep its default). The numbers may be given as strings
 * of whole numbers, as ConfigService and the environment give them ('10').
 * @publicApi
 */
export interface EtcdLockModuleOptions {
  /** etcd3 client options (hosts, auth, TLS credentials…). The service creates and closes that client. */
  etcd?: IOptions;
  /** An existing etcd3 client to reuse instead; it is never closed by this library. */
  client?: Etcd3;
  /**
   * Where locks are kept instead of etcd: `new MemoryBackend()` from `nestjs-etcd-lock/testing`
   * for unit tests, or a backend of your own (see docs/backends.md). Not with `etcd` or `client`.
   */
  backend?: LockBackend;
  /**
   * Namespace of every lock key in etcd; a trailing "/" is added when missing.
   * @default 'nestjs-etcd-lock/'
   */
  prefix?: string;
  /**
   * Session lease TTL in whole seconds: how long after a crash (or a lost connection) the
   * locks of this process stay blocked. Must be at least etcd's minimum (1.5 x its election
   * timeout, 2 s with etcd's defaults); a lower value is rejected with the minimum named.
   * @default 10
   */
  ttl?: number | string;
  /**
   * Default time in ms an acquire may wait in the queue before a LockTimeoutError; Infinity waits forever.
   * @default 30000
   */
  waitTimeout?: number | string;
  /**
   * Who holds a lock, as other processes see it (stored as the queue key's value).
   * @default `${hostname}:${pid}:${random}`
   */
  ownerId?: string;
  /**
   * Time in ms to wait for etcd when the session is opened (at startup in Nest, else the
   * first acquire) before an EtcdUnavailableError: the lease grant is retried meanwhile (an
   * etcd still starting). Refused credentials or certificates fail at once.
   * @default 5000
   */
  connectTimeout?: number | string;
  /**
   * HTTP status of a @WithLock handler that did not get its lock (onContention 'fail', or
   * 'wait' past its waitTimeout), e.g. 423; the lock exception filters use the default
   * instance's. An invalid key is always 400.
   * @default 409
   */
  conflictStatus?: number | string;
  /**
   * Also report the locks of other processes on `events$` and `@OnLockEvent`, with
   * `origin: 'remote'`: `acquired`, `released`, `expired` (the holder's lease ran out: it
   * crashed or lost etcd) and `lost` (reason 'forced': an operator force-unlocked it). `true`
   * watches every lock under the prefix; `{ prefix: 'order:' }` only the locks whose name
   * starts with 'order:'. One watch on etcd per service, resumed after a reconnect without
   * losing or repeating events. Holders that run this version or later tell an expiry from
   * a release (their lease carries a marker key).
   * @default false
   */
  watch?: boolean | { prefix?: string };
  /**
   * Where the service logs one line at startup (endpoints, prefix, TTL, lease id), a warning
   * for each lock lost (with the reason: session expired, key deleted, force-unlocked…) and one
   * line at shutdown; nothing per acquisition. `false`: nothing.
   * @default EtcdLockModule: Nest's Logger, context 'EtcdLockModule'; `new LockService()`: nothing
   */
  logger?: LockLogger | false;
}
