import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockService } from 'nestjs-etcd-lock';
import { SampleConfig } from '../config/sample.config.js';
import { StatsService } from '../stats/stats.service.js';
import { EtcdStore, type Order, type Payment } from '../store/etcd.store.js';

export interface PayResult {
  result: 'paid' | 'already-paid';
  order: Order;
  payment?: Payment;
}

@Injectable()
export class PaymentsService {
  constructor(
    private readonly store: EtcdStore,
    private readonly locks: LockService,
    private readonly stats: StatsService,
    private readonly config: SampleConfig,
  ) {}

  /**
   * Pays an order exactly once. The pattern is deliberately the naive one (read the order,
   * check it is unpaid, read the balance, write): two payers running it at the same time
   * would both see "unpaid" and debit twice. It is correct only because the caller holds
   * the order's lock (the controller's @WithLock('order:<<id>>')) and the account's lock is
   * taken here; the write is fenced with both locks' tokens, so a holder that stalled past
   * its lease cannot overwrite what a newer holder wrote.
   */
  async pay(orderId: string): Promise<PayResult> {
    const orderLock = this.locks.current(); // the route's lock: order:<id>
    if (!orderLock) throw new Error('pay() must run under the order lock');
    const order = await this.store.getOrder(orderId);
    if (!order) throw new NotFoundException(`no order ${orderId}`);
    if (order.status === 'paid') return { result: 'already-paid', order };

    // orders of one account are paid under different order locks: the balance needs its own lock
    return this.locks.withLock(`account:${order.accountId}`, async accountLock => {
      const account = await this.store.getAccount(order.accountId);
      if (!account) throw new NotFoundException(`no account ${order.accountId}`);
      await sleep(this.config.payWorkMs, undefined, { signal: accountLock.signal }); // "the payment gateway"
      const payment: Payment = {
        id: randomUUID(),
        orderId,
        accountId: account.id,
        amount: order.amount,
        replica: this.config.replica,
        orderToken: orderLock.token.toString(),
        accountToken: accountLock.token.toString(),
      };
      const paid: Order = { ...order, status: 'paid', paymentId: payment.id };
      const accepted = await this.store.fencedWrite(
        [
          { resource: `order:${orderId}`, token: orderLock.token },
          { resource: `account:${account.id}`, token: accountLock.token },
        ],
        {
          [this.store.accountKey(account.id)]: JSON.stringify({ ...account, balance: account.balance - order.amount }),
          [this.store.key('payments', encodeURIComponent(orderId), payment.id)]: JSON.stringify(payment),
          [this.store.orderKey(orderId)]: JSON.stringify(paid),
        },
      );
      if (!accepted) throw new ConflictException(`stale fencing token for order ${orderId}: a newer lock holder already wrote`);
      this.stats.paymentsMade++;
      return { result: 'paid', order: paid, payment };
    });
  }
}
