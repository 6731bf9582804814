import type { Cluster, Redis } from 'ioredis';

/**
 * The one subscription of a connection: each of its sessions' channels (`{turn: name}`: look
 * again; `{gone: member, forced}`: an entry of ours was removed) and, for the watch, the
 * namespace's events. Pub/sub delivers at most once: after a reconnect every waiter looks again,
 * and every holder looks whether its entry is still there (a removal may have gone unheard).
 */
export class RedisChannels {
  private readonly turns = new Map<string, Set<() => void>>();
  private readonly gone = new Map<string, { readonly onGone: (forced: boolean) => void; readonly isThere: () => Promise<boolean> }>();
  private readonly listeners = new Set<(message: string) => void>();
  private ready: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly subscriber: Redis | Cluster,
    private readonly eventsChannel: string,
  ) {
    subscriber.on('message', (channel: string, message: string) => this.dispatch(channel, message));
    // a reconnect may have lost messages: every waiter and every holder looks again
    subscriber.on('ready', () => {
      this.wakeAll();
      this.checkHolders();
    });
  }

  /** Subscribes to a session's channel; resolves once Redis confirmed, so nothing sent after is missed. */
  async follow(channel: string): Promise<void> {
    await (this.ready = this.ready.then(() => this.subscriber.subscribe(channel)));
  }

  unfollow(channel: string): void {
    void this.subscriber.unsubscribe(channel).catch(() => undefined);
  }

  /**
   * A wake-up for the queued entry `member` of `name` (or, undefined, an unfair waiter of it),
   * armed now (before it looks, so that no message between its look and its wait is missed):
   * resolves at the next `turn` for it, after `timeoutMs`, or after a reconnect; rejects with
   * the signal's reason.
   */
  turn(name: string, member: string | undefined, signal: AbortSignal): { wait(timeoutMs: number): Promise<void> } {
    let wake!: () => void;
    const woken = new Promise<void>(resolve => (wake = resolve));
    // a queued entry is woken by a message naming it: one release wakes one waiter, also among the waiters of one process
    const id = member === undefined ? name : `${name}\u0000${member}`;
    const waiters = this.turns.get(id) ?? new Set();
    this.turns.set(id, waiters.add(wake));
    const done = () => {
      waiters.delete(wake);
      if (waiters.size === 0 && this.turns.get(id) === waiters) this.turns.delete(id);
    };
    return {
      wait: timeoutMs =>
        new Promise<void>((resolve, reject) => {
          const finish = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', onAbort);
            done();
          };
          const onAbort = () => (finish(), reject(signal.reason));
          const timer = setTimeout(() => (finish(), resolve()), timeoutMs);
          if (signal.aborted) return onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
          void woken.then(() => (finish(), resolve()));
        }),
    };
  }

  /**
   * Calls `onGone` once if the entry `member` is removed by someone else: `forced` when told so;
   * false when, after a reconnect, `isThere` finds it gone. Returns a function that stops it.
   */
  onGone(member: string, onGone: (forced: boolean) => void, isThere: () => Promise<boolean>): () => void {
    const watcher = { onGone, isThere };
    this.gone.set(member, watcher);
    return () => this.gone.get(member) === watcher && this.gone.delete(member);
  }

  /** Every holder change of the namespace, as published; returns a function that stops it. */
  async onEvents(listener: (message: string) => void): Promise<() => void> {
    if (this.listeners.size === 0) await this.follow(this.eventsChannel);
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.unfollow(this.eventsChannel);
    };
  }

  close(): void {
    this.subscriber.disconnect();
  }

  private dispatch(channel: string, message: string): void {
    if (channel === this.eventsChannel) return this.listeners.forEach(listener => listener(message));
    const { turn, member, gone, forced } = JSON.parse(message) as { turn?: string; member?: string; gone?: string; forced?: boolean };
    if (turn !== undefined) for (const wake of [...(this.turns.get(member === undefined ? turn : `${turn}\u0000${member}`) ?? [])]) wake();
    if (gone !== undefined) this.ended(gone, forced === true);
  }

  private ended(member: string, forced: boolean): void {
    const watcher = this.gone.get(member);
    this.gone.delete(member);
    watcher?.onGone(forced);
  }

  /**
   * After a reconnect: each holder whose entry is gone is told so. A PING first: it is answered
   * after the resubscribe ioredis sends on 'ready', so a removal after the look is heard.
   */
  private checkHolders(): void {
    if (this.gone.size === 0) return;
    void this.subscriber.ping().then(
      () => {
        for (const [member, watcher] of [...this.gone]) {
          void watcher.isThere().then(
            there => !there && this.gone.get(member) === watcher && this.ended(member, false),
            () => undefined, // Redis away again: the next 'ready' looks again
          );
        }
      },
      () => undefined,
    );
  }

  private wakeAll(): void {
    for (const waiters of this.turns.values()) for (const wake of [...waiters]) wake();
  }
}
