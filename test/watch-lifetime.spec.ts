// Watches end once, and close() after a compaction and a restart leaves nothing behind: no crash,
// no watch in etcd, no handle keeping the process alive, and an app's own etcd3 watch on a client
// it shares with the library still working. etcd3 keeps the id of a watch etcd cancelled and etcd
// gives the same id to the next watch on a new stream, so a second cancel would end somebody
// else's watch, or draw a reply etcd3 throws on from its stream handler. Real etcd, real
// compaction, real restarts.
import { describe, expect, it } from '@jest/globals';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { LockService } from '../lib/index.js';
import { expectEtcdClean, metric } from './support/etcd-state.js';
import { useEtcdAndWorkers } from './support/worker-fixture.js';

const PREFIX = 'watch-lifetime/';
const WORKER = fileURLToPath(new URL('./workers/close-after-compaction.worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const fixture = useEtcdAndWorkers(PREFIX, 2, { restartable: true });

const watchers = async () => metric(await fixture.etcd.metrics(), 'etcd_debugging_mvcc_watcher_total');

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !(await condition()); await sleep(20)) {
    if (Date.now() > end) throw new Error('condition not met in time');
  }
}

/**
 * Compacts etcd at its current revision and restarts it on the same data: every watch stream
 * fails. etcd3 re-attaches each of its watches from the revision it last saw, now compacted,
 * so etcd cancels them within its watch sync loop (every 100 ms); a watch on `app/config` saw
 * the last revision and resumes. The library's watches end with their stream and their owners
 * read before they watch again on a new one. Resolves once etcd answers again, and `settleMs`
 * later.
 */
async function compactAndRestart(settleMs: number): Promise<void> {
  for (let i = 0; i < 5; i++) await fixture.admin.put(`${PREFIX}\u0000filler`).value(String(i)); // move past the watches' revisions
  await fixture.admin.delete().key(`${PREFIX}\u0000filler`);
  // the last write before the compaction: a watch on it (an app's) resumes after the compacted revisions
  const revision = (await fixture.admin.put('app/config').value('before-restart')).header.revision;
  await fixture.admin.kv.compact({ revision, physical: true });
  await fixture.etcd.members[0].stop();
  await fixture.etcd.members[0].start();
  await until(() => fixture.admin.get(`${PREFIX}\u0000probe`).then(() => true, () => false));
  await sleep(settleMs);
}

