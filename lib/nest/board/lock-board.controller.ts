import { Body, Controller, Get, Header, Headers, HttpCode, HttpException, Inject, Post, Query, Req, Res, ServiceUnavailableException, Sse, UseGuards, type CanActivate, type MessageEvent, type Type } from '@nestjs/common';
import { catchError, map, type Observable } from 'rxjs';
import { BOARD_SECURITY_HEADERS, boardAsset, boardPage } from '../../board/board-assets.js';
import { BoardRequestError } from '../../board/board-endpoints.js';
import { LockBoardAccessGuard } from './lock-board.access.guard.js';
import { LOCK_BOARD_OPTIONS, type ResolvedBoardOptions } from './lock-board.options.js';
import { LockBoardService } from './lock-board.service.js';

/** Express's and Fastify's request and reply, as far as the board uses them. */
interface BoardRequest {
  readonly originalUrl?: string;
  readonly url: string;
}
interface BoardReply {
  header(name: string, value: string): unknown;
}

/**
 * The board's routes under `path`, a class per board: real routes, so the app's global
 * guards, interceptors and filters apply, then `guards`, then the `authorize` option.
 */
export function lockBoardController(path: string, guards: ReadonlyArray<Type<CanActivate> | CanActivate>): Type<unknown> {
  @Controller(path)
  @UseGuards(...guards, LockBoardAccessGuard)
  class LockBoardController {
    constructor(
      @Inject(LockBoardService) private readonly board: LockBoardService,
      @Inject(LOCK_BOARD_OPTIONS) private readonly options: ResolvedBoardOptions,
    ) {}

    @Get()
    @Header('content-type', 'text/html; charset=utf-8')
    page(@Req() request: BoardRequest, @Res({ passthrough: true }) reply: BoardReply): string {
      secure(reply);
      // the page's files are fetched relative to where it is served, with or without a trailing slash
      const pathname = (request.originalUrl ?? request.url).split('?')[0];
      return boardPage(pathname.endsWith('/') ? pathname : `${pathname}/`);
    }

    @Get('board.js')
    @Header('content-type', 'text/javascript; charset=utf-8')
    script(@Res({ passthrough: true }) reply: BoardReply): string {
      secure(reply);
      return boardAsset('board.js').body;
    }

    @Get('board.css')
    @Header('content-type', 'text/css; charset=utf-8')
    style(@Res({ passthrough: true }) reply: BoardReply): string {
      secure(reply);
      return boardAsset('board.css').body;
    }

    @Get('api/snapshot')
    async snapshot(@Query('key') key: string | undefined, @Req() request: unknown, @Res({ passthrough: true }) reply: BoardReply): Promise<object> {
      secure(reply);
      this.open(reply);
      return answer(() => this.board.endpoints.snapshot(key, this.options.actor(request)));
    }

    @Sse('api/events')
    events(@Query('key') key: string | undefined, @Req() request: unknown, @Res({ passthrough: true }) reply: BoardReply): Observable<MessageEvent> {
      this.open(reply);
      return this.board.endpoints.stream(key, this.options.actor(request)).pipe(
        map(message => ({ type: message.type, data: JSON.stringify(message.data) })),
        catchError((err: unknown) => {
          throw err instanceof BoardRequestError ? new HttpException(err.message, err.status) : err;
        }),
      );
    }

    @Post('api/force-unlock')
    @HttpCode(200)
    async forceUnlock(@Body() body: unknown, @Headers() headers: Record<string, string>, @Req() request: unknown, @Res({ passthrough: true }) reply: BoardReply): Promise<object> {
      secure(reply);
      this.open(reply);
      return answer(() => this.board.endpoints.forceUnlock(body, headers, this.options.actor(request)));
    }

    /**
     * Once the board stopped (the app is shutting down), its API answers 503 and closes the
     * connection: a page reconnecting every few seconds on a kept-alive connection would
     * otherwise keep the HTTP server from closing.
     */
    private open(reply: BoardReply): void {
      if (!this.board.stopped) return;
      reply.header('connection', 'close');
      throw new ServiceUnavailableException('The lock board stopped: the app is shutting down.');
    }
  }
  return LockBoardController;
}

function secure(reply: BoardReply): void {
  for (const [name, value] of Object.entries(BOARD_SECURITY_HEADERS)) reply.header(name, value);
}

/** The board's refusals as Nest's HTTP exceptions: the app's exception filters see them. */
async function answer<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    if (err instanceof BoardRequestError) throw new HttpException({ statusCode: err.status, message: err.message }, err.status);
    throw err;
  }
}
