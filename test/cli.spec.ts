// The operator CLI (lib/cli/main.ts), run as a child process against a real etcd, with the
// locks held by real worker processes: outputs, exit codes, and the unlock confirmation.
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectEtcdClean } from './support/etcd-state.js';
import { useEtcdAndWorkers } from './support/worker-fixture.js';
import { runCli, startCli } from './support/run-cli.js';

const PREFIX = 'cli-spec/';
const fixture = useEtcdAndWorkers(PREFIX, 2);
const { startWorkers } = fixture;

/** Runs the CLI against this file's etcd and prefix. */
function cli(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  return runCli(args, { ETCDCTL_ENDPOINTS: fixture.etcd.endpoints.join(','), NESTJS_ETCD_LOCK_PREFIX: PREFIX, ...options.env }, options.stdin);
}

describe('nestjs-etcd-lock CLI', () => {
  it('list and info: a table by default, JSON with --json, for locks held and awaited by other processes', async () => {
    const [holder, waiter] = await startWorkers(2);
    const held = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'order:7' });
    const waiting = waiter.request({ op: 'acquire', key: 'order:7' });
    await waiter.waitForEvent(e => e.event === 'waiting');

    const list = await cli(['list']);
    expect(list).toMatchObject({ code: 0, stderr: '' });
    const [header, row, ...more] = list.stdout.trim().split('\n');
    expect(header.split(/\s+/)).toEqual(['LOCK', 'HOLDER', 'PID', 'HOST', 'TOKEN', 'HELD', 'TTL', 'WAITING']);
    expect(row.split(/\s{2,}/)).toEqual(expect.arrayContaining(['order:7', String(holder.process.pid), held.token.toString()]));
    expect(row.trim().endsWith(' 1')).toBe(true); // one waiter
    expect(more).toEqual([]);

    const json = await cli(['list', 'order:', '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { key: string; holder: { pid: number; token: string }; waiters: { pid: number }[] }[];
    expect(parsed.map(l => [l.key, l.holder.pid, l.holder.token, l.waiters.map(w => w.pid)])).toEqual([['order:7', holder.process.pid, held.token.toString(), [waiter.process.pid]]]);

    const info = await cli(['info', 'order:7']);
    expect(info.code).toBe(0);
    const lines = info.stdout.trim().split('\n');
    expect(lines[0]).toBe('Lock "order:7": 1 holding, 1 waiting');
    expect(lines[2]).toMatch(new RegExp(`^holder\\s.*\\s${holder.process.pid}\\s.*\\s${held.token}\\s+exclusive\\s+held`));
    expect(lines[3]).toMatch(new RegExp(`^waiter 1\\s.*\\s${waiter.process.pid}\\s.*waiting`));
    expect(JSON.parse((await cli(['info', 'order:7', '--json'])).stdout)).toMatchObject({ key: 'order:7', holder: { pid: holder.process.pid } });
    expect(await cli(['info', 'order:8'])).toMatchObject({ code: 0, stdout: 'Lock "order:8" is free under cli-spec/: nobody holds or waits for it.\n' });

    await holder.request({ op: 'release', key: 'order:7' });
    await waiting;
    await waiter.request({ op: 'release', key: 'order:7' });
    expect(await cli(['list'])).toMatchObject({ code: 0, stdout: 'No lock is held under cli-spec/.\n', stderr: '' }); // its workers' prefix: no hint
    expect(await cli(['list', 'order:'])).toMatchObject({ code: 0, stdout: 'No lock whose name starts with "order:" is held under cli-spec/.\n' });
  });

  it('list, info and watch without a prefix name the prefix they searched, and the prefixes in use instead (from their lease markers)', async () => {
    const [holder] = await startWorkers(1);
    await holder.request({ op: 'acquire', key: 'order:7' });
    const noPrefix = { NESTJS_ETCD_LOCK_PREFIX: '' };
    const hint = 'Lock prefixes in use in this etcd: cli-spec/';

    const list = await cli(['list'], { env: noPrefix });
    expect(list).toMatchObject({ code: 0, stdout: 'No lock is held under nestjs-etcd-lock/.\n', stderr: `${hint} (1 held). Pass --prefix to look there.\n` });
    expect(await cli(['list', '--json'], { env: noPrefix })).toMatchObject({ code: 0, stdout: '[]\n', stderr: list.stderr });
    expect(await cli(['info', 'order:7'], { env: noPrefix })).toMatchObject({
      code: 0,
      stdout: 'Lock "order:7" is free under nestjs-etcd-lock/: nobody holds or waits for it.\n',
      stderr: `${hint} ("order:7" held there). Pass --prefix to look there.\n`,
    });
    const watch = startCli(['watch'], { ETCDCTL_ENDPOINTS: fixture.etcd.endpoints.join(',') });
    try {
      await watch.stderr.waitFor(line => line.startsWith(hint), 15_000, () => `no hint: ${watch.stderr.items.join('\n')}`);
      expect(watch.stderr.items[0]).toBe('Watching locks under nestjs-etcd-lock/; Ctrl-C to stop.');
    } finally {
      expect(await watch.stop()).toBe(0);
    }
    // with the right prefix, no hint; with no session anywhere, a plain answer
    expect((await cli(['info', 'order:7'])).stderr).toBe('');
    await fixture.stopWorkers();
    expect(await cli(['list'], { env: noPrefix })).toMatchObject({
      code: 0,
      stdout: 'No lock is held under nestjs-etcd-lock/.\n',
      stderr: 'No lock prefix is in use in this etcd: no process of nestjs-etcd-lock has a session there.\n',
    });
  });

  it('unlock asks first: "n" (or no answer) keeps the lock and exits 1; "y" removes the holder, which loses it as forced', async () => {
    const [holder] = await startWorkers(1);
    await holder.request({ op: 'acquire', key: 'stuck' });
    await new Promise(resolve => setTimeout(resolve, 300)); // held past 100 ms: its holder watches its key

    for (const stdin of ['n\n', '']) {
      const refused = await cli(['unlock', 'stuck'], { stdin });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`Force-unlock "stuck", held by`);
      expect(refused.stderr).toContain(`pid ${holder.process.pid}`);
      expect(refused.stderr).toContain('Not unlocked');
      expect(await holder.request({ op: 'probe', key: 'stuck' })).toMatchObject({ isHeld: true });
    }

    const done = await cli(['unlock', 'stuck'], { stdin: 'y\n' });
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^Unlocked "stuck": removed .* \(token \d+\)\.\n$/);
    expect(await holder.waitForEvent(e => e.event === 'lost')).toMatchObject({ key: 'stuck', reason: 'forced' });
    expect(await cli(['unlock', 'stuck', '--yes'])).toMatchObject({ code: 0, stderr: 'Lock "stuck" is not held under cli-spec/: nothing to unlock.\n' });
    await holder.request({ op: 'release', key: 'stuck' });
  });

  it('--yes unlocks without asking; --json prints the holders removed', async () => {
    const [holder] = await startWorkers(1);
    const held = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'batch' });
    const done = await cli(['unlock', 'batch', '--yes', '--json']);
    expect(done).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(done.stdout) as { token: string }[]).map(h => h.token)).toEqual([held.token.toString()]);
    expect(await fixture.admin.getAll().prefix(`${PREFIX}batch/`).keys()).toEqual([]);
    await holder.request({ op: 'release', key: 'batch' });
  });

  it('unlock --token removes only the holder with that token: a stale token removes nothing', async () => {
    const [holder] = await startWorkers(1);
    const held = await holder.request<{ token: bigint }>({ op: 'acquire', key: 'night-run' });
    expect(await cli(['unlock', 'night-run', '--yes', '--token', String(held.token + 1n)])).toMatchObject({ code: 0, stderr: `Lock "night-run" is not held with token ${held.token + 1n} under cli-spec/: nothing to unlock.\n` });
    expect(await fixture.admin.getAll().prefix(`${PREFIX}night-run/`).keys()).toHaveLength(1);
    const done = await cli(['unlock', 'night-run', '--yes', '--token', String(held.token)]);
    expect(done).toMatchObject({ code: 0, stdout: expect.stringContaining(`Unlocked "night-run": removed`) });
    await holder.waitForEvent(e => e.event === 'lost' && e.reason === 'forced');
    await holder.request({ op: 'release', key: 'night-run' });
  });

  it('bad usage exits 2 with the usage; an unreachable etcd exits 1 naming it', async () => {
    for (const args of [[], ['lock'], ['info'], ['list', 'a', 'b'], ['list', '--bogus'], ['list', '--token', '3'], ['unlock', 'x', '--token', 'abc']]) {
      const out = await cli(args);
      expect({ args, code: out.code }).toEqual({ args, code: 2 });
      expect(out.stderr).toContain('Usage: nestjs-etcd-lock <command>');
    }
    const down = await cli(['list'], { env: { ETCDCTL_ENDPOINTS: '127.0.0.1:1' } });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('etcd did not answer at 127.0.0.1:1');
    const bad = await cli(['info', 'a\u0001b']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Invalid lock key');
  });
});

