// The lock board of an app (LockBoardModule), in Debian's Chromium: locks held by worker
// processes on a real etcd, shown live; its access control checked over plain HTTP.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, Module, UnauthorizedException, type CanActivate, type ExecutionContext, type INestApplication, type LoggerService } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import type { Browser, Page } from 'playwright-core';
import { EtcdLockModule, LockBoardModule, LockService } from '../../lib/index.js';
import { accessibilityViolations, eventually, launchChromium, SCREENSHOTS } from '../support/browser.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { useEtcdAndWorkers } from '../support/worker-fixture.js';

const PREFIX = 'board-spec/';
const fixture = useEtcdAndWorkers(PREFIX, 2);

/** The app's own login, as far as the board needs it: a session cookie naming the user. */
const sessionUser = (request: { headers: { cookie?: string } }) => /(?:^|;\s*)session=(\w+)/.exec(request.headers.cookie ?? '')?.[1];
const OPERATORS = ['alice'];

/** What the app logged, for the force-unlock's line. */
class CapturedLog implements LoggerService {
  readonly lines: string[] = [];
  log = (message: string, context?: string) => this.lines.push(`${context}: ${message}`);
  warn = this.log;
  error = this.log;
}

let app: INestApplication;
let locks: LockService;
let base: string;
let browser: Browser;
const logged = new CapturedLog();

