import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { defer, from, isObservable, of, type Observable } from 'rxjs';
import type { WithLockMetadata } from './decorators/with-lock.decorator.js';
import { GATEWAY_METADATA } from './etcd-lock.constants.js';
import { GATEWAY_NOT_READY } from './etcd-lock.messages.js';
import { validateWithLockOptions } from './with-lock.options.js';
import { compileHandlerKey, compileMethodKey } from './lock-key.template.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockServiceRegistry } from './lock-service.registry.js';
import {
  addBinder,
  bind,
  lockedByInterceptor,
  preserving as preservingMetadata,
  rawMethod,
  removeBinder,
  type LockedCall,
  type Method,
  type MethodBinder,
} from './with-lock.method.js';
import { WithLockRunner } from './with-lock.runner.js';

type InstanceWrapper = ReturnType<DiscoveryService['getProviders']>[number];
type GatewayMethod = Method & { [ORIGINAL]?: Method };
/** Who locks a @WithLock method: the interceptor (handler), a stand-in (gateway), or the method's own wrapper (provider). */
type MethodKind = 'handler' | 'gateway' | 'provider';

const ORIGINAL = Symbol('etcd-lock:original');
/** The locked handlers of each gateway instance, by method name (instances of several apps may share a class). */
const GATEWAY_HANDLERS = new WeakMap<object, Map<string, Method>>();

/** Passes a gateway handler's call on: Nest calls it through its stand-in, which holds the lock (see prepareGateways). */
const THROUGH_STAND_IN: LockedCall = (_args, call) => call();

/**
 * Tells each @WithLock method of this app how it runs (see with-lock.method.ts): provider
 * methods (singleton, request-scoped or transient) under their lock; controller handlers
 * (HTTP, microservices) as they are when WithLockInterceptor holds their lock, else not at all; WebSocket gateway
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
    const lock = this.metadata.getWithLock(Object.getPrototypeOf(instance)[name]);
    if (!lock) return undefined;
    if (this.discovery.getControllers().some(wrapper => wrapper.instance === instance)) return this.callFor('handler', instance, name, lock);
    const providers = this.discovery.getProviders();
    // a request-scoped or transient provider has an instance per context: known by its class
    const provider =
      providers.find(wrapper => !wrapper.isAlias && wrapper.instance === instance) ??
      providers.find(wrapper => !wrapper.isAlias && !wrapper.isDependencyTreeStatic() && wrapper.metatype === instance.constructor);
    return provider && this.callFor(isGateway(provider) ? 'gateway' : 'provider', instance, name, lock);
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

  private visit(wrapper: InstanceWrapper, kind: MethodKind): void {
    const { instance } = wrapper;
    if (wrapper.isAlias || !instance || typeof instance !== 'object') return;
    const prototype = Object.getPrototypeOf(instance);
    for (const name of this.scanner.getAllMethodNames(prototype)) {
      const lock = this.metadata.getWithLock(prototype[name]);
      if (!lock) continue;
      bind(instance, name, this.callFor(kind, instance, name, lock));
    }
  }

  /**
   * Checks a @WithLock (bad options, templates or lock names fail bootstrap, naming the
   * method) and says how the method runs: a provider's under its lock, with the key built from
   * its arguments; a handler's and a gateway's as they are, locked upstream.
   */
  private callFor(kind: MethodKind, instance: object, name: string, lock: WithLockMetadata): LockedCall {
    const where = `${instance.constructor.name}.${name}`;
    validateWithLockOptions(lock.options, where);
    this.registry.get(lock.options.lock, `@WithLock on ${where}`); // the lock service it names exists
    if (kind === 'handler') {
      const handler = Object.getPrototypeOf(instance)[name];
      compileHandlerKey(lock.key, where, this.metadata.getHttpRoute(instance.constructor, handler)); // checked now, run by the interceptor
      return lockedByInterceptor(handler, where);
    }
    if (kind === 'gateway') {
      this.lockGateway(instance, name, lock, where);
      return THROUGH_STAND_IN;
    }
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