describe('nestjs-etcd-lock watch', () => {
  it('prints other processes\' locks as they are acquired, released and expire, as lines or JSON lines, until Ctrl-C (exit 0)', async () => {
    const env = { ETCDCTL_ENDPOINTS: fixture.etcd.endpoints.join(','), NESTJS_ETCD_LOCK_PREFIX: PREFIX };
    const json = startCli(['watch', 'ship:', '--json'], env);
    const lines = startCli(['watch'], env);
    try {
      await json.stderr.waitFor(line => line.startsWith('Watching locks under cli-spec/ whose name starts with "ship:"'), 15_000, () => 'the JSON watch did not start');
      await lines.stderr.waitFor(line => line.startsWith('Watching locks under cli-spec/;'), 15_000, () => 'the watch did not start');
      const [a, b] = await startWorkers(2);
      const t1 = (await a.request<{ token: bigint }>({ op: 'acquire', key: 'ship:1' })).token;
      await a.request({ op: 'acquire', key: 'dock:1' }); // outside the JSON watch's prefix
      await a.request({ op: 'release', key: 'ship:1' });
      const t2 = (await b.request<{ token: bigint }>({ op: 'acquire', key: 'ship:2' })).token;
      await b.signal('SIGKILL');
      await json.stdout.waitFor(line => line.includes('"expired"'), 10_000, () => `no expired line: ${json.stdout.items.join('\n')}`);
      await lines.stdout.waitFor(line => / expired +ship:2 /.test(line), 10_000, () => `no expired line: ${lines.stdout.items.join('\n')}`);

      const events = json.stdout.items.map(line => JSON.parse(line) as { type: string; key: string; token: string; owner: string; origin: string; reason?: string });
      expect(events.map(e => [e.type, e.key, e.token, e.origin, e.reason])).toEqual([
        ['acquired', 'ship:1', t1.toString(), 'remote', undefined],
        ['released', 'ship:1', t1.toString(), 'remote', undefined],
        ['acquired', 'ship:2', t2.toString(), 'remote', undefined],
        ['expired', 'ship:2', t2.toString(), 'remote', 'session-expired'],
      ]);
      expect(events[3].owner).toContain(`:${b.process.pid}:`);
      const printed = lines.stdout.items.map(line => line.split(/ {2,}/).slice(1, 3).join(' '));
      expect(printed).toEqual(['acquired ship:1', 'acquired dock:1', 'released ship:1', 'acquired ship:2', 'expired ship:2']);
      expect(lines.stdout.items[4]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT.*Z  expired   ship:2  .*:${b.process.pid}:.*  token ${t2}  session-expired  held \\d+\\.\\d s$`));
    } finally {
      expect(await json.stop()).toBe(0);
      expect(await lines.stop('SIGTERM')).toBe(0);
    }
  });
});

describe('nestjs-etcd-lock watch, held time', () => {
  it('prints how long a lock was held since its holder took it, also when that was before the watch started', async () => {
    const env = { ETCDCTL_ENDPOINTS: fixture.etcd.endpoints.join(','), NESTJS_ETCD_LOCK_PREFIX: PREFIX };
    const [holder, waiter] = await startWorkers(2);
    await holder.request({ op: 'acquire', key: 'long:1' }); // taken at once
    await holder.request({ op: 'acquire', key: 'long:2' });
    const waited = waiter.request({ op: 'acquire', key: 'long:2' });
    await waiter.waitForEvent(e => e.event === 'waiting');
    await sleep(1_000);
    await holder.request({ op: 'release', key: 'long:2' }); // taken after a wait: held since the handoff, not since it queued
    await waited;
    const heldFrom = Date.now();
    await sleep(2_000);
    const watch = startCli(['watch', 'long:'], env);
    try {
      await watch.stderr.waitFor(line => line.startsWith('Watching locks under'), 15_000, () => 'the watch did not start');
      const heldAtLeast = (Date.now() - heldFrom) / 1000;
      await holder.request({ op: 'release', key: 'long:1' });
      await waiter.request({ op: 'release', key: 'long:2' });
      await watch.stdout.waitFor(line => / released +long:2 /.test(line), 10_000, () => `no release of long:2: ${watch.stdout.items.join('\n')}`);
      const held = Object.fromEntries(watch.stdout.items.map(line => [/ (long:\d) /.exec(line)![1], Number(/ held (\d+\.\d) s$/.exec(line)?.[1])]));
      expect(held['long:1']).toBeGreaterThanOrEqual(Math.floor((heldAtLeast + 1) * 10) / 10);
      expect(held['long:2']).toBeGreaterThanOrEqual(Math.floor(heldAtLeast * 10) / 10);
      expect(held['long:1'] - held['long:2']).toBeGreaterThanOrEqual(0.9); // long:2 waited 1 s of it
    } finally {
      expect(await watch.stop()).toBe(0);
    }
  });
});

describe('cleanup', () => {
  it('leaves no lock keys and no leases in etcd', async () => {
    await fixture.stopWorkers();
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});