beforeAll(async () => {
  @Module({
    imports: [
      EtcdLockModule.forRoot({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, ttl: 2, logger: false }),
      LockBoardModule.forRoot({
        path: 'admin/locks',
        authorize: request => {
          const user = sessionUser(request);
          if (!user) throw new UnauthorizedException('Log in first');
          return OPERATORS.includes(user);
        },
        actor: request => sessionUser(request) ?? 'nobody',
        forceUnlock: true,
      }),
    ],
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: logged });
  app.setGlobalPrefix('ops'); // the board's page finds its files and API under any prefix
  await app.listen(0, '127.0.0.1');
  base = `${await app.getUrl()}/ops/admin/locks/`;
  locks = app.get(LockService);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

/** A page logged in as `user`, on the board. */
async function boardPage(user: string, viewport = { width: 1280, height: 800 }, url = base, bypassCSP = false): Promise<Page> {
  const context = await browser.newContext({ viewport, bypassCSP });
  await context.addCookies([{ name: 'session', value: user, url: new URL('/', base).href }]); // the app's login cookie, for the whole site
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', message => message.type() === 'error' && problems.push(message.text()));
  page.on('pageerror', err => problems.push(err.message));
  const response = await page.goto(url);
  await page
    .locator('#status', { hasText: 'live' })
    .waitFor({ timeout: 10_000 })
    .catch(async (err: Error) => {
      const status = await page.locator('#status').textContent({ timeout: 1000 }).catch(() => 'none');
      throw new Error(`the board at ${url} did not go live: HTTP ${response?.status()}, status "${status}", problems: ${problems.join('; ')}`, { cause: err });
    });
  expect(problems).toEqual([]); // no script error, no CSP violation
  return page;
}

async function tokenOf(key: string, pid: number): Promise<string> {
  const info = await locks.getLockInfo(key);
  const found = [...(info?.holders ?? []), ...(info?.waiters ?? [])].find(o => o.pid === pid);
  if (!found) throw new Error(`pid ${pid} neither holds nor waits for ${key}`);
  return found.token.toString();
}

describe('lock board in an app', () => {
  it('is closed to whoever authorize refuses: 401 without a login, 403 for another user, and force-unlock needs the CSRF token, the name typed again and the token seen', async () => {
    const [holder] = await fixture.startWorkers(1);
    const { token } = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'order:9' });
    const as = (user?: string, headers: Record<string, string> = {}) => ({ headers: { ...(user && { cookie: `session=${user}` }), ...headers } });
    const forceUnlock = (user: string | undefined, body: object, headers: Record<string, string> = {}) =>
      fetch(`${base}api/force-unlock`, { method: 'POST', body: JSON.stringify(body), ...as(user, { 'content-type': 'application/json', ...headers }) });
    const unlock = { key: 'order:9', token: token.toString(), confirm: 'order:9' };

    for (const path of ['', 'board.js', 'api/snapshot', 'api/events']) {
      expect([path, (await fetch(base + path, as())).status]).toEqual([path, 401]);
      expect([path, (await fetch(base + path, as('mallory'))).status]).toEqual([path, 403]);
    }
    expect((await forceUnlock(undefined, unlock)).status).toBe(401);
    expect((await forceUnlock('mallory', unlock)).status).toBe(403);

    const snapshot = (await (await fetch(`${base}api/snapshot`, as('alice'))).json()) as { csrf: string; user: string; forceUnlock: boolean; locks: { key: string; holders: { token: string; pid: number }[] }[] };
    expect(snapshot).toMatchObject({ user: 'alice', forceUnlock: true, locks: [{ key: 'order:9', holders: [{ token: token.toString(), pid: holder.process.pid }] }] });
    const refusals = [
      [await forceUnlock('alice', unlock), 403, /x-csrf-token header is missing/],
      [await forceUnlock('alice', unlock, { 'x-csrf-token': `${snapshot.csrf}x` }), 403, /does not match/],
      [await forceUnlock('alice', unlock, { 'x-csrf-token': snapshot.csrf, 'sec-fetch-site': 'cross-site' }), 403, /another site/],
      [await forceUnlock('alice', { ...unlock, confirm: 'order:' }, { 'x-csrf-token': snapshot.csrf }), 400, /type the lock name "order:9" exactly/],
      [await forceUnlock('alice', { ...unlock, token: String(token + 1n) }, { 'x-csrf-token': snapshot.csrf }), 409, /no longer held with token/],
    ] as const;
    for (const [response, status, message] of refusals) {
      expect(response.status).toBe(status);
      expect(((await response.json()) as { message: string }).message).toMatch(message);
    }
    // nothing was removed: the worker still holds it
    expect((await locks.getLockInfo('order:9'))?.holder?.token).toBe(token);
    expect(holder.events.filter(e => e.event === 'lost')).toEqual([]);
    expect(logged.lines.filter(l => l.startsWith('LockBoard'))).toEqual([]);
    await holder.request({ op: 'release', key: 'order:9' });
  });

  it('shows a lock taken by another process within 1 s, its waiters in order, a release and a SIGKILL expiry as different events, and force-unlocks after a confirmation', async () => {
    const page = await boardPage('alice');
    const [first, second, third] = await fixture.startWorkers(3);
    const lock = page.locator('[data-lock="order:1"]');

    const { token: firstToken } = await first.request<{ token: bigint }>({ op: 'acquire', key: 'order:1' });
    await lock.locator(`[data-holder-token="${firstToken}"]`).waitFor({ timeout: 1000 });

    const secondGets = second.request<{ token: bigint }>({ op: 'acquire', key: 'order:1' });
    await second.waitForEvent(e => e.event === 'waiting');
    const thirdGets = third.request<{ token: bigint }>({ op: 'acquire', key: 'order:1' });
    await third.waitForEvent(e => e.event === 'waiting');
    const queued = [await tokenOf('order:1', second.process.pid!), await tokenOf('order:1', third.process.pid!)];
    const waiters = lock.locator('ol.waiters > li');
    await eventually(() => waiters.evaluateAll(items => items.map(li => li.getAttribute('data-waiter-token'))), queued, 5000);
    await page.screenshot({ path: `${SCREENSHOTS}board-waiters.png`, fullPage: true });

    // a release, then the next holder killed: its lease runs out
    await first.request({ op: 'release', key: 'order:1' });
    const { token: secondToken } = await secondGets;
    await lock.locator(`[data-holder-token="${secondToken}"]`).waitFor({ timeout: 5000 });
    await second.signal('SIGKILL');
    const { token: thirdToken } = await thirdGets;
    await lock.locator(`[data-holder-token="${thirdToken}"]`).waitFor({ timeout: 10_000 });
    const timeline = page.locator('#timeline > li');
    const typesOf = (token: bigint) => timeline.evaluateAll((items, t) => items.filter(li => li.getAttribute('data-token') === t && li.getAttribute('data-key') === 'order:1').map(li => li.getAttribute('data-event-type')), String(token));
    await eventually(() => typesOf(firstToken), ['released', 'acquired'], 5000); // newest first
    await eventually(() => typesOf(secondToken), ['expired', 'acquired'], 5000);

    // force-unlock: the dialog asks for the name, then the holder loses the lock
    await page.locator(`button[data-force-unlock="order:1"][data-token="${thirdToken}"]`).click();
    const dialog = page.locator('#force-unlock-dialog');
    await expect(dialog.isVisible()).resolves.toBe(true);
    await expect(page.locator('#confirm-force-unlock').isDisabled()).resolves.toBe(true);
    await page.locator('#confirm-key').fill('order:1');
    await page.screenshot({ path: `${SCREENSHOTS}board-force-unlock-dialog.png` });
    await page.locator('#confirm-force-unlock').click();
    await third.waitForEvent(e => e.event === 'lost' && e.reason === 'forced');
    await eventually(() => typesOf(thirdToken), ['forced', 'acquired'], 5000);
    await lock.waitFor({ state: 'detached', timeout: 5000 });
    await page.locator('[data-free-lock="order:1"]').waitFor({ timeout: 5000 }); // free now, still listed for its figures
    expect(await locks.getLockInfo('order:1')).toBeNull();
    expect(logged.lines.filter(l => l.startsWith('LockBoard'))).toEqual([expect.stringMatching(new RegExp(`^LockBoard: Force-unlock of "order:1" by alice: removed .*pid ${third.process.pid}.*token ${thirdToken}`))]);

    // per-lock figures: three acquires, one each of released, expired and forced
    const snapshot = (await (await fetch(`${base}api/snapshot?key=order:*`, { headers: { cookie: 'session=alice' } })).json()) as { stats: Record<string, { waitMs: { max: number } }> };
    expect(snapshot.stats['order:1']).toMatchObject({ acquired: 3, released: 1, expired: 1, forced: 1 });
    // the longest wait is the third worker's, queued behind a release and an expiry (by its own clock: same host)
    const thirdWaited = (await third.waitForEvent(e => e.event === 'acquired')).at - (await third.waitForEvent(e => e.event === 'waiting')).at;
    expect(snapshot.stats['order:1'].waitMs.max).toBeGreaterThanOrEqual(thirdWaited - 50);
    await page.close();
  });

  it('on a phone-sized screen, at the path without its slash: the page fits the width and still shows holders and waiters; no WCAG 2.1 AA violation (axe-core)', async () => {
    const [holder, waiter] = await fixture.startWorkers(2);
    const { token } = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'invoice:42' });
    const waiting = waiter.request({ op: 'acquire', key: 'invoice:42' });
    await waiter.waitForEvent(e => e.event === 'waiting');
    const page = await boardPage('alice', { width: 375, height: 812 }, base.replace(/\/$/, '')); // served without the trailing slash too
    const lock = page.locator('[data-lock="invoice:42"]');
    await lock.locator(`[data-holder-token="${token}"]`).waitFor({ timeout: 5000 });
    await lock.locator('ol.waiters > li').first().waitFor({ timeout: 5000 });
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await page.screenshot({ path: `${SCREENSHOTS}board-phone.png`, fullPage: true });
    await page.close();

    // WCAG 2.1 AA by axe-core, on a wide and a phone screen, the dialog open on the second
    for (const viewport of [{ width: 1280, height: 800 }, { width: 375, height: 812 }]) {
      const checked = await boardPage('alice', viewport, base, true);
      await checked.locator(`[data-lock="invoice:42"] [data-holder-token="${token}"]`).waitFor({ timeout: 5000 });
      await checked.locator('#timeline > li').first().waitFor({ timeout: 5000 });
      if (viewport.width < 400) await checked.locator('button[data-force-unlock="invoice:42"]').click();
      expect(await accessibilityViolations(checked)).toEqual([]);
      await checked.close();
    }
    await holder.request({ op: 'release', key: 'invoice:42' });
    await waiting;
    await waiter.request({ op: 'release', key: 'invoice:42' });
  });

  it("with guards instead of authorize: the app's global guard runs first, then the board's, and the page names request.user", async () => {
    /** The app's login, as a global guard: it puts the user on the request (as Passport does). */
    @Injectable()
    class LoginGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: object }>();
        const [username, role] = (request.headers['x-user'] ?? '').split(':');
        if (!username) throw new UnauthorizedException('Log in first');
        request.user = { username, roles: [role] };
        return true;
      }
    }
    @Injectable()
    class AdminGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        return context.switchToHttp().getRequest<{ user?: { roles: string[] } }>().user?.roles.includes('admin') ?? false;
      }
    }
    @Module({
      imports: [EtcdLockModule.forRoot({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, logger: false }), LockBoardModule.forRoot({ guards: [AdminGuard] })],
      providers: [{ provide: APP_GUARD, useClass: LoginGuard }],
    })
    class GuardedModule {}
    const guarded = (await Test.createTestingModule({ imports: [GuardedModule] }).compile()).createNestApplication({ logger: false });
    await guarded.listen(0, '127.0.0.1');
    try {
      const snapshot = `${await guarded.getUrl()}/locks/api/snapshot`;
      expect((await fetch(snapshot)).status).toBe(401);
      expect((await fetch(snapshot, { headers: { 'x-user': 'dave:support' } })).status).toBe(403);
      const allowed = await fetch(snapshot, { headers: { 'x-user': 'carol:admin' } });
      expect(allowed.status).toBe(200);
      expect(((await allowed.json()) as { user: string; forceUnlock: boolean }).user).toMatch(/^carol \(.*127\.0\.0\.1\)$/);
    } finally {
      await guarded.close();
    }
  });

  it('forRootAsync: options from a provider; a factory that gives neither authorize nor guards fails the bootstrap', async () => {
    const BOARD_CONFIG = 'BOARD_CONFIG';
    @Module({ providers: [{ provide: BOARD_CONFIG, useValue: { operator: 'erin', forceUnlock: false } }], exports: [BOARD_CONFIG] })
    class ConfigModule {}
    const start = async (useFactory: (config: { operator: string; forceUnlock: boolean }) => object) => {
      @Module({
        imports: [
          EtcdLockModule.forRoot({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, logger: false }),
          LockBoardModule.forRootAsync({ path: 'ops/locks', imports: [ConfigModule], inject: [BOARD_CONFIG], useFactory }),
        ],
      })
      class AsyncModule {}
      const started = (await Test.createTestingModule({ imports: [AsyncModule] }).compile()).createNestApplication({ logger: false });
      await started.listen(0, '127.0.0.1');
      return started;
    };
    const configured = await start(config => ({ authorize: (request: { headers: Record<string, string> }) => request.headers['x-user'] === config.operator, forceUnlock: config.forceUnlock }));
    try {
      const snapshot = `${await configured.getUrl()}/ops/locks/api/snapshot`;
      expect((await fetch(snapshot)).status).toBe(403);
      const allowed = await fetch(snapshot, { headers: { 'x-user': 'erin' } });
      expect(allowed.status).toBe(200);
      expect(((await allowed.json()) as { forceUnlock: boolean }).forceUnlock).toBe(false);
    } finally {
      await configured.close();
    }
    await expect(start(() => ({ forceUnlock: true }))).rejects.toThrow(/LockBoardModule needs `authorize` or `guards`/);
  });

  it('closes with a page still open (its stream ends), and leaves etcd clean: the board\'s watch and reads hold no key or lease', async () => {
    const page = await boardPage('alice');
    const streamEnded = page.evaluate(() => new Promise<void>(resolve => setInterval(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('status').textContent !== 'live' && resolve(), 50)));
    await fixture.stopWorkers();
    await app.close(); // a page reconnecting on its kept-alive connection must not hold the server open
    await streamEnded;
    await page.close();
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});
