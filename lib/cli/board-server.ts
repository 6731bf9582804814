import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BOARD_SECURITY_HEADERS, boardAsset, boardPage } from '../board/board-assets.js';
import { BoardRequestError, type BoardEndpoints } from '../board/board-endpoints.js';

export interface BoardServerSettings {
  readonly host: string;
  readonly port: number;
  /** Who uses the board (the operator who ran the CLI), for the log of force-unlocks. */
  readonly actor: string;
}

const COOKIE = 'nestjs-etcd-lock-board';
/** Largest force-unlock body read. */
const MAX_BODY = 16 * 1024;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The board without an app: a plain HTTP server for `nestjs-etcd-lock board`. Access takes
 * the token in the link it prints (like Jupyter's): the first visit trades it for a
 * SameSite=Strict cookie; scripts send it as `Authorization: Bearer <token>`. Bound to
 * loopback, it also refuses a Host header that is not a loopback name, so a web page cannot
 * reach it by pointing its own domain at 127.0.0.1 (DNS rebinding).
 */
export async function serveBoard(endpoints: BoardEndpoints, settings: BoardServerSettings): Promise<{ readonly url: string; close(): Promise<void> }> {
  const token = randomBytes(24).toString('base64url');
  const server = createServer((request, response) => {
    handle(request, response).catch((err: unknown) => {
      const refused = err instanceof BoardRequestError ? err : new BoardRequestError(500, `The board failed: ${err instanceof Error ? err.message : String(err)}`);
      if (!response.headersSent) send(response, refused.status, 'application/json', JSON.stringify({ statusCode: refused.status, message: refused.message }));
      else response.end();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://board');
    if (loopbackOnly && !LOOPBACK.has(hostname(request.headers.host))) throw new BoardRequestError(403, 'This board answers only to http://127.0.0.1 or http://localhost.');
    if (request.method === 'GET' && url.pathname === '/' && url.searchParams.has('token') && same(url.searchParams.get('token')!, token)) {
      // the token leaves the address bar and the history: the cookie carries it from now on
      response.writeHead(303, { location: '/', 'set-cookie': `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`, ...BOARD_SECURITY_HEADERS });
      response.end();
      return;
    }
    if (!allowed(request)) throw new BoardRequestError(401, 'Open the link nestjs-etcd-lock board printed: it carries the access token (scripts: Authorization: Bearer <token>).');
    const glob = url.searchParams.get('key') ?? undefined;
    const route = `${request.method} ${url.pathname}`;
    if (route === 'GET /') return send(response, 200, 'text/html; charset=utf-8', boardPage('/'));
    if (route === 'GET /board.js' || route === 'GET /board.css') {
      const asset = boardAsset(url.pathname.slice(1) as 'board.js' | 'board.css');
      return send(response, 200, asset.type, asset.body);
    }
    if (route === 'GET /api/snapshot') return send(response, 200, 'application/json', JSON.stringify(await endpoints.snapshot(glob, settings.actor)));
    if (route === 'GET /api/events') return stream(response, glob);
    if (route === 'POST /api/force-unlock') {
      const removed = await endpoints.forceUnlock(await readJson(request), request.headers, settings.actor);
      return send(response, 200, 'application/json', JSON.stringify(removed));
    }
    throw new BoardRequestError(404, `No ${route} on the lock board.`);
  }

  function allowed(request: IncomingMessage): boolean {
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const cookie = (request.headers.cookie ?? '').split(/;\s*/).find(c => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1);
    return [bearer, cookie].some(given => given !== undefined && same(given, token));
  }

  function stream(response: ServerResponse, glob: string | undefined): void {
    response.writeHead(200, { 'content-type': 'text/event-stream', connection: 'keep-alive', ...BOARD_SECURITY_HEADERS });
    const subscription = endpoints.stream(glob, settings.actor).subscribe(message => response.write(`event: ${message.type}\ndata: ${JSON.stringify(message.data)}\n\n`));
    response.on('close', () => subscription.unsubscribe());
  }

  const loopbackOnly = LOOPBACK.has(settings.host === '::1' ? '[::1]' : settings.host);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return {
    url: `http://${host}:${port}/?token=${token}`,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections(); // the live streams never end by themselves
        server.close(() => resolve());
      }),
  };
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer): void {
  response.writeHead(status, { 'content-type': type, ...BOARD_SECURITY_HEADERS });
  response.end(body);
}

function same(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function hostname(host: string | undefined): string {
  return (host ?? '').replace(/:\d+$/, '').toLowerCase();
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/.test(request.headers['content-type'] ?? '')) throw new BoardRequestError(415, 'Force-unlock expects Content-Type: application/json.');
  let body = '';
  for await (const chunk of request) {
    body += String(chunk);
    if (body.length > MAX_BODY) throw new BoardRequestError(413, 'Force-unlock body too large.');
  }
  try {
    return JSON.parse(body);
  } catch {
    throw new BoardRequestError(400, 'Force-unlock expects a JSON body.');
  }
}
