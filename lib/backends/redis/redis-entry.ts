import { performance } from 'node:perf_hooks';
import { EntryGoneError, KindConflictError } from '../../common/backend.errors.js';
import { EXCLUSIVE, kindOfTag, kindTag, type LockKind } from '../../common/lock-kind.js';
import { encodeOwner, type OwnerRecord } from '../../common/owner-record.js';
import type { QueueEntry, TimedHold } from '../../interfaces/lock-backend.interface.js';
import { runScript, untilRedisAnswers, type RedisClient } from './redis-client.js';
import { Deadline } from '../../util/deadline.js';
import type { RedisChannels } from './redis-channels.js';
import { ACQUIRE, OWN_LEASE, PLACE, RECORD, RELEASE, ROOM } from './redis-scripts.js';
import { RedisSessionGoneError, type RedisSession } from './redis-session.js';

/**
 * One attempt at one lock: a member `<kind>|<session>|<n>` of the lock's queue (a sorted set
 * scored by the namespace's token counter). The member is fixed before the first call, so a
 * script retried after an unknown outcome finds it instead of queueing twice. Waiting is woken
 * by a message on the session's channel, and looks again on a timer bounded by the holder's
 * TTL, so a crashed holder is noticed without polling.
 */
export class RedisEntry implements QueueEntry {
  token: bigint | undefined;
  private readonly member: string;
  private waited = false;
  private inRoom = false;

  constructor(
    private readonly client: RedisClient,
    private readonly channels: RedisChannels,
    private readonly ns: string,
    private readonly name: string,
    readonly kind: LockKind,
    private readonly session: RedisSession,
    attempt: number,
    private readonly record: OwnerRecord,
  ) {
    this.member = `${kindTag(kind)}|${session.id}|${attempt}`;
  }

  async tryAcquire(onlyIfFree: boolean): Promise<boolean> {
    // queue, prune holders whose session is gone, and learn the place: one script call
    const [token, holdsOrKind] = (await this.script(ACQUIRE, this.member, onlyIfFree ? '1' : '0', encodeOwner(this.record).toString())) as [number, number | string | undefined];
    if (token === -1) throw new RedisSessionGoneError();
    if (token === -2) throw new KindConflictError(kindOfTag(String(holdsOrKind)) ?? EXCLUSIVE);
    if (token === 0) return false; // busy: nothing written
    this.token = BigInt(token);
    return holdsOrKind === 1;
  }

  async waitForTurn(signal: AbortSignal): Promise<void> {
    for (;;) {
      const turn = this.channels.turn(this.name, this.member, signal); // armed before we look
      const [state, holderTtl] = await untilRedisAnswers(signal, () => this.place());
      if (state === -1) throw new EntryGoneError();
      if (state === 1) break;
      await turn.wait(lookAgainAfter(holderTtl, this.session.ttl));
    }
    this.waited = true;
    this.record.acquiredAt = Date.now();
  }

  async waitUntilFree(signal: AbortSignal): Promise<void> {
    this.inRoom = true;
    const entered = await untilRedisAnswers(signal, () => this.script(ROOM, this.member, 'enter', encodeOwner(this.record).toString()));
    if (Number(entered) === -1) throw new RedisSessionGoneError();
    for (;;) {
      const turn = this.channels.turn(this.name, undefined, signal);
      if (await untilRedisAnswers(signal, () => this.tryAcquire(true))) break;
      if (this.token !== undefined) return this.waitForTurn(signal); // a retried take went in behind someone
      await turn.wait(this.session.ttl * 1000);
    }
    await this.leaveRoom();
    this.record.acquiredAt = Date.now();
  }

  async release(how: 'released' | 'ttl-expired' = 'released'): Promise<boolean> {
    if (this.inRoom) await this.leaveRoom();
    return Number(await this.script(RELEASE, this.member, how)) === 1;
  }

  wroteNothing(): void {}

  watchHolder(onGone: (forced: boolean) => void, delayMs: number): { stop(): void } {
    const stop = this.channels.onGone(this.member, onGone, async () => (await this.place())[0] !== -1);
    // a holder that waited records when it got the lock, later: no write on the handoff's path
    const timer = this.waited
      ? setTimeout(() => {
          void this.script(RECORD, this.member, encodeOwner(this.record).toString()).then(
            there => Number(there) === 0 && (stop(), onGone(false)),
            () => undefined,
          );
        }, delayMs).unref()
      : undefined;
    return {
      stop: () => {
        clearTimeout(timer);
        stop();
      },
    };
  }

  async holdFor(ttl: number): Promise<TimedHold | null> {
    const hold = new RedisTimedHold(this, `${this.ns}l:${this.member}`);
    return (await hold.renew(ttl, false)) ? hold : null;
  }

  /** @internal used by RedisTimedHold */
  ownLease(lease: string, ttlMs: number, renew: boolean): Promise<unknown> {
    return this.script(OWN_LEASE, this.member, lease, ttlMs, renew ? '1' : '0');
  }

  /** Where the entry stands: [-1] gone, [1] holds, [0, the holder's TTL left] waits. */
  private async place(): Promise<[number, number?]> {
    return (await this.script(PLACE, this.member)) as [number, number?];
  }

  private async leaveRoom(): Promise<void> {
    await this.script(ROOM, this.member, 'leave');
    this.inRoom = false;
  }

  private script(script: string, ...args: (string | number)[]): Promise<unknown> {
    return runScript(this.client, script, `${this.ns}seq`, [this.ns, this.name, ...args]);
  }
}

/** A hard-TTL entry: its own key with a PX TTL; the entry goes when it expires unless renewed. */
class RedisTimedHold implements TimedHold {
  ttl = 0;
  private readonly deadline = new Deadline();
  private expired = false;

  constructor(
    private readonly entry: RedisEntry,
    private readonly lease: string,
  ) {}

  get isValid(): boolean {
    return !this.deadline.passed;
  }

  onDeadline(onExpired: () => void): void {
    this.deadline.onPassed(() => {
      this.expired = true;
      onExpired();
    });
  }

  async renew(ttl: number, onlyIfOwn = true): Promise<boolean> {
    const sentAt = performance.now();
    if (Number(await this.entry.ownLease(this.lease, ttl * 1000, onlyIfOwn)) !== 1) return false;
    this.ttl = ttl;
    this.deadline.at = sentAt + ttl * 1000 - Math.min(1000, ttl * 100);
    return true;
  }

  /** The entry goes now: released by its holder, or past its deadline (reported to watchers as expired). */
  async end(): Promise<void> {
    this.deadline.stop();
    await this.entry.release(this.expired ? 'ttl-expired' : 'released').catch(() => undefined);
  }
}

/** How long a waiter waits for a message before it looks again: until the holder's TTL would run out, within bounds. */
function lookAgainAfter(holderTtlMs: number | undefined, sessionTtl: number): number {
  const ttl = holderTtlMs !== undefined && holderTtlMs >= 0 ? holderTtlMs : sessionTtl * 1000;
  return Math.min(sessionTtl * 1000, Math.max(50, ttl + 10));
}
