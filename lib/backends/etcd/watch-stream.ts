import { FilterType, type Etcd3, type IDuplexStream, type IKeyValue, type IWatchRequest, type IWatchResponse } from 'etcd3';
import { sleep } from '../../util/retry.js';
import { prefixEnd } from './lock-key.js';

/** What a watch waits for: one key's deletion (or any change), or any deletion under a prefix. */
export type WatchTarget = { readonly key: Buffer; readonly wakeOnPut: boolean; readonly withPrevious?: boolean } | { readonly prefix: Buffer };

/** A watch started by {@link WatchStream.watchFromNow}. */
export interface KeyWatch {
  /** The revision the watch starts after; undefined if it ended first. */
  readonly attached: Promise<bigint | undefined>;
  /** Resolves on the awaited event (with the key as it was before a delete, if asked for), on any watch trouble (re-read then), or on abort. */
  readonly gone: Promise<IKeyValue | undefined>;
  stop(): void;
}

/** Told what happens to a watch started by {@link WatchStream.watch}. */
export interface WatchListener {
  /** etcd answered the create: the watch sees every change after `revision`. */
  watchAttached(revision: bigint): void;
  /** Once: the awaited event (with the key as it was before a delete, if asked for), or trouble (read again). The watch has ended. */
  watchWoken(previous: IKeyValue | undefined): void;
}

/** A watch on the stream; `stop()` ends it (idempotent). */
export interface StoppableWatch {
  stop(): void;
}

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>;

/** setImmediate's callback: a function of the module, not a closure per call. */
function sendCancels(watches: WatchStream, stream: Stream): void {
  watches.sendCancels(stream);
}

/** How long a failed stream waits before the next is opened, doubling up to the maximum: a refusal does not spin. */
const REOPEN_FIRST_MS = 50;
const REOPEN_MAX_MS = 1000;

/**
 * Every holder and waiter watch of a connection, on ONE gRPC watch stream with watch ids chosen
 * here. A create goes out at once, without waiting for etcd to answer the one before (etcd3
 * attaches its watchers one round trip at a time: 10,000 held locks took 19 s), and a watch
 * stopped before etcd answered is cancelled right behind its create: etcd reads both in order.
 *
 * A watch ends at its first event. If the stream fails, every watch on it ends as if woken and
 * its owner reads the state again before it watches anew on a new stream (a resumed stream is
 * never trusted).
 */
export class WatchStream {
  private stream: Stream | undefined;
  private opening = false;
  private closed = false;
  private nextId = 1;
  /** Watches by id, until they end. */
  private readonly watches = new Map<string, StreamWatch>();
  /** Watches whose create etcd has not answered yet, oldest first: etcd answers creates in the order it reads them. */
  private unanswered: StreamWatch[] = [];
  private unansweredHead = 0;
  private reopenDelay = 0;
  /** Ids of stopped watches whose cancel is about to go out (see remove). */
  private cancels: string[] = [];

  constructor(private readonly client: Etcd3) {}

  /** Opens the stream ahead of the first watch (when a session opens): a waiter then does not wait for it. */
  open(): void {
    void this.connect();
  }

  /**
   * Watches for `target` FROM NOW. A watch from a past revision would be served by etcd's
   * catch-up loop, which runs every 100 ms, and a handoff would wait for it. The caller reads
   * once more if the watch attached after its last read.
   */
  watchFromNow(target: WatchTarget, signal: AbortSignal): KeyWatch {
    return new PromisedWatch(this, target, signal);
  }

  /**
   * {@link watchFromNow} for a listener: nothing per watch but the watch itself (a held lock
   * keeps one for as long as it is held). On a closed stream it is woken at once, after the call returns.
   */
  watch(target: WatchTarget, listener: WatchListener): StoppableWatch {
    const watch = new StreamWatch(String(this.nextId++), target, listener, this);
    if (this.closed) {
      queueMicrotask(() => watch.end(undefined));
      return watch;
    }
    this.watches.set(watch.id, watch);
    if (this.stream) this.create(this.stream, watch);
    else void this.connect();
    return watch;
  }

  /**
   * Waits for `key` to be deleted, unless etcd moved on since `seenAt`, the revision of the
   * caller's last read (the key may be gone already): then it returns at once. Either way the
   * caller reads the state again after.
   */
  async deletedSince(key: Buffer, seenAt: bigint, signal: AbortSignal): Promise<void> {
    const watch = this.watchFromNow({ key, wakeOnPut: false }, signal);
    try {
      const attachedAt = await watch.attached;
      if (attachedAt !== undefined && attachedAt <= seenAt) await watch.gone;
    } finally {
      watch.stop();
    }
    signal.throwIfAborted();
  }

  /** Ends every watch and the stream; later watches end at once. */
  close(): void {
    this.closed = true;
    this.drop(this.stream);
    this.failAll();
  }

  /** Takes `watch` off the stream (it ended, or its owner stopped it). */
  remove(watch: StreamWatch): void {
    if (!this.watches.delete(watch.id)) return;
    // cancel it, even before etcd answered its create: etcd handles the two in order
    if (watch.sent !== this.stream || !this.stream) return;
    this.cancels.push(watch.id);
    // after what the woken owner sends at once (a handoff's confirming read): its events are ignored meanwhile
    if (this.cancels.length === 1) setImmediate(sendCancels, this, this.stream);
  }

