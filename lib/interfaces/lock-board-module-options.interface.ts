import type { CanActivate, InjectionToken, ModuleMetadata, OptionalFactoryDependency, Type } from '@nestjs/common';

/**
 * Options of `LockBoardModule.forRoot()`: where the board is served and who may use it.
 * The board is closed unless `authorize` or `guards` says who may see it.
 * @publicApi
 */
export interface LockBoardModuleOptions {
  /** Where the board is served, under the app's global prefix: `/locks/`, its API under `/locks/api/`. @default 'locks' */
  readonly path?: string;
  /**
   * Who may see the board (and, with `forceUnlock`, use it). Called with the request (Express's
   * or Fastify's) after the app's guards and `guards`: return true to let it through; false
   * answers 403. Throw `UnauthorizedException` to answer 401. To open the board to everyone
   * who can reach it, say so: `authorize: () => true`.
   */
  readonly authorize?: (request: any) => boolean | Promise<boolean>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the platform's request
  /**
   * Guards that protect the board, run before `authorize`: your `AuthGuard('jwt')`, an admin
   * role guard. Classes are created by Nest in the board's module (global providers are visible).
   */
  readonly guards?: ReadonlyArray<Type<CanActivate> | CanActivate>;
  /**
   * Lets the page force-unlock a lock: a POST with a confirmation (the lock name typed again),
   * a CSRF token, and the holder's token as seen on the page (a lock that changed holder
   * meanwhile is left alone). Each one is logged with `actor`. @default false (read-only)
   */
  readonly forceUnlock?: boolean;
  /**
   * Who the request is, for the log of force-unlocks and the page's header.
   * @default the `username`, `email`, `name`, `id` or `sub` of `request.user` (what Passport sets), else 'anonymous', with the client's address
   */
  readonly actor?: (request: any) => string; // eslint-disable-line @typescript-eslint/no-explicit-any -- the platform's request
  /** The EtcdLockModule instance whose locks it shows (its `name`). @default the instance without a name */
  readonly lock?: string;
  /** Minutes of events and per-lock figures the board keeps. @default 60 */
  readonly windowMinutes?: number;
}

/**
 * Options of `LockBoardModule.forRootAsync()`: `path` and `guards` are fixed when the module is
 * declared (they shape its routes); the rest comes from `useFactory`, e.g. from ConfigService.
 * @publicApi
 */
export interface LockBoardModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  readonly path?: string;
  readonly guards?: ReadonlyArray<Type<CanActivate> | CanActivate>;
  readonly inject?: Array<InjectionToken | OptionalFactoryDependency>;
  readonly useFactory: (...args: any[]) => Omit<LockBoardModuleOptions, 'path' | 'guards'> | Promise<Omit<LockBoardModuleOptions, 'path' | 'guards'>>; // eslint-disable-line @typescript-eslint/no-explicit-any -- Nest's own factory signature
}
