import { ForbiddenException, Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { LOCK_BOARD_OPTIONS, type ResolvedBoardOptions } from './lock-board.options.js';

/** The board's own guard, after the app's and the `guards` option's: the `authorize` option. */
@Injectable()
export class LockBoardAccessGuard implements CanActivate {
  constructor(@Inject(LOCK_BOARD_OPTIONS) private readonly options: ResolvedBoardOptions) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (await this.options.authorize(context.switchToHttp().getRequest())) return true;
    throw new ForbiddenException('The lock board is not open to this request: its authorize function said no.');
  }
}