describe('watches end once', () => {
  it("close() after a compaction and a reconnect leaves the app's own watch on a shared client alive", async () => {
    const client = new Etcd3({ hosts: fixture.etcd.endpoints }); // the app's client, handed to the library
    const locks = new LockService({ client, prefix: PREFIX, ttl: 2 });
    try {
      await locks.onModuleInit();
      await (await locks.acquire('warm-up')).release();
      await compactAndRestart(500); // every watch stream failed; the app's own etcd3 watch resumed
      // the app watches a key of its own on the new stream
      const seen: string[] = [];
      const errors: string[] = [];
      const appWatch = await client.watch().key('app/config').create();
      appWatch.on('put', kv => seen.push(kv.value.toString()));
      appWatch.on('error', err => errors.push(String(err)));
      await fixture.admin.put('app/config').value('before-close');
      await until(() => seen.length === 1);
      await locks.close();
      await fixture.admin.put('app/config').value('after-close');
      await until(() => seen.length === 2 || errors.length > 0, 3_000).catch(() => undefined);
      expect(errors).toEqual([]);
      expect(seen).toEqual(['before-close', 'after-close']);
      await appWatch.cancel();
    } finally {
      await locks.close();
      client.close();
    }
  });

  /** Runs test/workers/close-after-compaction.worker.ts through a compaction, a restart and close(); its exit code, stderr and etcd's watchers after. */
  async function closeAfterCompaction(run: { delayMs: number; settleMs: number; holdAfterRestart?: boolean; env?: Record<string, string> }) {
    const child = fork(WORKER, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ETCD_ENDPOINTS: fixture.etcd.endpoints.join(','), LOCK_PREFIX: PREFIX, NODE_OPTIONS: '', ...run.env },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', chunk => (stderr += String(chunk)));
    const exited = once(child, 'exit') as Promise<[number | null]>;
    // the worker's next message, or how it ended (with what it printed) if it died first
    const next = async (expected: string) => {
      const message = await Promise.race([once(child, 'message').then(([m]) => String(m)), exited.then(([code]) => `exit ${code}`)]);
      if (message !== expected) throw new Error(`worker: expected '${expected}', got '${message}'; stderr: ${stderr}`);
    };
    try {
      await next('ready');
      await compactAndRestart(run.settleMs);
      if (run.holdAfterRestart) {
        // a lock taken after the restart: its holder watch opens a new stream
        child.send({ op: 'hold', key: 'held-after-restart' });
        await next('holding');
      }
      child.send({ op: 'close', delayMs: run.delayMs });
      await next('closed');
      // nothing left open: the process ends by itself
      const [code] = await Promise.race([exited, sleep(5_000, undefined, { ref: false }).then(() => ['still running'] as [string])]);
      await until(async () => (await watchers()) === 0, 2_000).catch(() => undefined);
      return { code, stderr, watchers: await watchers() };
    } finally {
      child.kill('SIGKILL');
    }
  }

  it("close() after a compaction and a reconnect does not crash an app whose own watch keeps the shared stream open", async () => {
    // the app's watch resumes on etcd3's stream, which the library's close() must leave working
    const outcome = await closeAfterCompaction({ delayMs: 0, settleMs: 500, env: { SHARED_CLIENT: '1' } });
    expect(outcome).toEqual({ code: 0, stderr: '', watchers: 0 });
  });

  // close() at once and a little after the restart; with a lock held through the restart, whose holder
  // watch ends with the stream and is made again on a new one; and with a lock taken after it.
  // One test per timing: each runs a worker through a restart, and eleven of them in one test
  // passed its timeout on a busy 2-core machine.
  const runs: { delayMs: number; settleMs: number; holdAfterRestart?: boolean; env?: Record<string, string> }[] = [];
  for (const delayMs of [0, 20, 40, 60, 100]) runs.push({ delayMs, settleMs: 0 });
  for (const delayMs of [0, 5, 10, 40]) runs.push({ delayMs, settleMs: 500, env: { HOLD_THROUGH_RESTART: '1' } });
  for (const delayMs of [0, 40]) runs.push({ delayMs, settleMs: 500, holdAfterRestart: true });
  const timing = (run: (typeof runs)[number]) =>
    `close() ${run.delayMs} ms after, ${run.settleMs} ms settled${run.env?.HOLD_THROUGH_RESTART ? ', a lock held through the restart' : ''}${run.holdAfterRestart ? ', a lock taken after the restart' : ''}`;
  it.each(runs.map(run => [timing(run), run] as const))('with its own client, close() after a compaction and a reconnect throws nothing and leaves no watch or handle: %s', async (_, run) => {
    expect(await closeAfterCompaction(run)).toEqual({ code: 0, stderr: '', watchers: 0 });
  });

  it("a cancel that crosses etcd's own cancel of a compacted watch is ignored, not thrown from etcd3's stream handler", async () => {
    const client = new Etcd3({ hosts: fixture.etcd.endpoints });
    const locks = new LockService({ client, prefix: PREFIX }); // every client a LockService uses gets the guard
    const thrown: unknown[] = [];
    const onUnhandled = (err: unknown) => thrown.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const live = await client.watch().key('app/live').create(); // keeps the stream open
      const compactedAt = BigInt((await fixture.admin.put('app/config').value('x')).header.revision);
      await fixture.admin.kv.compact({ revision: compactedAt.toString(), physical: true });
      const stale = client.watch().key('app/config').startRevision((compactedAt - 1n).toString()).watcher();
      await once(stale, 'error'); // etcd cancelled it, and still answers one cancel for its id
      void stale.cancel().catch(() => undefined);
      await sleep(300);
      expect(thrown.map(String)).toEqual([]);
      await Promise.race([live.cancel(), sleep(2_000, undefined, { ref: false })]); // without the guard, etcd3's stream is broken here
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await locks.close();
      client.close();
    }
  });

  it('leaves etcd clean', async () => {
    await fixture.admin.delete().key('app/config');
    await expectEtcdClean(fixture.admin, PREFIX);
  });
});
