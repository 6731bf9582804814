import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Etcd3 } from 'etcd3';
import { SampleConfig } from '../config/sample.config.js';

export interface Account {
  id: string;
  balance: number; // in cents
}

export interface Order {
  id: string;
  accountId: string;
  amount: number; // in cents
  status: 'unpaid' | 'paid';
  paymentId?: string;
}

export interface Payment {
  id: string;
  orderId: string;
  accountId: string;
  amount: number;
  replica: string;
  orderToken: string;
  accountToken: string;
}

/** A lock's fencing token for one resource, e.g. `{ resource: 'order:42', token: lock.token }`. */
export interface Fence {
  resource: string;
  token: bigint;
}

/**
 * Fencing tokens are bigint create revisions; etcd compares values as bytes, so a token is
 * stored as 20 zero-padded decimal digits (2^64 has 20): then byte order is numeric order and
 * one Value compare in the transaction does the fencing check.
 */
export const fenceValue = (token: bigint): string => token.toString().padStart(20, '0');

const seg = (id: string) => encodeURIComponent(id);

/**
 * All state that must stay exact across replicas, in etcd under DATA_PREFIX: accounts,
 * orders, payments, the highest fencing token accepted per resource, and job runs per tick.
 *
 *   <data>accounts/<id>          Account JSON
 *   <data>orders/<id>            Order JSON
 *   <data>payments/<order>/<id>  Payment JSON (one per successful payment: two would be a double payment)
 *   <data>fences/<resource>      highest fencing token accepted for that resource (padded)
 *   <data>jobs/settlement/<tick> the replica that ran the tick
 *   <data>jobs/double/<tick>/…   a second run of a tick (must never exist)
 */
@Injectable()
export class EtcdStore implements OnApplicationShutdown {
  readonly client: Etcd3;
  /** Fenced writes this process saw rejected because a newer token was already accepted. */
  staleWritesRejected = 0;

  constructor(private readonly config: SampleConfig) {
    this.client = new Etcd3({ hosts: config.etcdEndpoints });
  }

  get prefix(): string {
    return this.config.dataPrefix;
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join('/');
  }

  accountKey = (id: string) => this.key('accounts', seg(id));
  orderKey = (id: string) => this.key('orders', seg(id));
  fenceKey = (resource: string) => this.key('fences', seg(resource));

  /** Creates the account if absent (with its fence at token 0); false if it exists. */
  async createAccount(account: Account): Promise<boolean> {
    return this.createWithFence(this.accountKey(account.id), account, `account:${account.id}`);
  }

  /** Creates the order if absent (with its fence at token 0); false if it exists. */
  async createOrder(order: Order): Promise<boolean> {
    return this.createWithFence(this.orderKey(order.id), order, `order:${order.id}`);
  }

  private async createWithFence(key: string, value: object, resource: string): Promise<boolean> {
    // put-if-absent of the record and its fence in one transaction
    const res = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(JSON.stringify(value)), this.client.put(this.fenceKey(resource)).value(fenceValue(0n)))
      .commit();
    return res.succeeded;
  }

  async getAccount(id: string): Promise<Account | undefined> {
    return this.getJson<Account>(this.accountKey(id));
  }

  async getOrder(id: string): Promise<Order | undefined> {
    return this.getJson<Order>(this.orderKey(id));
  }

  async getPayments(orderId: string): Promise<Payment[]> {
    const all = await this.client.getAll().prefix(this.key('payments', seg(orderId), '')).strings();
    return Object.values(all).map(v => JSON.parse(v) as Payment);
  }

  private async getJson<T>(key: string): Promise<T | undefined> {
    const raw = await this.client.get(key).string();
    return raw === null ? undefined : (JSON.parse(raw) as T);
  }

  /**
   * The fenced write: applies `puts` only if every fence's token is >= the highest token
   * already accepted for its resource, and records the new highest tokens, all in ONE etcd
   * transaction (no gap between check and write). A holder that was paused past its lease
   * and wakes up with an old token is refused here. Returns false (and counts it) if refused.
   */
  async fencedWrite(fences: Fence[], puts: Record<string, string>): Promise<boolean> {
    const [first, ...rest] = fences;
    // accepted iff stored < token + 1, i.e. stored <= token (etcd has no <= compare); a missing
    // fence key never compares true, so a resource without a fence cannot be written either
    let txn = this.client.if(this.fenceKey(first.resource), 'Value', '<', fenceValue(first.token + 1n));
    for (const f of rest) txn = txn.and(this.fenceKey(f.resource), 'Value', '<', fenceValue(f.token + 1n));
    const res = await txn
      .then(
        ...fences.map(f => this.client.put(this.fenceKey(f.resource)).value(fenceValue(f.token))),
        ...Object.entries(puts).map(([k, v]) => this.client.put(k).value(v)),
      )
      .commit();
    if (!res.succeeded) this.staleWritesRejected++;
    return res.succeeded;
  }

  /** Records that `replica` ran the job for `tick`: put-if-absent. False if the tick had already run. */
  async recordJobRun(tick: number, replica: string, token: bigint): Promise<boolean> {
    const key = this.key('jobs', 'settlement', String(tick));
    const run = JSON.stringify({ tick, replica, token: token.toString() });
    const res = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(run))
      .else(this.client.put(this.key('jobs', 'double', String(tick), `${seg(replica)}-${Date.now()}`)).value(run))
      .commit();
    return res.succeeded;
  }

  onApplicationShutdown(): void {
    this.client.close();
  }
}
