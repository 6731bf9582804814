import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { WithLockMetadata } from './decorators/with-lock.decorator.js';
import { GATEWAY_METADATA } from './etcd-lock.constants.js';
import { SCOPED_PROVIDER } from './etcd-lock.messages.js';
import { validateWithLockOptions } from './etcd-lock.options.js';
import { compileHandlerKey, compileMethodKey } from './lock-key.template.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { WithLockRunner } from './with-lock.runner.js';

const WRAPPED = Symbol('etcd-lock:wrapped');

type InstanceWrapper = ReturnType<DiscoveryService['getProviders']>[number];

/**
 * At bootstrap: checks every @WithLock (bad templates and options fail here, naming the
 * method) and wraps the @WithLock methods of singleton providers. Interceptors never run on
 * provider methods; controllers and gateways are left to WithLockInterceptor, so no method
 * is locked twice.
 */
@Injectable()
export class WithLockExplorer implements OnModuleInit {
  private readonly logger = new Logger('EtcdLockModule');

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(LockMetadataAccessor) private readonly metadata: LockMetadataAccessor,
    @Inject(WithLockRunner) private readonly runner: WithLockRunner,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getControllers()) this.visit(wrapper, 'handler');
    for (const wrapper of this.discovery.getProviders()) {
      const gateway = wrapper.metatype && Reflect.getMetadata(GATEWAY_METADATA, wrapper.metatype);
      this.visit(wrapper, gateway ? 'handler' : 'provider');
    }
  }

  private visit(wrapper: InstanceWrapper, kind: 'handler' | 'provider'): void {
    const { instance } = wrapper;
    if (wrapper.isAlias || !instance || typeof instance !== 'object') return;
    const prototype = Object.getPrototypeOf(instance);
    for (const name of this.scanner.getAllMethodNames(prototype)) {
      const lock = this.metadata.getWithLock(prototype[name]);
      if (!lock) continue;
      const where = `${instance.constructor.name}.${name}`;
      validateWithLockOptions(lock.options, where);
      if (kind === 'handler') compileHandlerKey(lock.key, where); // checked now, run by the interceptor
      else if (!wrapper.isDependencyTreeStatic()) this.logger.warn(SCOPED_PROVIDER(where));
      else this.wrap(instance, name, lock, where);
    }
  }

  /** Replaces the instance's method with one that runs it under the lock, keeping name, length and metadata. */
  private wrap(instance: Record<string | symbol, unknown>, name: string, lock: WithLockMetadata, where: string): void {
    const method = instance[name] as ((...args: unknown[]) => unknown) & { [WRAPPED]?: true };
    if (method[WRAPPED]) return; // the same instance registered twice
    const key = compileMethodKey(lock.key, method, where);
    const runner = this.runner;
    const locked = async function (this: unknown, ...args: unknown[]) {
      return runner.run(key(args), lock.options, () => method.apply(this, args));
    };
    Object.defineProperty(locked, 'name', { value: method.name });
    Object.defineProperty(locked, 'length', { value: method.length });
    Object.defineProperty(locked, WRAPPED, { value: true });
    for (const metadataKey of Reflect.getMetadataKeys(method)) {
      Reflect.defineMetadata(metadataKey, Reflect.getMetadata(metadataKey, method), locked);
    }
    instance[name] = locked;
  }
}
