import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  type IBackoff,
  noop,
  retry,
} from 'cockatiel';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';

/** How long one etcd request may take before it fails (and, where safe, is retried). */
export const UNARY_CALL_TIMEOUT_MS = 5_000;

/**
 * Creates the etcd3 client a LockService owns, with fault handling fit for locks. etcd3's
 * defaults open a per-host circuit breaker for 5 s after 3 failures and back a broken watch
 * stream off up to 30 s: after a short etcd outage, releases, revocations of lost leases
 * and waiters' watches would all stall for seconds while etcd is already back. Retrying
 * is safe here because every write of the lock is idempotent (deterministic keys, guarded
 * deletes, client-chosen lease ids). Anything the caller sets in `faultHandling` wins.
 */
export function createEtcdClient(options: IOptions): Etcd3 {
  const hosts = typeof options.hosts === 'string' ? [options.hosts] : options.hosts;
  return new Etcd3({
    // a blackholed etcd (packets dropped, no reset) would otherwise hold a release until TCP gives up;
    // streams (watch, keepalive) live on, the session deadline watches over those
    defaultCallOptions: context => (context.isStream ? {} : { deadline: Date.now() + UNARY_CALL_TIMEOUT_MS }),
    ...options,
    faultHandling: {
      // a breaker only helps to skip a dead member when there is another to try
      host: () =>
        hosts.length > 1
          ? circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1_000, breaker: new ConsecutiveBreaker(3) })
          : noop,
      global: retry(handleWhen(isRecoverableError), {
        maxAttempts: 3,
        backoff: new ExponentialBackoff({ initialDelay: 25, maxDelay: 250 }),
      }),
      // etcd3 types this as an IBackoff but uses it as the factory its own default is
      watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }) as unknown as IBackoff<unknown>,
      ...options.faultHandling,
    },
  });
}

/** The part of etcd3 1.1.2's private watch manager that {@link ignoreRepliesForEndedWatches} wraps. */
interface WatchManagerInternals {
  watchers: { id: string | null }[];
  handleResponse(res: { watch_id: string; canceled: boolean }): void;
}

const WRAPPED = Symbol('nestjs-etcd-lock: late cancel replies ignored');

/**
 * etcd3 1.1.2 throws from its watch stream handler ("Failed to find watcher for
 * IWatchResponse"), which ends a default Node process, when etcd answers a cancel for a watch
 * it no longer tracks. That happens when a cancel crosses etcd's own cancel of the same watch
 * (a watch re-attached from a compacted revision after a reconnect: etcd cancels it, and still
 * answers one more cancel for its id). Nothing is lost by ignoring such a reply: the watch had
 * ended. Applied to every client a LockService uses, once; a future etcd3 without this private
 * shape is left as it is.
 */
export function ignoreRepliesForEndedWatches(client: Etcd3): void {
  const manager = (client as unknown as { watchManager?: Partial<WatchManagerInternals> & { [WRAPPED]?: true } }).watchManager;
  if (!manager || manager[WRAPPED] || typeof manager.handleResponse !== 'function' || !Array.isArray(manager.watchers)) return;
  const handleResponse = manager.handleResponse.bind(manager);
  manager.handleResponse = res => {
    if (res.canceled && !manager.watchers!.some(watcher => watcher.id === res.watch_id)) return; // a second answer for an ended watch
    handleResponse(res);
  };
  manager[WRAPPED] = true;
}
