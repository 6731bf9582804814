// docs/recipes/websocket-gateway.ts
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { WithLock } from 'nestjs-etcd-lock';

@WebSocketGateway()
export class CartGateway {
  /** Gateway keys name the method's parameters, as on providers. */
  @SubscribeMessage('cart.checkout')
  @WithLock('cart:<<body.cartId>>', { onContention: 'fail' })
  async checkout(@MessageBody() body: { cartId: string }): Promise<{ event: string; data: string }> {
    return { event: 'cart.checked-out', data: body.cartId };
  }
}
