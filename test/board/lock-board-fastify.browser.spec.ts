// The lock board on Nest's Fastify platform: the same page, stream and force-unlock as on Express.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Module, UnauthorizedException } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { Browser } from 'playwright-core';
import { EtcdLockModule, LockBoardModule } from '../../lib/index.js';
import { launchChromium } from '../support/browser.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { useEtcdAndWorkers } from '../support/worker-fixture.js';

const PREFIX = 'board-fastify-spec/';
const fixture = useEtcdAndWorkers(PREFIX, 2);
let app: NestFastifyApplication;
let browser: Browser;
let base: string;

beforeAll(async () => {
  @Module({
    imports: [
      EtcdLockModule.forRoot({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX, logger: false }),
      LockBoardModule.forRoot({
        authorize: (request: { headers: { authorization?: string } }) => {
          if (!request.headers.authorization) throw new UnauthorizedException('Log in first');
          return request.headers.authorization === 'Bearer ops';
        },
        forceUnlock: true,
      }),
    ],
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
  await app.listen(0, '127.0.0.1');
  base = `${await app.getUrl()}/locks`;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

describe('lock board on Fastify', () => {
  it('serves the page, the live stream and force-unlock behind authorize', async () => {
    const [holder] = await fixture.startWorkers(1);
    const { token } = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'ship:1' });
    expect((await fetch(`${base}/api/snapshot`)).status).toBe(401);
    expect((await fetch(`${base}/api/snapshot`, { headers: { authorization: 'Bearer guest' } })).status).toBe(403);

    const context = await browser.newContext({ extraHTTPHeaders: { authorization: 'Bearer ops' } });
    const page = await context.newPage();
    await page.goto(base); // without the trailing slash
    await page.locator(`[data-lock="ship:1"] [data-holder-token="${token}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('#status').textContent()).toBe('live');

    const snapshot = (await (await fetch(`${base}/api/snapshot`, { headers: { authorization: 'Bearer ops' } })).json()) as { csrf: string };
    const unlocked = await fetch(`${base}/api/force-unlock`, {
      method: 'POST',
      headers: { authorization: 'Bearer ops', 'content-type': 'application/json', 'x-csrf-token': snapshot.csrf },
      body: JSON.stringify({ key: 'ship:1', token: token.toString(), confirm: 'ship:1' }),
    });
    expect(unlocked.status).toBe(200);
    await holder.waitForEvent(e => e.event === 'lost' && e.reason === 'forced');
    await page.locator('#timeline > li[data-event-type="forced"][data-key="ship:1"]').waitFor({ timeout: 5000 });
    await context.close();
  });

  it('leaves etcd clean', async () => {
    await fixture.stopWorkers();
    await app.close();
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});
