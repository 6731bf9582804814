import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { prefixEnd } from './lock-key.js';
import type { LockChange, LockWatch } from '../../interfaces/lock-backend.interface.js';
import { LockTable } from './lock-table.js';
import { sleep } from '../../util/retry.js';

/** Keys per range read of the initial load (and of a resync): keeps each response small. */
const PAGE = 1000;

/**
 * Watches every lock under a prefix, whichever process holds it, and reports holder changes
 * (acquired, released, expired, force-unlocked) once each, in revision order.
 *
 * It reads the prefix, then watches from the revision after that read, applying one revision
 * at a time to a {@link LockTable}. It counts the revisions it applied itself: after a
 * disconnect it starts a new watch from the last applied revision + 1, so etcd replays exactly
 * what was missed (etcd3's own resume can skip events, and DESIGN §3 rule 3 says never trust
 * a resumed stream). If etcd compacted those revisions, it reads the prefix again and reports
 * the difference.
 */
export class ClusterWatch implements LockWatch {
  /** Resolves once the first read is done and the watch attached; rejects with the first failure (retries go on). */
  readonly ready: Promise<void>;
  private readonly table: LockTable;
  /** The last revision applied to the table. */
  private revision = 0n;
  /** Ends the current watcher (see endOnce). */
  private endWatcher: (() => void) | undefined;
  private readonly stopped = new AbortController();
  private wake: (() => void) | undefined;
  private trouble: 'disconnected' | 'cancelled' | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    namePrefix: string,
    private readonly onChanges: (changes: LockChange[]) => void,
    /** Whether an error before the first start is worth another try (etcd unreachable), or ends the watch (refused). */
    private readonly retryable: (err: unknown) => boolean,
  ) {
    this.table = new LockTable(prefix, namePrefix);
    this.ready = this.attach();
    this.ready.catch(() => undefined); // the caller learns from ready; keepWatching retries
    void this.keepWatching();
  }

  /** Stops watching; no change is reported after. */
  stop(): void {
    this.stopped.abort();
    this.wake?.();
    this.drop();
  }

  /**
   * Waits for trouble, then resumes (or reloads), with backoff while etcd is away, until
   * stopped. A refusal before the first start ends it (ready reports it); a later one is
   * retried too, as an operator may restore the permission.
   */
  private async keepWatching(): Promise<void> {
    let attaching = this.ready;
    let started = false;
    let backoffMs = 100;
    while (!this.stopped.signal.aborted) {
      try {
        await attaching;
        started = true;
        backoffMs = 100;
        await this.nextTrouble();
      } catch (err) {
        if (!started && !this.retryable(err)) return;
        await sleep(backoffMs, this.stopped.signal).catch(() => undefined);
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
      if (this.stopped.signal.aborted) return;
      attaching = this.attach();
    }
  }

  /**
   * Loads the table when it has to (the first time; after etcd cancelled the watch, which it
   * does when the revisions to resume from are compacted), then watches from the revision
   * after the last one applied.
   */
  private async attach(): Promise<void> {
    if (this.revision === 0n || this.trouble === 'cancelled') {
      const { kvs, revision } = await this.readAll();
      if (this.stopped.signal.aborted) return; // stopped while reading: no watch, no report
      const changes = this.table.reset(kvs, this.revision !== 0n);
      this.revision = revision;
      this.trouble = undefined;
      if (changes.length > 0) this.onChanges(changes);
    }
    await this.watchFrom(this.revision + 1n);
  }

  /** Resolves on the watch's next trouble (or at stop). */
  private nextTrouble(): Promise<'disconnected' | 'cancelled' | undefined> {
    if (this.trouble) return Promise.resolve(this.trouble);
    return new Promise(resolve => (this.wake = () => resolve(this.trouble)));
  }

  private report(trouble: 'disconnected' | 'cancelled'): void {
    if (this.trouble !== 'cancelled') this.trouble = trouble;
    this.wake?.();
    this.wake = undefined;
  }

  /** A watch from `revision`, attached; rejects if etcd refuses it or the stream drops first. */
  private watchFrom(revision: bigint): Promise<void> {
    if (this.stopped.signal.aborted) return Promise.resolve();
    this.trouble = undefined;
    const watcher = this.client.watch().prefix(this.prefix).startRevision(revision.toString()).watcher();
    this.endWatcher = endOnce(watcher);
    return new Promise<void>((resolve, reject) => {
      watcher.on('connected', () => resolve());
      watcher.on('data', (res: IWatchResponse) => this.onResponse(res));
      watcher.on('disconnected', (err: unknown) => {
        this.drop();
        reject(err);
        this.report('disconnected');
      });
      watcher.on('error', (err: unknown) => {
        this.drop(); // etcd cancelled it: not cancelled again
        reject(err);
        this.report('cancelled');
      });
    });
  }

  /** Applies a response's events one revision at a time; revisions already applied are skipped. */
  private onResponse(res: IWatchResponse): void {
    if (this.stopped.signal.aborted) return;
    let batch: { type: 'put' | 'delete'; kv: IKeyValue }[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const changes = this.table.apply(batch);
      this.revision = BigInt(batch[0].kv.mod_revision);
      batch = [];
      if (changes.length > 0) this.onChanges(changes);
    };
    for (const event of res.events) {
      const revision = BigInt(event.kv.mod_revision);
      if (revision <= this.revision) continue;
      if (batch.length > 0 && BigInt(batch[0].kv.mod_revision) !== revision) flush();
      batch.push({ type: event.type === 'Delete' ? 'delete' : 'put', kv: event.kv });
    }
    flush();
  }

  /** Forgets the current watcher, cancelled unless etcd ended it. */
  private drop(): void {
    this.endWatcher?.();
    this.endWatcher = undefined;
  }

  /** Every key under the prefix at one revision, a page at a time. */
  private async readAll(): Promise<{ kvs: IKeyValue[]; revision: bigint }> {
    const end = prefixEnd(Buffer.from(this.prefix));
    const kvs: IKeyValue[] = [];
    let from = Buffer.from(this.prefix);
    let revision: string | undefined;
    for (;;) {
      const res = await this.client.kv.range({ key: from, range_end: end, limit: PAGE, ...(revision && { revision }) });
      revision ??= res.header.revision;
      kvs.push(...res.kvs);
      if (!res.more || res.kvs.length === 0) return { kvs, revision: BigInt(revision) };
      from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]); // just after the last key
    }
  }
}

/**
 * Takes charge of a watcher's end: the returned function removes the caller's listeners and
 * cancels the watcher, unless etcd cancelled it already (a compacted start revision, a
 * refused permission). etcd3 1.1.2 keeps the id of a watch etcd cancelled, and etcd hands
 * the same id to the next watch on a new stream: a second cancel would end that watch (an
 * app's own, on a client it shares with us) or draw a reply etcd3 throws on from its stream
 * handler ("Failed to find watcher"), which ends the process. The cluster watch, the one
 * etcd3 watcher of the library, ends through this.
 */
function endOnce(watcher: Watcher): () => void {
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
