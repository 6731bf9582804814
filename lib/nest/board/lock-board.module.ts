import { Module, type DynamicModule } from '@nestjs/common';
import type { LockBoardModuleAsyncOptions, LockBoardModuleOptions } from '../../interfaces/lock-board-module-options.interface.js';
import { LockBoardAccessGuard } from './lock-board.access.guard.js';
import { lockBoardController } from './lock-board.controller.js';
import { boardPath, LOCK_BOARD_OPTIONS, resolveBoardOptions } from './lock-board.options.js';
import { LockBoardService } from './lock-board.service.js';

/**
 * A live board of every lock under the app's prefix, any process's: holders, waiters in
 * order, a timeline of acquires, releases, expiries and force-unlocks, and per-lock wait and
 * hold figures, updated by Server-Sent Events from the cluster-wide watch.
 *
 * `LockBoardModule.forRoot({ path: 'locks', guards: [AdminGuard] })` serves it at `/locks/`
 * (its JSON at `/locks/api/snapshot`) with real controllers: the app's guards and
 * interceptors apply. It is closed unless `authorize` or `guards` is given, and read-only
 * unless `forceUnlock: true`. Needs EtcdLockModule in the app. See docs/board.md.
 * @publicApi
 */
@Module({})
export class LockBoardModule {
  static forRoot(options: LockBoardModuleOptions): DynamicModule {
    const resolved = resolveBoardOptions(options);
    return {
      module: LockBoardModule,
      controllers: [lockBoardController(resolved.path, resolved.guards)],
      providers: [{ provide: LOCK_BOARD_OPTIONS, useValue: resolved }, LockBoardService, LockBoardAccessGuard],
    };
  }

  /**
   * The options from a factory (`imports`, `inject`, `useFactory`), checked when the app
   * starts: a factory that gives neither `authorize` nor `guards` fails the bootstrap.
   * `path` and `guards` are given here: they shape the board's routes.
   */
  static forRootAsync(options: LockBoardModuleAsyncOptions): DynamicModule {
    const { path, guards = [], imports = [], inject = [], useFactory } = options;
    return {
      module: LockBoardModule,
      imports,
      controllers: [lockBoardController(boardPath(path), guards)],
      providers: [
        { provide: LOCK_BOARD_OPTIONS, useFactory: async (...args: unknown[]) => resolveBoardOptions({ ...(await useFactory(...args)), path, guards }), inject },
        LockBoardService,
        LockBoardAccessGuard,
      ],
    };
  }
}
