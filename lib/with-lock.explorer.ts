import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { defer, from, isObservable, of, type Observable } from 'rxjs';
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
 * method) and wraps the @WithLock methods of singleton providers and of WebSocket gateways.
 * Interceptors never run on provider methods, and Nest does not apply global interceptors
 * (our APP_INTERCEPTOR) to gateways. Controllers (HTTP, microservices) are left to
 * WithLockInterceptor, which skips gateways: no method is locked twice.
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
      this.visit(wrapper, gateway ? 'gateway' : 'provider');
    }
  }

  private visit(wrapper: InstanceWrapper, kind: 'handler' | 'gateway' | 'provider'): void {
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
      else this.wrap(instance, name, lock, where, kind === 'gateway');
    }
  }

  /**
   * Replaces the instance's method with one that runs it under the lock, keeping name, length
   * and metadata. A gateway handler's wrapper returns an Observable (Nest sends each value)
   * that holds the lock until the handler's value, promise or stream completes.
   */
  private wrap(instance: Record<string | symbol, unknown>, name: string, lock: WithLockMetadata, where: string, gateway: boolean): void {
    const method = instance[name] as ((...args: unknown[]) => unknown) & { [WRAPPED]?: true };
    if (method[WRAPPED]) return; // the same instance registered twice
    const key = compileMethodKey(lock.key, method, where);
    const runner = this.runner;
    const locked = gateway
      ? function (this: unknown, ...args: unknown[]) {
          return defer(() => runner.observe(key(args), lock.options, () => toObservable(method.apply(this, args))));
        }
      : async function (this: unknown, ...args: unknown[]) {
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

function toObservable(result: unknown): Observable<unknown> {
  if (isObservable(result)) return result;
  return result instanceof Promise ? from(result) : of(result);
}
