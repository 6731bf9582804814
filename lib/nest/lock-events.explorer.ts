import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { asyncScheduler, filter, observeOn } from 'rxjs';
import type { OnLockEventMetadata } from './decorators/on-lock-event.decorator.js';
import { EVENT_HANDLER_FAILED } from './etcd-lock.messages.js';
import type { LockEvent } from '../interfaces/lock-event.interface.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockServiceRegistry } from './lock-service.registry.js';
import { globToRegExp } from '../common/lock-glob.js';

/**
 * Subscribes @OnLockEvent methods of providers and controllers to the events$ of the lock
 * service they name (the default one without `lock`) at bootstrap. Handlers run in a later macrotask, after the lock operation that emitted the
 * event has resolved to its caller; one that throws or rejects is logged and the stream goes on.
 */
@Injectable()
export class LockEventsExplorer implements OnApplicationBootstrap {
  private readonly logger = new Logger('EtcdLockModule');

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(LockMetadataAccessor) private readonly metadata: LockMetadataAccessor,
    @Inject(LockServiceRegistry) private readonly registry: LockServiceRegistry,
  ) {}

  onApplicationBootstrap(): void {
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const { instance } = wrapper;
      if (wrapper.isAlias || !instance || typeof instance !== 'object' || !wrapper.isDependencyTreeStatic()) continue;
      const prototype = Object.getPrototypeOf(instance);
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        for (const subscription of this.metadata.getOnLockEvents(prototype[name])) this.subscribe(instance, name, subscription);
      }
    }
  }

  private subscribe(instance: Record<string, (event: LockEvent) => unknown>, name: string, { type, options }: OnLockEventMetadata): void {
    const types = type === '*' ? undefined : new Set<string>(Array.isArray(type) ? type : [type]);
    const key = options.key === undefined ? undefined : globToRegExp(options.key);
    const where = `${instance.constructor.name}.${name}`;
    this.registry
      .get(options.lock, `@OnLockEvent on ${where}`)
      .service.events$
      .pipe(
        filter(event => (!types || types.has(event.type)) && (!key || key.test(event.key)) && (!options.origin || event.origin === options.origin)),
        // a macrotask: rxjs's asap scheduler is a microtask on Node, which would run a slow
        // handler before the caller of acquire() even resumes
        observeOn(asyncScheduler),
      )
      .subscribe(event => {
        const fail = (err: unknown) => this.logger.error(EVENT_HANDLER_FAILED(where, event.type, event.key), (err as Error)?.stack);
        try {
          Promise.resolve(instance[name](event)).catch(fail);
        } catch (err) {
          fail(err);
        }
      });
  }
}
