import { Inject, Injectable, RequestMethod } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { OnLockEventMetadata } from './decorators/on-lock-event.decorator.js';
import type { WithLockMetadata } from './decorators/with-lock.decorator.js';
import { HTTP_METHOD_METADATA, HTTP_PATH_METADATA, ON_LOCK_EVENT_METADATA, WITH_LOCK_METADATA } from './etcd-lock.constants.js';
import { routeParams, type HttpRoute } from './lock-key.template.js';

/** Reads this library's metadata from methods; the one place that knows the keys. */
@Injectable()
export class LockMetadataAccessor {
  constructor(@Inject(Reflector) private readonly reflector: Reflector) {}

  getWithLock(method: unknown): WithLockMetadata | undefined {
    return typeof method === 'function' ? this.reflector.get(WITH_LOCK_METADATA, method) : undefined;
  }

  getOnLockEvents(method: unknown): OnLockEventMetadata[] {
    return (typeof method === 'function' && this.reflector.get(ON_LOCK_EVENT_METADATA, method)) || [];
  }

  /** The route of an HTTP handler (undefined for RPC and WebSocket handlers), with the params every one of its paths has. */
  getHttpRoute(controller: object, handler: object): HttpRoute | undefined {
    const method = this.reflector.get<RequestMethod | undefined>(HTTP_METHOD_METADATA, handler as never);
    const handlerPaths = this.reflector.get<string | string[] | undefined>(HTTP_PATH_METADATA, handler as never);
    if (method === undefined || handlerPaths === undefined) return undefined;
    const controllerPaths = this.reflector.get<string | string[] | undefined>(HTTP_PATH_METADATA, controller as never) ?? '';
    const join = (base: string, path: string) => `/${[base, path].map(part => part.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')}`;
    const paths = [controllerPaths].flat().flatMap(base => [handlerPaths].flat().map(path => join(base, path)));
    const [first, ...rest] = paths.map(routeParams);
    return { description: `${RequestMethod[method]} ${paths[0]}`, params: first.filter(param => rest.every(other => other.includes(param))) };
  }
}
