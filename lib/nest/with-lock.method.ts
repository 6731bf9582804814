import { AsyncLocalStorage } from 'node:async_hooks';
import { Observable } from 'rxjs';
import { LockConfigurationError } from '../common/lock.errors.js';
import { AMBIGUOUS_LOCKED_METHOD, HANDLER_NOT_INTERCEPTED, UNLOCKED_METHOD } from './etcd-lock.messages.js';

/** A class method as it is called. */
export type Method = ((...args: unknown[]) => unknown) & { [RAW]?: Method };

/** How one instance's @WithLock method runs: under its lock, or as it is (a handler locked by the interceptor or a gateway's stand-in). */
export type LockedCall = (args: unknown[], call: () => unknown) => unknown;

/** What an app (its WithLockExplorer) says of an instance's method: how to run it, or undefined if the instance is not its own. */
export interface MethodBinder {
  bindingFor(instance: object, name: string): LockedCall | undefined;
}

const RAW = Symbol('etcd-lock:raw-method');
/** The apps alive in this process, from the moment their providers are created (before any onModuleInit). */
const binders = new Set<MethodBinder>();
const bindings = new WeakMap<object, Map<string, LockedCall>>();
const unlocked = new AsyncLocalStorage<true>();
/** The handler whose lock WithLockInterceptor holds in this async context. */
const lockedUpstream = new AsyncLocalStorage<object>();

/**
 * Why @WithLock replaces the method when it is DECORATED (DESIGN §6 has decorators store
 * metadata only): other modules take a provider's method in their own lifecycle hooks
 * (`@Cron`, `@OnEvent`, a queue processor), and Nest runs those hooks in an order the app's
 * `imports` decide. A method swapped on the instance in our hook could be taken, unlocked,
 * before. The prototype's method is the only thing every caller reaches, whatever it took and
 * whenever: this wrapper looks up, at each call, the app that owns `this` and runs the call
 * under its lock. An instance no app claims never runs unlocked: the call is refused.
 */
export function lockedMethod(name: string, where: () => string, raw: Method): Method {
  const wrapper = function (this: object, ...args: unknown[]) {
    if (unlocked.getStore()) return raw.apply(this, args);
    let binding: LockedCall;
    try {
      binding = bindingOf(this, name, where);
    } catch (err) {
      return Promise.reject(err); // as a locked call fails: a provider's locked method returns a promise
    }
    return binding(args, () => raw.apply(this, args));
  } as Method;
  Object.defineProperty(wrapper, RAW, { value: raw });
  return wrapper;
}

/** The method as written, under every wrapper @WithLock put around it. */
export function rawMethod(method: Method): Method {
  return method[RAW] ? rawMethod(method[RAW]) : method;
}

/** The explorer of an app, from its creation to its shutdown. */
export function addBinder(binder: MethodBinder): void {
  binders.add(binder);
}

export function removeBinder(binder: MethodBinder): void {
  binders.delete(binder);
}

/** Records how `instance`'s method runs, found at bootstrap. */
export function bind(instance: object, name: string, call: LockedCall): void {
  const methods = bindings.get(instance) ?? new Map<string, LockedCall>();
  methods.set(name, call);
  bindings.set(instance, methods);
}

function bindingOf(instance: object, name: string, where: () => string): LockedCall {
  const known = bindings.get(instance)?.get(name);
  if (known) return known;
  // called before our bootstrap hook ran (another module's hook came first): ask the live apps
  const found = [...binders].map(binder => binder.bindingFor(instance, name)).filter(call => call !== undefined);
  if (found.length === 0) throw new LockConfigurationError(UNLOCKED_METHOD(where()));
  if (found.length > 1) throw new LockConfigurationError(AMBIGUOUS_LOCKED_METHOD(where()));
  bind(instance, name, found[0]);
  return found[0];
}

/**
 * Runs `fn` with every @WithLock method called inside it running WITHOUT its lock: for unit
 * tests of a class built with `new`, outside any app. Nothing else skips the lock.
 * @publicApi
 */
export function withoutLocks<T>(fn: () => T): T {
  return unlocked.run(true, fn);
}

/** The method decorator half of @WithLock: puts {@link lockedMethod} in place of the method. */
export function runUnderLock(): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const raw = descriptor.value as unknown as Method;
    if (typeof raw !== 'function' || raw[RAW]) return; // not a method, or wrapped already
    const name = String(propertyKey);
    const owner = typeof target === 'function' ? target : target.constructor;
    descriptor.value = preserving(raw, lockedMethod(name, () => `${owner.name}.${name}`, raw)) as never;
  };
}

/** Gives `replacement` the name, length and metadata of `method` (what other decorators put there). */
export function preserving(method: Method, replacement: Method): Method {
  Object.defineProperty(replacement, 'name', { value: method.name });
  Object.defineProperty(replacement, 'length', { value: method.length });
  for (const metadataKey of Reflect.getMetadataKeys(method)) {
    Reflect.defineMetadata(metadataKey, Reflect.getMetadata(metadataKey, method), replacement);
  }
  return replacement;
}

/**
 * Calls `handle` (an interceptor's `next.handle()`) and subscribes to what it returns, both
 * marked as holding `handler`'s lock: the interceptor took it, the method's wrapper passes the
 * call on. `next.handle()` itself must run inside: Nest binds the handler's call to the async
 * context in which it is called.
 */
export function underInterceptorLock<T>(handler: object, handle: () => Observable<T>): Observable<T> {
  return new Observable<T>(subscriber => lockedUpstream.run(handler, () => handle().subscribe(subscriber)));
}

/**
 * How a controller handler runs: as it is when WithLockInterceptor holds its lock, else it is
 * refused. Nest gives a microservice connected to an HTTP app without `inheritAppConfig` none
 * of the app's interceptors, and a handler called directly by other code has none either.
 */
export function lockedByInterceptor(handler: object, where: string): LockedCall {
  return (_args, call) =>
    lockedUpstream.getStore() === handler ? call() : Promise.reject(new LockConfigurationError(HANDLER_NOT_INTERCEPTED(where)));
}