  /** The cancels of watches stopped since the last ones went out, on `stream` if it is still the stream. */
  sendCancels(stream: Stream): void {
    if (stream !== this.stream) return; // etcd ended those watches with the stream (drop() forgot their cancels)
    for (const id of this.cancels.splice(0)) stream.write({ cancel_request: { watch_id: id } });
  }

  /**
   * Opens the stream; after a failure, with a backoff. Only when a watch needs it (or a session
   * opens): on a client shared with the app, attempts in the background while etcd is down
   * would count as failures against the app's own calls (etcd3's circuit breaker).
   */
  private async connect(): Promise<void> {
    if (this.opening || this.stream || this.closed) return;
    this.opening = true;
    try {
      if (this.reopenDelay) await sleep(this.reopenDelay);
      this.reopenDelay = Math.min(REOPEN_MAX_MS, Math.max(REOPEN_FIRST_MS, this.reopenDelay * 2)); // until etcd answers on it
      const stream = await this.client.watchClient.watch();
      if (this.closed) return stream.cancel();
      this.stream = stream;
      stream.on('data', res => this.onResponse(res));
      stream.on('error', () => this.drop(stream));
      stream.on('end', () => this.drop(stream));
      for (const watch of this.watches.values()) this.create(stream, watch);
    } catch {
      this.failAll(); // etcd unreachable: the owners read (and retry) before they watch again
    } finally {
      this.opening = false;
    }
  }

  private create(stream: Stream, watch: StreamWatch): void {
    watch.sent = stream;
    this.unanswered.push(watch);
    const { target } = watch;
    // one key's deletion (or change) only: no thundering herd
    const range = 'prefix' in target ? { key: target.prefix, range_end: prefixEnd(target.prefix) } : { key: target.key };
    const filters = 'key' in target && target.wakeOnPut ? [] : [FilterType.Noput];
    stream.write({ create_request: { ...range, filters, prev_kv: 'key' in target && target.withPrevious === true, watch_id: watch.id } });
  }

  private onResponse(res: IWatchResponse): void {
    this.reopenDelay = 0;
    if (res.created) {
      const watch = this.unanswered[this.unansweredHead++];
      if (this.unansweredHead > 1024 && this.unansweredHead * 2 > this.unanswered.length) {
        this.unanswered = this.unanswered.slice(this.unansweredHead);
        this.unansweredHead = 0;
      }
      if (!watch || !this.watches.has(watch.id)) return; // stopped before etcd answered: its cancel follows
      if (!res.canceled) return watch.listener.watchAttached(BigInt(res.header.revision));
      // refused (a permission, say): the owner reads instead, which says why
      this.watches.delete(watch.id);
      return watch.end(undefined);
    }
    const watch = this.watches.get(res.watch_id);
    if (!watch) return; // stopped here already: its cancel's answer, or an event that crossed it
    if (res.canceled) {
      // ended by etcd (compacted, say): the owner reads; nothing to cancel
      this.watches.delete(watch.id);
      return watch.end(undefined);
    }
    const event = res.events[0];
    if (event) watch.end(event.type === 'Delete' ? event.prev_kv : undefined);
  }

  /** The stream failed: its watches end (their owners read again), and the next watch opens a new one. */
  private drop(stream: Stream | undefined): void {
    if (!stream || stream !== this.stream) return;
    this.stream = undefined;
    this.cancels = [];
    try {
      stream.cancel();
    } catch {
      // already closed
    }
    this.failAll();
  }

  private failAll(): void {
    this.unanswered = [];
    this.unansweredHead = 0;
    const watches = [...this.watches.values()];
    this.watches.clear();
    for (const watch of watches) watch.end(undefined);
  }
}

/** One watch on a {@link WatchStream}. */
class StreamWatch implements StoppableWatch {
  /** The stream its create went out on. */
  sent: Stream | undefined;
  private ended = false;

  constructor(
    readonly id: string,
    readonly target: WatchTarget,
    readonly listener: WatchListener,
    private readonly stream: WatchStream,
  ) {}

  /** Woken: by the event (with the key as it was, if asked for), or by trouble. */
  end(previous: IKeyValue | undefined): void {
    if (this.ended) return;
    this.stop();
    this.listener.watchWoken(previous);
  }

  stop(): void {
    this.ended = true;
    this.stream.remove(this);
  }
}

/** A watch as two promises, for a caller that awaits it (a waiter); it also ends when `signal` aborts. */
class PromisedWatch implements KeyWatch, WatchListener {
  readonly attached: Promise<bigint | undefined>;
  readonly gone: Promise<IKeyValue | undefined>;
  private onAttached!: (revision: bigint | undefined) => void;
  private onGone!: (previous: IKeyValue | undefined) => void;
  private readonly watch: StoppableWatch;
  private readonly onAbort = () => this.watchWoken(undefined);

  constructor(
    stream: WatchStream,
    target: WatchTarget,
    private readonly signal: AbortSignal,
  ) {
    this.attached = new Promise(resolve => (this.onAttached = resolve));
    this.gone = new Promise(resolve => (this.onGone = resolve));
    this.watch = stream.watch(target, this);
    if (signal.aborted) this.watchWoken(undefined);
    else signal.addEventListener('abort', this.onAbort, { once: true });
  }

  watchAttached(revision: bigint): void {
    this.onAttached(revision);
  }

  watchWoken(previous: IKeyValue | undefined): void {
    this.onAttached(undefined); // no-op once attached
    this.onGone(previous);
    this.stop();
  }

  stop(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    this.watch.stop();
  }
}
