import { Observable, Subject } from 'rxjs';
import type { LockService } from '../engine/lock.service.js';
import type { LockChange, LockWatch } from '../interfaces/lock-backend.interface.js';
import type { LockHolderInfo } from '../interfaces/lock-info.interface.js';
import { BoardFigures, type LockFigures } from './board-figures.js';
import { boardEvent, boardLock, type BoardEvent, type BoardLock } from './board-event.js';
import { lockGlob } from '../common/lock-glob.js';

/** The locks and their figures at one moment, for the names a viewer's filter lets through. */
export interface BoardState {
  readonly at: string;
  readonly locks: readonly BoardLock[];
  readonly stats: Record<string, LockFigures>;
}

/** What a viewer's stream carries: its first `state` with the recent events, then each event and each change of the locks. */
export type BoardMessage = { readonly type: 'snapshot'; readonly data: BoardState & { readonly events: readonly BoardEvent[] } } | { readonly type: 'event'; readonly data: BoardEvent } | { readonly type: 'state'; readonly data: BoardState } | { readonly type: 'ping'; readonly data: { readonly at: string } };

export interface LockBoardSettings {
  /** Minutes of events and figures kept. */
  readonly windowMinutes: number;
}

/** Events kept for a viewer that connects: the page shows at most this many. */
const EVENTS_KEPT = 1000;
/**
 * While anyone views the board, the locks are read again this often: the watch reports holder
 * changes at once, but a waiter joining a queue changes no holder.
 */
const REREAD_MS = 1000;
/** A message at least this often: proxies close a stream that stays silent. */
const PING_MS = 20_000;

/**
 * The lock board's model, apart from any web framework: the cluster-wide watch of a
 * LockService (every process's locks) feeds a timeline and per-lock figures; the locks
 * themselves are read from the store after each change, and each second while anyone views.
 * The Nest controller and the CLI's server both serve it.
 */
export class LockBoard {
  private readonly figures: BoardFigures;
  private readonly recent: BoardEvent[] = [];
  private readonly events = new Subject<BoardEvent>();
  private readonly locksChanged = new Subject<void>();
  private watch: LockWatch | undefined;
  private lastEventId = 0;
  private locks: readonly BoardLock[] = [];
  private locksAt = new Date();
  /** the locks as last sent, for telling a change (TTLs left out: they change every read) */
  private locksSeen = '';
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private viewers = 0;
  private ended = false;
  private rereadTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly service: LockService,
    private readonly settings: LockBoardSettings,
  ) {
    this.figures = new BoardFigures(settings.windowMinutes * 60_000);
  }

  /** Where the locks are kept, for the page's header. */
  get location(): { readonly store: string; readonly prefix: string } {
    return this.service.location;
  }

  get windowMinutes(): number {
    return this.settings.windowMinutes;
  }

  /** Starts the watch and reads the locks; rejects if the store cannot be watched. */
  async start(): Promise<void> {
    this.watch = this.service.watchChanges('', changes => this.onChanges(changes));
    await this.watch.ready;
    await this.read();
  }

  get stopped(): boolean {
    return this.ended;
  }

  stop(): void {
    this.ended = true;
    this.watch?.stop();
    clearInterval(this.rereadTimer);
    this.events.complete();
    this.locksChanged.complete();
  }

  /** The locks now (read afresh), figures and recent events, of the names `glob` matches. */
  async snapshot(glob?: string): Promise<BoardState & { readonly events: readonly BoardEvent[] }> {
    await this.read();
    return this.current(lockGlob(glob));
  }

  /**
   * A viewer's stream: a snapshot, then every event and change of the locks `glob` matches.
   * The locks are read again each second while anyone views.
   */
  stream(glob?: string): Observable<BoardMessage> {
    const wanted = lockGlob(glob);
    return new Observable<BoardMessage>(viewer => {
      this.viewing(+1);
      viewer.next({ type: 'snapshot', data: this.current(wanted) });
      // the board stopping ends every stream: an open page must not hold the app's HTTP server open at shutdown
      const subscription = this.events.subscribe({ next: event => wanted(event.key) && viewer.next({ type: 'event', data: event }), complete: () => viewer.complete() });
      subscription.add(this.locksChanged.subscribe(() => viewer.next({ type: 'state', data: this.filtered(wanted) })));
      const ping = setInterval(() => viewer.next({ type: 'ping', data: { at: new Date().toISOString() } }), PING_MS);
      return () => {
        clearInterval(ping);
        subscription.unsubscribe();
        this.viewing(-1);
      };
    });
  }

  /**
   * Force-unlocks the holder of `key` with `token` (the one the operator saw), if it still
   * holds it; returns it, or null when the lock is no longer held with that token.
   */
  async forceUnlock(key: string, token: bigint): Promise<LockHolderInfo[] | null> {
    const removed = await this.service.forceUnlock(key, { token });
    this.readSoon();
    return removed.length > 0 ? removed : null;
  }

  private onChanges(changes: LockChange[]): void {
    const at = new Date();
    for (const change of changes) {
      const event = boardEvent(++this.lastEventId, change, at);
      this.recent.push(event);
      this.figures.record(event);
      this.events.next(event);
    }
    const since = at.getTime() - this.settings.windowMinutes * 60_000;
    const stale = this.recent.findIndex(e => Date.parse(e.at) >= since);
    this.recent.splice(0, Math.max(this.recent.length - EVENTS_KEPT, stale === -1 ? this.recent.length : stale));
    this.readSoon();
  }

  private current(wanted: (key: string) => boolean): BoardState & { readonly events: readonly BoardEvent[] } {
    return { ...this.filtered(wanted), events: this.recent.filter(e => wanted(e.key)) };
  }

  private filtered(wanted: (key: string) => boolean): BoardState {
    return { at: this.locksAt.toISOString(), locks: this.locks.filter(l => wanted(l.key)), stats: this.figures.figures(wanted) };
  }

  /**
   * Reads the locks; a read asked for during one runs once after it. Rejects when the last
   * pass failed (the board keeps showing the read before).
   */
  private read(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.readAgain = false;
        const locks = (await this.service.listLocks()).map(boardLock);
        this.locks = locks;
        this.locksAt = new Date();
        const seen = JSON.stringify(locks.map(l => ({ ...l, holders: l.holders.map(h => ({ ...h, ttlRemaining: 0 })) })));
        if (seen !== this.locksSeen) {
          this.locksSeen = seen;
          this.locksChanged.next();
        }
      } while (this.readAgain);
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** A read in the background: if the store does not answer, the next change or second tries again. */
  private readSoon(): void {
    this.read().catch(() => undefined);
  }

  private viewing(delta: number): void {
    this.viewers += delta;
    if (this.viewers > 0 && !this.rereadTimer) this.rereadTimer = setInterval(() => this.readSoon(), REREAD_MS);
    if (this.viewers === 0) {
      clearInterval(this.rereadTimer);
      this.rereadTimer = undefined;
    }
  }
}
