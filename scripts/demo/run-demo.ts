// `npm run demo`: 3 replicas of the sample app on one etcd, concurrent payments on all of them,
// one replica SIGKILLed half way, then the invariants checked from etcd. Exits 1 on FAIL.
// Flags: --quick (~4 s of load), --duration <s>, --orders <n>, --clients <n>, --redis (the locks
// in a Redis, the data still in etcd). Respects ETCD_ENDPOINTS and REDIS_URL.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { Redis } from 'ioredis';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { startRedis, type RedisHandle } from '../../harness/redis.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import { namespaceOf } from '../../lib/backends/redis/redis-client.js';
import { LockService } from '../../lib/engine/lock.service.js';
import { SampleConfig } from '../../sample-app/src/config/sample.config.js';
import { EtcdStore, type Account, type Order } from '../../sample-app/src/store/etcd.store.js';
import { summarizeLockWaits } from './lock-metrics.js';
import { newLoadStats, pay, percentile, runClients } from './load.js';
import { openLog, Replica } from './replica.process.js';
import { checkInvariants, type Invariant } from './verdict.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = path.join(ROOT, 'sample-app/dist/main.js');
const TTL = 2;
const REPLICAS = 3;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    orders: { type: 'string' },
    clients: { type: 'string' },
    redis: { type: 'boolean', default: false },
  },
});
const durationS = Number(flags.duration ?? (flags.quick ? 4 : 12));
const orderCount = Number(flags.orders ?? (flags.quick ? 30 : 120));
const clientCount = Number(flags.clients ?? (flags.quick ? 6 : 12));

const tty = process.stdout.isTTY;
const say = (line = '') => process.stdout.write(`${tty ? '\r\x1b[2K' : ''}${line}\n`);
const fmt = (n: number) => n.toLocaleString('en-US');
const ms = (n: number) => (Number.isNaN(n) ? '-' : `${n.toFixed(n < 10 ? 1 : 0)} ms`);

const run = randomBytes(3).toString('hex');
const env = { LOCK_PREFIX: `demo-${run}/locks/`, DATA_PREFIX: `demo-${run}/data/`, LOCK_TTL: String(TTL) };
const logDir = mkdtempSync(path.join(tmpdir(), 'nestjs-etcd-lock-demo-'));
const log = openLog(path.join(logDir, 'replicas.log'));

let etcd: EtcdHandle | undefined;
let redis: RedisHandle | undefined;
let admin: Etcd3 | undefined;
let locks: LockService | undefined; // lists who holds what, through the library's own admin API
let store: EtcdStore | undefined;
const replicas: Replica[] = [];
let cleaning: Promise<void> | undefined;

/** Stops everything this run started: replicas (SIGTERM), its keys in etcd and Redis, the servers. */
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    await Promise.all(replicas.map(r => r.stop().catch(() => undefined)));
    await locks?.close().catch(() => undefined);
    await admin?.delete().prefix(`demo-${run}/`).catch(() => undefined);
    if (redis) await deleteRedisNamespace(redis.url, env.LOCK_PREFIX).catch(() => undefined);
    store?.onApplicationShutdown();
    admin?.close();
    await etcd?.stop().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    log.end();
  })());
}

