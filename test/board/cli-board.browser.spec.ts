// `nestjs-etcd-lock board`: the board without an app, as a child process on a real etcd (and
// Redis), in Debian's Chromium: loopback only, a token to get in, read-only by default.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import type { Browser } from 'playwright-core';
import { startRedis, type RedisHandle } from '../../harness/redis.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import { LockService } from '../../lib/index.js';
import { eventually, launchChromium, SCREENSHOTS } from '../support/browser.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { startCli, type RunningCli } from '../support/run-cli.js';
import { useEtcdAndWorkers } from '../support/worker-fixture.js';

const PREFIX = 'cli-board-spec/';
const fixture = useEtcdAndWorkers(PREFIX, 2);
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

/** Starts the board on any free port; resolves with its printed link. */
async function startBoard(args: string[], env: Record<string, string> = {}): Promise<{ cli: RunningCli; link: URL }> {
  const cli = startCli(['board', '--port', '0', ...args], { ETCDCTL_ENDPOINTS: fixture.etcd.endpoints.join(','), NESTJS_ETCD_LOCK_PREFIX: PREFIX, ...env });
  const line = await cli.stdout.waitFor(l => l.startsWith('http'), 15_000, () => `no link printed; stderr: ${cli.stderr.items.join('\n')}`);
  return { cli, link: new URL(line) };
}

/** A GET with any Host header (fetch cannot set one): its status and body. */
function get(url: URL, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, response => {
      let body = '';
      response.on('data', chunk => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('nestjs-etcd-lock board', () => {
  it('binds 127.0.0.1, lets in only the link\'s token (no other Host), and is read-only unless --allow-force-unlock', async () => {
    const [holder] = await fixture.startWorkers(1);
    const { token } = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'payment:3' });
    const { cli, link } = await startBoard([]);
    try {
      expect(link.hostname).toBe('127.0.0.1');
      expect(cli.stderr.items.join('\n')).toMatch(/Lock board of cli-board-spec\/ at .* \(read-only\)/);
      const secret = link.searchParams.get('token')!;
      const api = new URL('/api/snapshot', link);
      expect((await get(api, {})).status).toBe(401);
      expect((await get(new URL('/?token=wrong', link), {})).status).toBe(401);
      expect((await get(api, { authorization: 'Bearer wrong' })).status).toBe(401);
      expect((await get(api, { authorization: `Bearer ${secret}`, host: `evil.example:${link.port}` })).status).toBe(403); // DNS rebinding
      const snapshot = await get(api, { authorization: `Bearer ${secret}` });
      expect(snapshot.status).toBe(200);
      const body = JSON.parse(snapshot.body) as { csrf: string; forceUnlock: boolean; locks: { key: string; holders: { token: string }[] }[] };
      expect(body).toMatchObject({ forceUnlock: false, locks: [{ key: 'payment:3', holders: [{ token: token.toString() }] }] });
      const refused = await fetch(new URL('/api/force-unlock', link), {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', 'x-csrf-token': body.csrf },
        body: JSON.stringify({ key: 'payment:3', token: token.toString(), confirm: 'payment:3' }),
      });
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { message: string }).message).toMatch(/read-only.*--allow-force-unlock/);

      // the browser trades the link's token for a cookie, and sees the lock, with no force-unlock button
      const page = await browser.newPage();
      await page.goto(link.href);
      expect(new URL(page.url()).search).toBe(''); // the token left the address bar
      await page.locator(`[data-lock="payment:3"] [data-holder-token="${token}"]`).waitFor({ timeout: 10_000 });
      expect(await page.locator('#readonly-note').isVisible()).toBe(true);
      expect(await page.locator('[data-force-unlock]').count()).toBe(0);
      await page.screenshot({ path: `${SCREENSHOTS}cli-board-read-only.png`, fullPage: true });
      await page.close();
      expect((await locks(holder.process.pid!)).length).toBe(1); // still held
    } finally {
      expect(await cli.stop()).toBe(0);
    }
    await holder.request({ op: 'release', key: 'payment:3' });
  });

  it('with --allow-force-unlock, filtered by a glob and by keyboard alone, the page force-unlocks and the CLI logs who did it', async () => {
    const [holder, other] = await fixture.startWorkers(2);
    const { token } = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'payment:4' });
    await other.request({ op: 'acquire', key: 'refund:1' });
    const { cli, link } = await startBoard(['--allow-force-unlock']);
    try {
      const page = await browser.newPage();
      await page.goto(link.href);
      await page.locator('[data-lock="refund:1"]').waitFor({ timeout: 10_000 });
      await page.getByLabel('Filter by lock name (glob)').fill('pay*');
      await page.locator('[data-lock="refund:1"]').waitFor({ state: 'detached', timeout: 5000 });
      expect(new URL(page.url()).hash).toBe('#key=pay*'); // a link keeps the filter
      await page.locator('[data-lock="payment:4"]').waitFor({ timeout: 5000 });

      await page.locator(`button[data-force-unlock="payment:4"][data-token="${token}"]`).focus();
      await page.keyboard.press('Enter');
      await page.keyboard.type('payment:4'); // the dialog put the focus in its input
      await page.keyboard.press('Enter');
      await holder.waitForEvent(e => e.event === 'lost' && e.reason === 'forced');
      await page.locator('#timeline > li[data-event-type="forced"][data-key="payment:4"]').waitFor({ timeout: 5000 });
      expect(await page.locator('#timeline > li[data-key="refund:1"]').count()).toBe(0); // filtered out
      await page.locator('#alert', { hasText: 'Unlocked payment:4' }).waitFor({ timeout: 5000 }); // announced to screen readers
      await page.close();
      await cli.stderr.waitFor(l => l.includes('Force-unlock of "payment:4" by') && l.includes('(nestjs-etcd-lock board)') && l.includes(`token ${token}`), 5000, () => cli.stderr.items.join('\n'));
    } finally {
      expect(await cli.stop()).toBe(0);
    }
    await other.request({ op: 'release', key: 'refund:1' });
  });

  it('on Redis (--redis): the same board, fed by its watch', async () => {
    const redis: RedisHandle = await startRedis();
    const app = new LockService({ backend: new RedisBackend({ url: redis.url }), prefix: PREFIX, ownerId: 'redis-app' });
    const { cli, link } = await startBoard(['--redis', redis.url]);
    try {
      const secret = link.searchParams.get('token')!;
      const snapshot = async () => JSON.parse((await get(new URL('/api/snapshot?key=job:*', link), { authorization: `Bearer ${secret}` })).body) as { store: string; locks: { key: string }[]; events: { type: string; key: string; token: string }[] };
      const lock = await app.acquire('job:1');
      await eventually(async () => (await snapshot()).locks.map(l => l.key), ['job:1'], 5000);
      await lock.release();
      await eventually(async () => (await snapshot()).events.map(e => `${e.type} ${e.key} ${e.token}`), [`acquired job:1 ${lock.token}`, `released job:1 ${lock.token}`], 5000);
      expect((await snapshot()).store).toMatch(/^Redis at redis:/);
    } finally {
      expect(await cli.stop()).toBe(0);
      await app.close();
      await redis.stop();
    }
  });

  it('leaves etcd clean: the board took no lock and keeps no lease', async () => {
    await fixture.stopWorkers();
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});

async function locks(pid: number): Promise<string[]> {
  const reader = new LockService({ etcd: { hosts: fixture.etcd.endpoints }, prefix: PREFIX });
  try {
    return (await reader.listLocks()).filter(l => l.holders.some(h => h.pid === pid)).map(l => l.key);
  } finally {
    await reader.close();
  }
}
