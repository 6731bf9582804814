import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { BoardEndpoints } from '../../board/board-endpoints.js';
import { LockBoard } from '../../board/lock-board.js';
import { LockServiceRegistry } from '../lock-service.registry.js';
import { LOCK_BOARD_OPTIONS, type ResolvedBoardOptions } from './lock-board.options.js';

/** The board of one app: started with the app (its watch running before it serves), stopped before the lock service closes. */
@Injectable()
export class LockBoardService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('LockBoard');
  private board: LockBoard | undefined;
  private served: BoardEndpoints | undefined;

  constructor(
    private readonly registry: LockServiceRegistry,
    @Inject(LOCK_BOARD_OPTIONS) private readonly options: ResolvedBoardOptions,
  ) {}

  get endpoints(): BoardEndpoints {
    if (!this.served) throw new Error('The lock board is not started yet (it starts with the app: app.init() or app.listen())');
    return this.served;
  }

  async onModuleInit(): Promise<void> {
    const { service } = this.registry.get(this.options.lock, 'LockBoardModule');
    this.board = new LockBoard(service, { windowMinutes: this.options.windowMinutes });
    await this.board.start();
    this.served = new BoardEndpoints(this.board, {
      forceUnlock: this.options.forceUnlock,
      enableHint: 'Enable it with LockBoardModule.forRoot({ forceUnlock: true, ... }).',
      log: message => this.logger.warn(message),
    });
  }

  /** True once the app began shutting down: the board answers nothing more. */
  get stopped(): boolean {
    return this.board?.stopped ?? false;
  }

  onModuleDestroy(): void {
    this.board?.stop();
  }
}
