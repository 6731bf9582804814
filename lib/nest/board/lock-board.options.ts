import type { CanActivate, Type } from '@nestjs/common';
import { LockConfigurationError } from '../../common/lock.errors.js';
import { INVALID_OPTION } from '../../common/lock.messages.js';
import type { LockBoardModuleOptions } from '../../interfaces/lock-board-module-options.interface.js';

/** Token of the board's resolved options. */
export const LOCK_BOARD_OPTIONS = Symbol('LOCK_BOARD_OPTIONS');

export interface ResolvedBoardOptions {
  readonly path: string;
  readonly authorize: (request: unknown) => boolean | Promise<boolean>;
  readonly guards: ReadonlyArray<Type<CanActivate> | CanActivate>;
  readonly forceUnlock: boolean;
  readonly actor: (request: unknown) => string;
  readonly lock: string | undefined;
  readonly windowMinutes: number;
}

const CLOSED_BOARD =
  'LockBoardModule needs `authorize` or `guards`: the board shows every lock, who holds it and from which host, and is closed unless you say who may see it. ' +
  "Pass guards: [YourAdminGuard], or authorize: request => request.user?.roles?.includes('admin'); to open it to everyone who can reach the app, say so with authorize: () => true.";

/** Checks the options; a board without access control does not start. */
export function resolveBoardOptions(options: LockBoardModuleOptions): ResolvedBoardOptions {
  const { path = 'locks', authorize, guards = [], forceUnlock = false, actor = defaultActor, lock, windowMinutes = 60 } = options ?? {};
  if (authorize === undefined && guards.length === 0) throw new LockConfigurationError(CLOSED_BOARD);
  if (authorize !== undefined && typeof authorize !== 'function') throw new LockConfigurationError(INVALID_OPTION('authorize', 'expected a function (request) => boolean'));
  if (typeof forceUnlock !== 'boolean') throw new LockConfigurationError(INVALID_OPTION('forceUnlock', `expected true or false, got ${String(forceUnlock)}`));
  if (typeof actor !== 'function') throw new LockConfigurationError(INVALID_OPTION('actor', 'expected a function (request) => string'));
  if (typeof windowMinutes !== 'number' || !(windowMinutes > 0 && windowMinutes <= 24 * 60)) throw new LockConfigurationError(INVALID_OPTION('windowMinutes', `expected minutes between 1 and 1440, got ${String(windowMinutes)}`));
  return { path: boardPath(path), authorize: authorize ?? (() => true), guards, forceUnlock, actor, lock, windowMinutes };
}

/** The board's route path, checked (forRootAsync needs it before the factory runs). */
export function boardPath(path: unknown = 'locks'): string {
  if (typeof path !== 'string' || /[?#]/.test(path)) throw new LockConfigurationError(INVALID_OPTION('path', `expected a route path such as 'locks' or 'admin/locks', got ${String(path)}`));
  return path;
}

/** Who a request is: what Passport put in `request.user`, else anonymous; with the client's address. */
export function defaultActor(request: unknown): string {
  const { user, ip } = (request ?? {}) as { user?: Record<string, unknown>; ip?: string };
  const name = ['username', 'email', 'name', 'id', 'sub'].map(field => user?.[field]).find(value => typeof value === 'string' || typeof value === 'number');
  return `${name === undefined ? 'anonymous' : String(name)}${ip ? ` (${ip})` : ''}`;
}
