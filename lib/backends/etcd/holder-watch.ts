import type { IKeyValue } from 'etcd3';
import { decodeOwner } from '../../common/owner-record.js';
import type { KeyWatch } from './watch-stream.js';

/** Why a holder watch stopped; a constant, as `abort()` without a reason builds a DOMException. */
const STOPPED = new Error('holder watch stopped');

/** What the holder watch asks of the attempt holding the lock (EtcdMutex), which keeps our key's state and sends every request. */
export interface HeldKey {
  /** etcd revision at which we last saw our key. */
  seenAt(): bigint;
  /** We waited for the lock and have not yet written when we got it into our key. */
  acquiredUnrecorded(): boolean;
  /** Writes when we got the lock into our key; false if the key is gone. */
  recordAcquired(signal: AbortSignal): Promise<boolean>;
  /** A watch FROM NOW for our key's deletion, with the key as it was. */
  watchDeletion(signal: AbortSignal): KeyWatch;
  /** One read: is our key still there with its revision? */
  ownKeyRemains(signal: AbortSignal): Promise<boolean>;
}

/**
 * Calls `onGone` once if our key is deleted while we hold the lock (by anyone: an admin,
 * etcdctl, lease expiry). Returns a function that stops watching.
 */
export function watchHeldKey(held: HeldKey, onGone: (forced: boolean) => void, delayMs: number): () => void {
  // made when the delay has passed: most locks end before it and never need one
  let stop: AbortController | undefined;
  const watch = async (signal: AbortSignal): Promise<void> => {
    // stopped while reading: our own release may have deleted the key; the release reports a loss itself
    const gone = async (): Promise<boolean> => !signal.aborted && !(await held.ownKeyRemains(signal)) && !signal.aborted;
    // a holder that waited records when it got the lock, which also checks that its key is still there
    if (held.acquiredUnrecorded() && !(await held.recordAcquired(signal)) && !signal.aborted) return onGone(false);
    while (!signal.aborted) {
      const watch = held.watchDeletion(signal);
      let previous: IKeyValue | undefined;
      try {
        const attachedAt = await watch.attached;
        // etcd moved on since we last saw our key (during the delay, say): it may be gone already
        if ((attachedAt === undefined || attachedAt > held.seenAt()) && (await gone())) return onGone(false);
        if (attachedAt !== undefined) previous = await watch.gone;
      } finally {
        watch.stop();
      }
      // a delete event, or trouble with the watch: read instead of trusting a resumed stream
      if (await gone()) return onGone(previous !== undefined && decodeOwner(previous.value).forcedBy !== undefined);
    }
  };
  const timer = setTimeout(() => {
    stop = new AbortController();
    void watch(stop.signal).catch(() => undefined /* stopped */);
  }, delayMs).unref();
  return () => {
    clearTimeout(timer);
    stop?.abort(STOPPED);
  };
}
