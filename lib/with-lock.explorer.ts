import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { defer, from, isObservable, of, type Observable } from 'rxjs';
import type { WithLockMetadata } from './decorators/with-lock.decorator.js';
import { GATEWAY_METADATA } from './etcd-lock.constants.js';
import { GATEWAY_NOT_READY } from './etcd-lock.messages.js';
import { validateWithLockOptions } from './etcd-lock.options.js';
import { compileHandlerKey, compileMethodKey } from './lock-key.template.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockServiceRegistry } from './lock-service.registry.js';
import { addBinder, bind, preserving as preservingMetadata, rawMethod, removeBinder, type LockedCall, type Method, type MethodBinder } from './with-lock.method.js';
import { WithLockRunner } from './with-lock.runner.js';

type InstanceWrapper = ReturnType<DiscoveryService['getProviders']>[number];
type GatewayMethod = Method & { [ORIGINAL]?: Method };

const ORIGINAL = Symbol('etcd-lock:original');
/** The locked handlers of each gateway instance, by method name (instances of several apps may share a class). */
const GATEWAY_HANDLERS = new WeakMap<object, Map<string, Method>>();

/** Passes the call on: a handler is locked by WithLockInterceptor, a gateway by its stand-in. */
const LOCKED_UPSTREAM: LockedCall = (_args, call) => call();

/**
 * Tells each @WithLock method of this app how it runs (see with-lock.method.ts): provider
 * methods (singleton, request-scoped or transient) under their lock; controller handlers
 * (HTTP, microservices) as they are, since WithLockInterceptor locks them; WebSocket gateway
 * handlers through a stand-in that holds the lock until their stream ends (Nest applies no
 * global interceptor to gateways). No method is locked twice. At bootstrap it checks every
 * @WithLock (bad templates and options fail here, naming the method).
 */
@Injectable()
export class WithLockExplorer implements OnModuleInit, OnApplicationShutdown, MethodBinder {
  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(LockMetadataAccessor) private readonly metadata: LockMetadataAccessor,
    @Inject(WithLockRunner) private readonly runner: WithLockRunner,
    @Inject(LockServiceRegistry) private readonly registry: LockServiceRegistry,
  ) {
    addBinder(this); // from now on, before any module's onModuleInit: a method called early still finds its lock
  }

  onApplicationShutdown(): void {
    removeBinder(this);
  }

  /** How `instance`'s method runs, if the instance is one of this app's providers or controllers. */
  bindingFor(instance: object, name: string): LockedCall | undefined {
    const controller = this.discovery.getControllers().find(wrapper => wrapper.instance === instance);
    if (controller) return LOCKED_UPSTREAM;
    const providers = this.discovery.getProviders();
    // a request-scoped or transient provider has an instance per context: known by its class
    const provider =
      providers.find(wrapper => !wrapper.isAlias && wrapper.instance === instance) ??
      providers.find(wrapper => !wrapper.isAlias && !wrapper.isDependencyTreeStatic() && wrapper.metatype === instance.constructor);
    if (!provider) return undefined;
    if (isGateway(provider)) return LOCKED_UPSTREAM;
    const lock = this.metadata.getWithLock(Object.getPrototypeOf(instance)[name]);
    return lock && this.providerCall(instance, name, lock);
  }

  /**
   * Puts a stand-in on the prototype of every @WithLock gateway method. Nest captures a
   * gateway's prototype methods when app.init() registers gateways, which is before any
   * onModuleInit; so this runs when the module's providers are created. The stand-in calls
   * the locked handler its instance gets in onModuleInit.
   */
  prepareGateways(): void {
    for (const wrapper of this.discovery.getProviders()) {
      if (!isGateway(wrapper)) continue;
      const prototype = wrapper.metatype!.prototype as Record<string, GatewayMethod>;
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
      if (kind === 'handler') {
        this.check(lock, where);
        compileHandlerKey(lock.key, where); // checked now, run by the interceptor
        bind(instance, name, LOCKED_UPSTREAM);
      } else if (kind === 'gateway') {
        this.check(lock, where);
        this.lockGateway(instance, name, lock, where);
        bind(instance, name, LOCKED_UPSTREAM);
      } else {
        const call = this.providerCall(instance, name, lock); // checks it
        // another context's instance of a scoped provider finds its call through bindingFor
        if (wrapper.isDependencyTreeStatic()) bind(instance, name, call);
      }
    }
  }

  /** Bad options, or a lock service that does not exist, fail bootstrap naming the method. */
  private check(lock: WithLockMetadata, where: string): void {
    validateWithLockOptions(lock.options, where);
    this.registry.get(lock.options.lock, `@WithLock on ${where}`);
  }

  /** How a provider's method runs: under its lock, with the key built from its arguments. */
  private providerCall(instance: object, name: string, lock: WithLockMetadata): LockedCall {
    const where = `${instance.constructor.name}.${name}`;
    this.check(lock, where);
    const key = compileMethodKey(lock.key, rawMethod(Object.getPrototypeOf(instance)[name]), where);
    return async (args, call) => this.runner.run(key(args), lock.options, call); // a bad key rejects, as the lock would
  }

  /**
   * Gives a gateway instance its locked handler: an Observable (Nest sends each value) that
   * holds the lock until the handler's value, promise or stream completes.
   */
  private lockGateway(instance: object, name: string, lock: WithLockMetadata, where: string): void {
    const standIn = (Object.getPrototypeOf(instance)[name] as GatewayMethod)[ORIGINAL];
    if (!standIn) return; // prepareGateways did not see it: not a gateway of this app
    const method = rawMethod(standIn);
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
function preserving(method: GatewayMethod, replacement: GatewayMethod): GatewayMethod {
  Object.defineProperty(replacement, ORIGINAL, { value: method });
  return preservingMetadata(method, replacement);
}

function toObservable(result: unknown): Observable<unknown> {
  if (isObservable(result)) return result;
  return result instanceof Promise ? from(result) : of(result);
}
