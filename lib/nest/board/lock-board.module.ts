import { Module, type DynamicModule } from '@nestjs/common';
import type { LockBoardModuleOptions } from '../../interfaces/lock-board-module-options.interface.js';
import { LockBoardAccessGuard } from './lock-board.access.guard.js';
import { lockBoardController } from './lock-board.controller.js';
import { LOCK_BOARD_OPTIONS, resolveBoardOptions } from './lock-board.options.js';
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
}
