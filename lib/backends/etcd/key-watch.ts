import type { Etcd3, IKeyValue, Watcher } from 'etcd3';

/** What a watch waits for: one key's deletion (or any change), or any deletion under a prefix. */
export type WatchTarget = { readonly key: Buffer; readonly wakeOnPut: boolean; readonly withPrevious?: boolean } | { readonly prefix: Buffer };

/** A watch started by {@link watchFromNow}. */
export interface KeyWatch {
  /** The revision the watch starts after; undefined if it ended first. */
  attached: Promise<bigint | undefined>;
  /** Resolves on the awaited event (with the key as it was before a delete, if asked for), on any watch trouble (re-read then), or on abort. */
  gone: Promise<IKeyValue | undefined>;
  stop(): void;
}

/**
 * Watches for `target` FROM NOW. A watch from a past revision would be served by etcd's
 * catch-up loop, which runs every 100 ms, and a handoff would wait for it. The caller reads
 * once more if the watch attached after its last read.
 */
export function watchFromNow(client: Etcd3, target: WatchTarget, signal: AbortSignal): KeyWatch {
  // one key's deletion (or change) only: no thundering herd
  const builder = 'prefix' in target ? client.watch().prefix(target.prefix.toString()) : client.watch().key(target.key);
  if ('key' in target && target.withPrevious) builder.withPreviousKV();
  const watcher = 'key' in target && target.wakeOnPut ? builder.watcher() : builder.only('delete').watcher();
  let onAttached!: (revision: bigint | undefined) => void;
  let onGone!: (previous?: IKeyValue) => void;
  const attached = new Promise<bigint | undefined>(resolve => (onAttached = resolve));
  const gone = new Promise<IKeyValue | undefined>(resolve => (onGone = resolve));
  const endWatch = endOnce(watcher);
  const end = (previous?: IKeyValue) => {
    onAttached(undefined); // no-op once attached
    onGone(previous);
  };
  watcher.on('connected', (res: { header: { revision: string } }) => onAttached(BigInt(res.header.revision)));
  watcher.on('delete', (_kv, previous) => end(previous));
  watcher.on('put', () => end());
  // disconnect or cancel: the caller re-reads the state
  watcher.on('disconnected', () => end());
  watcher.on('error', () => end());
  const onAbort = () => end();
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) end();
  return {
    attached,
    gone,
    stop: () => {
      signal.removeEventListener('abort', onAbort);
      endWatch();
    },
  };
}

/**
 * Waits for `key` to be deleted, unless etcd moved on since `seenAt`, the revision of the
 * caller's last read (the key may be gone already): then it returns at once. Either way the
 * caller reads the state again after.
 */
export async function deletedSince(client: Etcd3, key: Buffer, seenAt: bigint, signal: AbortSignal): Promise<void> {
  const watch = watchFromNow(client, { key, wakeOnPut: false }, signal);
  try {
    const attachedAt = await watch.attached;
    if (attachedAt !== undefined && attachedAt <= seenAt) await watch.gone;
  } finally {
    watch.stop();
  }
  signal.throwIfAborted();
}

/**
 * Takes charge of a watcher's end: the returned function removes the caller's listeners and
 * cancels the watcher, unless etcd cancelled it already (a compacted start revision, a
 * refused permission). etcd3 1.1.2 keeps the id of a watch etcd cancelled, and etcd hands
 * the same id to the next watch on a new stream: a second cancel would end that watch (an
 * app's own, on a client it shares with us) or draw a reply etcd3 throws on from its stream
 * handler ("Failed to find watcher"), which ends the process. Every watch of the library
 * ends through this.
 */
export function endOnce(watcher: Watcher): () => void {
  let cancelledByEtcd = false;
  watcher.on('error', () => (cancelledByEtcd = true));
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    watcher.removeAllListeners();
    watcher.on('error', () => undefined); // a late cancel reply must not throw
    if (!cancelledByEtcd) watcher.cancel().catch(() => undefined);
  };
}

/** How long a cancelled idle watch waits before it is replaced: a refusal does not spin. */
const IDLE_WATCH_RETRY_MS = 1000;

/**
 * Keeps etcd3's shared watch stream open with one idle watch. etcd3 cancels the stream when
 * its last watcher leaves but still reports it connected for a moment; a watch created in
 * that window only starts after a reconnect backoff (128 ms or more), which would delay a
 * handoff. If etcd cancels the idle watch (it is re-attached from a compacted revision after
 * a reconnect), a new one replaces it. Returns a function that lets the stream close.
 */
export function holdWatchStreamOpen(client: Etcd3, idleKey: string): () => void {
  let stopped = false;
  let end: () => void = () => undefined;
  let retry: NodeJS.Timeout | undefined;
  const start = () => {
    // watch a key nobody writes, from now: costs one watcher, sees no events
    const watcher = client.watch().key(idleKey).watcher();
    end = endOnce(watcher);
    watcher.on('error', () => {
      if (!stopped) retry = setTimeout(start, IDLE_WATCH_RETRY_MS).unref();
    });
  };
  start();
  return () => {
    stopped = true;
    clearTimeout(retry);
    end();
  };
}