/** The namespace's keys, its never-expiring token counter among them: a REDIS_URL server is not ours to leave them on. */
async function deleteRedisNamespace(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    for await (const keys of client.scanStream({ match: `${namespaceOf(prefix)}*`, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length) await client.del(...keys);
    }
  } finally {
    client.disconnect();
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`\n${signal}: stopping replicas and etcd…`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function post(replica: Replica, url: string, body: unknown): Promise<void> {
  const res = await fetch(replica.url(url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${url} on ${replica.name}: ${res.status} ${await res.text()}`);
}

async function main(): Promise<boolean> {
  const where = flags.redis ? 'locks in Redis, data in etcd' : 'locks and data in etcd';
  say(`nestjs-etcd-lock demo: ${REPLICAS} replicas of sample-app, ${where}, lock TTL ${TTL} s`);
  etcd = await startEtcd({ log: say });
  say(`etcd: ${etcd.source === 'env' ? 'ETCD_ENDPOINTS' : 'throwaway local etcd'} ${etcd.endpoints.join(',')}`);
  if (flags.redis) {
    redis = await startRedis();
    say(`redis: ${process.env.REDIS_URL ? 'REDIS_URL' : 'throwaway local redis-server'} ${redis.url}`);
  }
  admin = new Etcd3({ hosts: etcd.endpoints });
  locks = new LockService({ ...(redis ? { backend: new RedisBackend({ url: redis.url }) } : { client: admin }), prefix: env.LOCK_PREFIX });
  store = new EtcdStore(SampleConfig.fromEnv({ ETCD_ENDPOINTS: etcd.endpoints.join(','), ...env }));

  const alert = (line: string) => say(`  ! ${line}`);
  // LOCK_REDIS_URL is always set, so one inherited from the shell cannot switch the backend
  const replicaEnv = { ETCD_ENDPOINTS: etcd.endpoints.join(','), LOCK_REDIS_URL: redis?.url ?? '', ...env };
  const started = await Promise.all(Array.from({ length: REPLICAS }, (_, i) => Replica.start(MAIN, `r${i + 1}`, replicaEnv, log, alert)));
  replicas.push(...started);
  say(`replicas: ${replicas.map(r => `${r.name} pid ${r.pid} :${r.port}`).join(', ')}  (logs: ${log.path})`);

  // seed: 5 accounts and the orders, amounts in cents
  const accounts: Account[] = Array.from({ length: 5 }, (_, i) => ({ id: `acct-${i + 1}`, balance: 1_000_000 }));
  const orders: Order[] = Array.from({ length: orderCount }, (_, i) => ({
    id: `order-${String(i + 1).padStart(4, '0')}`,
    accountId: accounts[i % accounts.length].id,
    amount: 100 + Math.floor(Math.random() * 4_900),
    status: 'unpaid',
  }));
  for (const a of accounts) await post(replicas[0], '/accounts', a);
  for (let i = 0; i < orders.length; i += 10) {
    await Promise.all(orders.slice(i, i + 10).map((o, j) => post(replicas[(i + j) % REPLICAS], '/orders', o)));
  }
  say(`seeded ${accounts.length} accounts, ${orders.length} orders; ${clientCount} clients pay them on all replicas for ${durationS} s`);

  // load, with a progress line; the middle replica is SIGKILLed half way
  const stats = newLoadStats();
  const t0 = performance.now();
  const until = t0 + durationS * 1000;
  const fromTick = Math.floor(Date.now() / 1000) + 1;
  const released = () => Math.ceil(orders.length * Math.min(1, (performance.now() - t0 + 300) / (durationS * 900)));
  const progress = setInterval(
    () => {
      const t = ((performance.now() - t0) / 1000).toFixed(1).padStart(5);
      const line = `${t} s  sent ${fmt(stats.sent)}  served ${fmt(stats.served)}  paid ${stats.paidNow}/${orders.length}  409 ${stats.conflicts}  errors ${stats.errors}  replicas ${replicas.map(r => `${r.name}${r.alive ? '✓' : '✗'}`).join(' ')}`;
      process.stdout.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
    },
    tty ? 200 : 1000,
  );
  const load = runClients({ clients: clientCount, orderIds: orders.map(o => o.id), released, window: 4, replicas, until, stats });

  await sleep(durationS * 500);
  const victim = replicas[1];
  type Counters = Record<string, number>;
  const victimStats = (await (await fetch(victim.url('/stats'))).json().catch(() => ({}))) as Counters;
  const victimMetrics = await (await fetch(victim.url('/metrics'))).text().catch(() => ''); // what it counted until now
  const killedAt = performance.now();
  await victim.kill(); // SIGKILL, and the process has exited: from now on it can release nothing
  // what the victim held or waited for when it died, as `listLocks` shows it (the entries name their
  // ownerId). Only its session's expiry can remove these entries now.
  const victimEntries = async () => {
    const held: string[] = [];
    const queued: string[] = [];
    for (const info of await locks!.listLocks()) {
      for (const h of info.holders) if (h.owner === victim.name) held.push(info.key);
      for (const w of [...info.waiters, ...info.unfairWaiters]) if (w.owner === victim.name) queued.push(info.key);
    }
    return { held, queued };
  };
  const { held, queued } = await victimEntries();
  const names = [...new Set(held)];
  say(
    `SIGKILL ${victim.name} (pid ${victim.pid}) at ${((killedAt - t0) / 1000).toFixed(1)} s, holding ${held.length ? held.join(', ') : 'no lock at that instant'}` +
      (queued.length ? `; queued on ${[...new Set(queued)].join(', ')}` : ''),
  );
  let takeover = 'no entries to take over';
  const entries = held.length + queued.length;
  if (entries) {
    for (;;) {
      const left = await victimEntries();
      if (!left.held.length && !left.queued.length) break;
      await sleep(25);
    }
    const session = redis ? `Redis session TTL ${TTL} s from its last heartbeat` : `etcd lease TTL ${TTL} s from its last keepalive`;
    takeover = `its ${entries} queue entr${entries === 1 ? 'y' : 'ies'} expired ${((performance.now() - killedAt) / 1000).toFixed(2)} s after the kill (${session}); the other replicas took over`;
    say(`${victim.name}: ${takeover}`);
  }

  await load;
  clearInterval(progress);
  const toTick = Math.floor(Date.now() / 1000) - 1;
  say(`load done after ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // a last pass over unpaid orders (the ones released at the very end), on the survivors
  const survivors = replicas.filter(r => r.alive);
  const sweep = newLoadStats();
  for (let attempt = 0; attempt < 3; attempt++) {
    const unpaid = [];
    for (const o of orders) if ((await store.getOrder(o.id))?.status !== 'paid') unpaid.push(o.id);
    if (!unpaid.length) break;
    await Promise.all(unpaid.map((id, i) => pay(survivors[i % survivors.length], id, sweep)));
  }
  await sleep(1_600); // minHold of the last job ticks

  const replicaStats = await Promise.all(survivors.map(async r => (await (await fetch(r.url('/stats'))).json()) as Counters));
  const waits = summarizeLockWaits([victimMetrics, ...(await Promise.all(survivors.map(async r => (await fetch(r.url('/metrics'))).text())))], 'order:<<id>>');
  const health = await Promise.all(survivors.map(async r => `${r.name} ${(await fetch(r.url('/health'))).status}`));
  const { invariants, jobs, paidBy } = await checkInvariants(admin, store, { accounts, orders }, { fromTick, toTick });
  const victimOrders = names.filter(n => n.startsWith('order:')).map(n => n.slice('order:'.length));
  const sorted = [...stats.latenciesMs].sort((a, b) => a - b);
  const pass = invariants.every(i => i.ok);

  const row = (label: string, value: string) => say(`  ${label.padEnd(34)} ${value}`);
  const sum = (key: string) => [...replicaStats, victimStats].reduce((n, s) => n + (s[key] ?? 0), 0);
  say();
  say('──────────────────────────────── verdict ────────────────────────────────');
  row('replicas / etcd', `${REPLICAS} (${victim.name} SIGKILLed half way) / ${etcd.endpoints.join(',')}`);
  if (redis) row('locks in', `Redis ${redis.url}`);
  row('load', `${durationS} s, ${clientCount} clients, ${orders.length} orders on ${accounts.length} accounts`);
  row('requests sent', fmt(stats.sent));
  row('  served (2xx)', `${fmt(stats.served)} (${stats.paidNow} paid it, ${fmt(stats.served - stats.paidNow)} found it already paid)`);
  row('  conflicts (409)', fmt(stats.conflicts));
  row('  errors', `${stats.errors}${stats.errorSamples.length ? ` e.g. ${stats.errorSamples.join(' | ')}` : ''}`);
  row('  cut off by the kill', `${stats.cutByKill} (in flight to ${victim.name} when it died)`);
  row('  final sweep', `${sweep.sent} requests for orders released at the end`);
  row('pay latency (lock wait + work)', `p50 ${ms(percentile(sorted, 50))}  p99 ${ms(percentile(sorted, 99))}  max ${ms(sorted.at(-1) ?? NaN)}`);
  row('lock wait, order:<<id>> (/metrics)', `p50 ${ms(waits.p50Ms)}  p99 ${ms(waits.p99Ms)} (bucket estimates); ${fmt(waits.contended)} of ${fmt(waits.acquired)} acquisitions queued behind another holder`);
  row('/health (Terminus)', health.join(', '));
  row('takeover after SIGKILL', takeover);
  if (victimOrders.length) row(`  orders ${victim.name} held`, victimOrders.map(id => `${id} → paid by ${paidBy.get(id) ?? '?'}`).join(', '));
  row('job ticks', `${jobs.ticks} run, ${jobs.missing} second(s) of the load without a run, ${sum('jobSkips')} skips`);
  row('stale writes rejected (replicas)', String(sum('staleWritesRejected')));
  row('locks lost (replicas)', String(sum('locksLost')));
  say('  invariants:');
  for (const inv of invariants as Invariant[]) say(`    ${inv.ok ? 'ok  ' : 'FAIL'} ${inv.name.padEnd(40)} ${inv.value}`);
  say(`  verdict: ${pass ? 'PASS' : 'FAIL'}`);
  say('─────────────────────────────────────────────────────────────────────────');
  return pass;
}

main()
  .then(
    async pass => {
      await cleanup();
      process.exit(pass ? 0 : 1);
    },
    async (err: unknown) => {
      say(`demo failed: ${(err as Error)?.stack ?? err}`);
      await cleanup();
      process.exit(2);
    },
  );
