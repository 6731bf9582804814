// Reads the sample's state straight from etcd and checks the invariants the locks must keep.
import type { Etcd3 } from 'etcd3';
import { EtcdStore, fenceValue, type Account, type Order, type Payment } from '../../sample-app/src/store/etcd.store.js';

export interface Invariant {
  name: string;
  ok: boolean;
  value: string;
}

export interface Seed {
  accounts: Account[]; // initial balances
  orders: Order[];
}

export interface JobSummary {
  ticks: number;
  doubleRuns: number;
  byReplica: Record<string, number>;
  missing: number; // seconds of the load window in which no replica ran the job
}

/** Every invariant of the sample, from etcd's own state. */
export async function checkInvariants(
  client: Etcd3,
  store: EtcdStore,
  seed: Seed,
  window: { fromTick: number; toTick: number },
): Promise<{ invariants: Invariant[]; jobs: JobSummary; paidBy: Map<string, string> }> {
  const invariants: Invariant[] = [];
  const decode = <T>(all: Record<string, string>) => Object.entries(all).map(([k, v]) => [k, JSON.parse(v) as T] as const);

  // every order paid exactly once: status paid, exactly one payment record, and it is the order's
  const payments = decode<Payment>(await client.getAll().prefix(store.key('payments', '')).strings()).map(([, p]) => p);
  const byOrder = new Map<string, Payment[]>();
  for (const p of payments) byOrder.set(p.orderId, [...(byOrder.get(p.orderId) ?? []), p]);
  const paidBy = new Map<string, string>();
  let exactlyOnce = 0;
  const bad: string[] = [];
  for (const seeded of seed.orders) {
    const order = await store.getOrder(seeded.id);
    const records = byOrder.get(seeded.id) ?? [];
    if (order?.status === 'paid' && records.length === 1 && records[0].id === order.paymentId) {
      exactlyOnce++;
      paidBy.set(seeded.id, records[0].replica);
    } else bad.push(`${seeded.id}: ${order?.status ?? 'missing'}, ${records.length} payments`);
  }
  invariants.push({
    name: 'every order paid exactly once',
    ok: exactlyOnce === seed.orders.length && payments.length === seed.orders.length,
    value: `${exactlyOnce}/${seed.orders.length} orders, ${payments.length} payment records${bad.length ? `; e.g. ${bad.slice(0, 3).join('; ')}` : ''}`,
  });

  // balances exact: initial - the amounts of the orders paid from the account
  let exact = 0;
  const off: string[] = [];
  for (const initial of seed.accounts) {
    const expected = initial.balance - seed.orders.filter(o => o.accountId === initial.id).reduce((sum, o) => sum + o.amount, 0);
    const actual = (await store.getAccount(initial.id))?.balance;
    if (actual === expected) exact++;
    else off.push(`${initial.id}: ${actual} != ${expected}`);
  }
  const debited = seed.orders.reduce((sum, o) => sum + o.amount, 0);
  invariants.push({
    name: 'balances exact (initial - paid)',
    ok: exact === seed.accounts.length,
    value: `${exact}/${seed.accounts.length} accounts, ${(debited / 100).toFixed(2)} debited${off.length ? `; ${off.join('; ')}` : ''}`,
  });

  // each job tick run once: put-if-absent records, and a "double" record for any second run
  const runs = decode<{ tick: number; replica: string }>(await client.getAll().prefix(store.key('jobs', 'settlement', '')).strings());
  const doubles = await client.getAll().prefix(store.key('jobs', 'double', '')).keys();
  const byReplica: Record<string, number> = {};
  for (const [, run] of runs) byReplica[run.replica] = (byReplica[run.replica] ?? 0) + 1;
  const ran = new Set(runs.map(([, run]) => run.tick));
  let missing = 0;
  for (let t = window.fromTick; t <= window.toTick; t++) if (!ran.has(t)) missing++;
  const jobs = { ticks: runs.length, doubleRuns: doubles.length, byReplica, missing };
  invariants.push({
    name: 'each job tick run once (no double run)',
    ok: doubles.length === 0 && runs.length > 0,
    value: `${runs.length} ticks run, ${doubles.length} double runs (${Object.entries(byReplica)
      .sort()
      .map(([r, n]) => `${r}: ${n}`)
      .join(', ')})`,
  });

  // no stale fenced write accepted: each fence holds the token of the write that is in the data,
  // and a write with a token below it is refused now
  let consistent = 0;
  const fences: string[] = [];
  for (const [orderId, [p]] of byOrder) {
    const fence = await client.get(store.fenceKey(`order:${orderId}`)).string();
    if (fence === fenceValue(BigInt(p.orderToken))) consistent++;
    else fences.push(`order:${orderId} fence ${fence} != ${p.orderToken}`);
  }
  const probe = seed.orders.find(o => byOrder.has(o.id));
  let probeRejected = false;
  if (probe) {
    const token = BigInt(byOrder.get(probe.id)![0].orderToken) - 1n; // a holder that lost the lock to the payer
    const probeKey = store.key('stale-probe', probe.id);
    const before = store.staleWritesRejected;
    probeRejected = !(await store.fencedWrite([{ resource: `order:${probe.id}`, token }], { [probeKey]: 'stale' }));
    probeRejected &&= store.staleWritesRejected === before + 1 && (await client.get(probeKey).string()) === null;
  }
  invariants.push({
    name: 'no stale fenced write accepted',
    ok: consistent === byOrder.size && probeRejected,
    value: `fence = payer's token on ${consistent}/${byOrder.size} orders; token-1 write ${probeRejected ? 'rejected' : 'ACCEPTED'}${fences.length ? `; ${fences.slice(0, 3).join('; ')}` : ''}`,
  });

  return { invariants, jobs, paidBy };
}
