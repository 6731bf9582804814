import { AbortScope } from './abort-scope.js';

/**
 * Calls `attempt` until it succeeds, sleeping between tries (doubling from `initialMs` up to
 * `maxMs`) while `retryIf(error)` says the failure is worth another try. Rejects with the
 * last error otherwise, or with the signal's reason once it aborts.
 */
export async function retryWithBackoff<T>(
  attempt: () => Promise<T>,
  options: { initialMs: number; maxMs: number; retryIf: (error: unknown) => boolean; signal?: AbortSignal | AbortScope },
): Promise<T> {
  for (let delay = options.initialMs; ; delay = Math.min(delay * 2, options.maxMs)) {
    options.signal?.throwIfAborted();
    try {
      return await attempt();
    } catch (err) {
      if (!options.retryIf(err)) throw err;
      // a scope makes its AbortSignal only now: most attempts succeed the first time
      await sleep(delay, options.signal instanceof AbortScope ? options.signal.signal : options.signal);
    }
  }
}

/** Resolves after `ms` (without keeping the process alive), or rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms).unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A read or an idempotent write, retried (50 ms doubling to 1 s) while `unreachable(error)` says the server did not answer. */
export function untilAnswered<T>(signal: AbortSignal, request: () => Promise<T>, unreachable: (error: unknown) => boolean): Promise<T> {
  return retryWithBackoff(request, { initialMs: 50, maxMs: 1000, signal, retryIf: unreachable });
}
