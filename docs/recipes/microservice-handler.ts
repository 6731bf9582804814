// docs/recipes/microservice-handler.ts
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload, Transport } from '@nestjs/microservices';
import { EtcdLockModule, WithLock } from 'nestjs-etcd-lock';

@Controller()
export class RefundsController {
  /** RPC handlers read the key from their payload. */
  @MessagePattern('refund')
  @WithLock('order:<<orderId>>')
  async refund(@Payload() message: { orderId: string }): Promise<string> {
    return `refunded ${message.orderId}`;
  }
}

@Module({ imports: [EtcdLockModule.forRoot({ etcd: { hosts: ['http://127.0.0.1:2379'] } })], controllers: [RefundsController] })
export class AppModule {}

export async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  // a microservice beside an HTTP app gets the app's interceptors, EtcdLockModule's among them,
  // only with inheritAppConfig; without it a @WithLock handler refuses to run
  app.connectMicroservice({ transport: Transport.TCP, options: { port: 4000 } }, { inheritAppConfig: true });
  app.enableShutdownHooks(); // releases every lock on SIGTERM
  await app.startAllMicroservices();
  await app.listen(3000);
}
