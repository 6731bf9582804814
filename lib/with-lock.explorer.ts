import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { defer, from, isObservable, of, type Observable } from 'rxjs';
import type { WithLockMetadata } from './decorators/with-lock.decorator.js';
import { GATEWAY_METADATA } from './etcd-lock.constants.js';
import { GATEWAY_NOT_READY, SCOPED_PROVIDER } from './etcd-lock.messages.js';
import { validateWithLockOptions } from './etcd-lock.options.js';
import { compileHandlerKey, compileMethodKey } from './lock-key.template.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockServiceRegistry } from './lock-service.registry.js';
import { WithLockRunner } from './with-lock.runner.js';

type InstanceWrapper = ReturnType<DiscoveryService['getProviders']>[number];
type Method = ((...args: unknown[]) => unknown) & { [ORIGINAL]?: Method };

const ORIGINAL = Symbol('etcd-lock:original');
/** The locked handlers of each gateway instance, by method name (instances of several apps may share a class). */
const GATEWAY_HANDLERS = new WeakMap<object, Map<string, Method>>();

/**
 * At bootstrap: checks every @WithLock (bad templates and options fail here, naming the
 * method) and runs the @WithLock methods of singleton providers and WebSocket gateways under
 * their lock. Interceptors never run on provider methods, and Nest applies no global
 * interceptor (our APP_INTERCEPTOR) to gateways. Controllers (HTTP, microservices) are left
 * to WithLockInterceptor, which skips gateways: no method is locked twice.
 */
@Injectable()
export class WithLockExplorer implements OnModuleInit {
  private readonly logger = new Logger('EtcdLockModule');

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(LockMetadataAccessor) private readonly metadata: LockMetadataAccessor,
    @Inject(WithLockRunner) private readonly runner: WithLockRunner,
    @Inject(LockServiceRegistry) private readonly registry: LockServiceRegistry,
  ) {}

  /**
   * Puts a stand-in on the prototype of every @WithLock gateway method. Nest captures a
   * gateway's prototype methods when app.init() registers gateways, which is before any
   * onModuleInit; so this runs when the module's providers are created. The stand-in calls
   * the locked handler its instance gets in onModuleInit.
   */
  prepareGateways(): void {
    for (const wrapper of this.discovery.getProviders()) {
      if (!isGateway(wrapper)) continue;
      const prototype = wrapper.metatype!.prototype as Record<string, Method>;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[name];
        if (!this.metadata.getWithLock(method) || method[ORIGINAL]) continue; // not locked, or done by another app
        const where = `${wrapper.metatype!.name}.${name}`;
        prototype[name] = preserving(method, function (this: object, ...args: unknown[]) {
          const locked = GATEWAY_HANDLERS.get(this)?.get(name);
          if (!locked) throw new Error(GATEWAY_NOT_READY(where));
          return locked.apply(this, args);
        });
      }
    }
  }

  onModuleInit(): void {
    for (const wrapper of this.discovery.getControllers()) this.visit(wrapper, 'handler');
    for (const wrapper of this.discovery.getProviders()) this.visit(wrapper, isGateway(wrapper) ? 'gateway' : 'provider');
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
      this.registry.get(lock.options.lock, `@WithLock on ${where}`); // the lock service it names exists
      if (kind === 'handler') compileHandlerKey(lock.key, where); // checked now, run by the interceptor
      else if (!wrapper.isDependencyTreeStatic()) this.logger.warn(SCOPED_PROVIDER(where));
      else if (kind === 'gateway') this.lockGateway(instance, name, lock, where);
      else this.lockProvider(instance, name, lock, where);
    }
  }

  /** Replaces a provider's method, on the instance, with one that runs it under the lock. */
  private lockProvider(instance: Record<string, Method>, name: string, lock: WithLockMetadata, where: string): void {
    const method = instance[name];
    if (method[ORIGINAL]) return; // the same instance registered twice
    const key = compileMethodKey(lock.key, method, where);
    const runner = this.runner;
    instance[name] = preserving(method, async function (this: unknown, ...args: unknown[]) {
      return runner.run(key(args), lock.options, () => method.apply(this, args));
    });
  }

  /**
   * Gives a gateway instance its locked handler: an Observable (Nest sends each value) that
   * holds the lock until the handler's value, promise or stream completes.
   */
  private lockGateway(instance: object, name: string, lock: WithLockMetadata, where: string): void {
    const method = (Object.getPrototypeOf(instance)[name] as Method)[ORIGINAL];
    if (!method) return; // prepareGateways did not see it: not a gateway of this app
    const key = compileMethodKey(lock.key, method, where);
    const runner = this.runner;
    const handlers = GATEWAY_HANDLERS.get(instance) ?? new Map<string, Method>();
    handlers.set(name, function (this: unknown, ...args: unknown[]) {
      return defer(() => runner.observe(key(args), lock.options, () => toObservable(method.apply(this, args))));
    });
    GATEWAY_HANDLERS.set(instance, handlers);
  }
}

function isGateway(wrapper: InstanceWrapper): boolean {
  return !!wrapper.metatype && !wrapper.isAlias && !!Reflect.getMetadata(GATEWAY_METADATA, wrapper.metatype);
}

/** Gives `replacement` the name, length and metadata of `method`, and remembers the original. */
function preserving(method: Method, replacement: Method): Method {
  Object.defineProperty(replacement, 'name', { value: method.name });
  Object.defineProperty(replacement, 'length', { value: method.length });
  Object.defineProperty(replacement, ORIGINAL, { value: method });
  for (const metadataKey of Reflect.getMetadataKeys(method)) {
    Reflect.defineMetadata(metadataKey, Reflect.getMetadata(metadataKey, method), replacement);
  }
  return replacement;
}

function toObservable(result: unknown): Observable<unknown> {
  if (isObservable(result)) return result;
  return result instanceof Promise ? from(result) : of(result);
}
