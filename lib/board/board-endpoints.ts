import { map, type Observable } from 'rxjs';
import { InvalidLockKeyError, LockStoreUnavailableError } from '../common/lock.errors.js';
import { BoardCsrf } from './board-csrf.js';
import { boardLock, type BoardHolder } from './board-event.js';
import type { BoardMessage, LockBoard } from './lock-board.js';

type Headers = Record<string, string | string[] | undefined>;

/** A refused board request: the HTTP status and a message that says what to do. */
export class BoardRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface BoardEndpointSettings {
  /** Whether the page may force-unlock (read-only otherwise). */
  readonly forceUnlock: boolean;
  /** Where force-unlock tells it to enable it, in its server's words. */
  readonly enableHint: string;
  /** Told of every force-unlock, with who did it: the board's log. */
  readonly log: (message: string) => void;
}

/** The board's answers, the same behind the Nest controller and the CLI's server. */
export class BoardEndpoints {
  private readonly csrf = new BoardCsrf();

  constructor(
    readonly board: LockBoard,
    private readonly settings: BoardEndpointSettings,
  ) {}

  /** The locks now, their figures and recent events, with what the page needs to know of the viewer. */
  async snapshot(glob: string | undefined, actor: string): Promise<object> {
    return { ...this.about(actor), ...(await this.board.snapshot(glob).catch(storeError)) };
  }

  /** The live stream: the first message carries the same as snapshot. */
  stream(glob: string | undefined, actor: string): Observable<BoardMessage> {
    return this.board.stream(glob).pipe(map(message => (message.type === 'snapshot' ? { ...message, data: { ...this.about(actor), ...message.data } } : message)));
  }

  /**
   * Force-unlocks `body.key` if its holder still has `body.token` and `body.confirm` repeats
   * the key; checks that it is enabled and the CSRF token first. Logs who did it.
   */
  async forceUnlock(body: unknown, headers: Headers, actor: string): Promise<{ removed: BoardHolder[] }> {
    if (!this.settings.forceUnlock) throw new BoardRequestError(403, `Force-unlock is disabled on this board (read-only). ${this.settings.enableHint}`);
    const refused = this.csrf.check(actor, headers);
    if (refused) throw new BoardRequestError(403, `Force-unlock refused: ${refused}.`);
    const { key, token, confirm } = (body ?? {}) as Record<string, unknown>;
    if (typeof key !== 'string' || typeof token !== 'string' || !/^\d+$/.test(token) || typeof confirm !== 'string') {
      throw new BoardRequestError(400, 'Force-unlock expects a JSON body {"key": lock name, "token": the holder\'s token, "confirm": the lock name again}.');
    }
    if (confirm !== key) throw new BoardRequestError(400, `Force-unlock not confirmed: type the lock name "${key}" exactly to confirm.`);
    const removed = await this.board.forceUnlock(key, BigInt(token)).catch(storeError);
    if (!removed) throw new BoardRequestError(409, `Lock "${key}" is no longer held with token ${token}: nothing was removed. Look at the board again before retrying.`);
    const holders = boardLock({ key, holder: removed[0], holders: removed, waiters: [], unfairWaiters: [] }).holders;
    this.settings.log(`Force-unlock of "${key}" by ${actor}: removed ${holders.map(h => `${h.owner} (pid ${h.pid} on ${h.host}, token ${h.token})`).join(', ') || 'nothing (released meanwhile)'}`);
    return { removed: [...holders] };
  }

  private about(actor: string): object {
    const { store, prefix } = this.board.location;
    return { store, prefix, user: actor, forceUnlock: this.settings.forceUnlock, csrf: this.csrf.token(actor), windowMinutes: this.board.windowMinutes };
  }
}

/** A store that did not answer is a 503, a bad lock name a 400; anything else is the server's own failure. */
function storeError(err: unknown): never {
  if (err instanceof LockStoreUnavailableError) throw new BoardRequestError(503, err.message);
  if (err instanceof InvalidLockKeyError) throw new BoardRequestError(400, err.message);
  throw err;
}
