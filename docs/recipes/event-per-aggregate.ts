// docs/recipes/event-per-aggregate.ts
import { Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { WithLock } from 'nestjs-etcd-lock';

export interface OrderPaid {
  orderId: string;
  amount: number;
}

@Injectable()
export class OrderProjection {
  /**
   * Events of one order are handled one at a time, across every replica; events of different
   * orders run in parallel. `promisify: true` lets the emitter wait for the locked handler.
   */
  @OnEvent('order.paid', { async: true, promisify: true })
  @WithLock('order:<<event.orderId>>')
  async onPaid(event: OrderPaid): Promise<void> {
    // ... read the order's projection, apply the event, write it back
    void event.amount;
  }
}
