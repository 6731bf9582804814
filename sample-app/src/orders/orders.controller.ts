import { BadRequestException, Body, ConflictException, Controller, Get, HttpCode, NotFoundException, Param, Post } from '@nestjs/common';
import { WithLock } from 'nestjs-etcd-lock';
import { PaymentsService, type PayResult } from '../payments/payments.service.js';
import { StatsService } from '../stats/stats.service.js';
import { EtcdStore, type Order } from '../store/etcd.store.js';

interface CreateOrderBody {
  id?: string;
  accountId?: string;
  amount?: number;
}

@Controller('orders')
export class OrdersController {
  constructor(
    private readonly store: EtcdStore,
    private readonly payments: PaymentsService,
    private readonly stats: StatsService,
  ) {}

  /** Create an order: `{ "id": "o1", "accountId": "alice", "amount": 1250 }` (amount in cents). */
  @Post()
  async create(@Body() body: CreateOrderBody): Promise<Order> {
    const { id, accountId, amount } = body ?? {};
    if (!id || !accountId || !Number.isSafeInteger(amount) || amount! <= 0) {
      throw new BadRequestException('expected { id, accountId, amount } with amount a positive integer (cents)');
    }
    if (!(await this.store.getAccount(accountId))) throw new NotFoundException(`no account ${accountId}`);
    const order: Order = { id, accountId, amount: amount!, status: 'unpaid' };
    if (!(await this.store.createOrder(order))) throw new ConflictException(`order ${id} exists`);
    return order;
  }

  @Get(':id')
  async get(@Param('id') id: string) {
    const order = await this.store.getOrder(id);
    if (!order) throw new NotFoundException(`no order ${id}`);
    return { ...order, payments: await this.store.getPayments(id) };
  }

  /**
   * One payment per order at a time, across every replica. A request that waits longer
   * than 5 s for the lock gets 409; repeating it is safe (it finds the order paid).
   */
  @Post(':id/pay')
  @HttpCode(200)
  @WithLock('order:<<id>>', { waitTimeout: 5_000 })
  async pay(@Param('id') id: string): Promise<PayResult> {
    const result = await this.payments.pay(id);
    this.stats.payRequestsServed++;
    if (result.result === 'already-paid') this.stats.alreadyPaid++;
    return result;
  }
}
