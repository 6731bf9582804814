// Pure code of the Nest layer: key templates, parameter names, globs, HTTP mapping, option checks.
import { describe, expect, it } from '@jest/globals';
import { HttpException, type ExecutionContext } from '@nestjs/common';
import { resolveConflictStatus, validateWithLockOptions } from '../../lib/nest/with-lock.options.js';
import { EtcdUnavailableError, InvalidLockKeyError, LockStoreUnavailableError, RedisUnavailableError, LockAlreadyHeldError, LockConfigurationError, LockLostError, LockTimeoutError } from '../../lib/index.js';
import { globToRegExp } from '../../lib/common/lock-glob.js';
import { toHttpException } from '../../lib/nest/lock-http.exception.js';
import { compileHandlerKey, compileMethodKey, parameterNames, routeParams } from '../../lib/nest/lock-key.template.js';

class Sample {
  pay(orderId: string, amount: number) {
    return [orderId, amount];
  }
  async defaults(a = 1, { b }: { b: number } = { b: 2 }, ...rest: string[]) {
    return [a, b, rest];
  }
  commented(/* first */ first: string, // trailing
    second: { nested: (x: number) => number }) {
    return [first, second];
  }
}

describe('parameterNames', () => {
  it('reads names from the compiled method source', () => {
    expect(parameterNames(Sample.prototype.pay)).toEqual(['orderId', 'amount']);
    expect(parameterNames(Sample.prototype.defaults)).toEqual(['a', undefined, 'rest']); // destructured: index only
    expect(parameterNames(Sample.prototype.commented)).toEqual(['first', 'second']);
    expect(parameterNames(function () {})).toEqual([]);
  });
});

describe('compileMethodKey', () => {
  const pay = Sample.prototype.pay;

  it('fills placeholders by parameter name, index and path', () => {
    expect(compileMethodKey('order:<<orderId>>', pay, 'S.pay')(['42', 5])).toBe('order:42');
    expect(compileMethodKey('order:<<0>>/<<1>>', pay, 'S.pay')(['42', 5])).toBe('order:42/5');
    expect(compileMethodKey('c:<<orderId.customer.id>>', pay, 'S.pay')([{ customer: { id: 7 } }])).toBe('c:7');
    expect(compileMethodKey('static', pay, 'S.pay')([])).toBe('static');
  });

  it('encodes values so they cannot forge separators', () => {
    const key = compileMethodKey('a:<<orderId>>:<<amount>>', pay, 'S.pay');
    expect(key(['1:2', '3'])).not.toBe(key(['1', '2:3']));
    expect(key(['x/y', '%'])).toBe('a:x%2Fy:%25');
  });

  it('fails at compile time, naming the method and placeholder, for an unknown name', () => {
    expect(() => compileMethodKey('o:<<id>>', pay, 'Sample.pay')).toThrow(LockConfigurationError);
    expect(() => compileMethodKey('o:<<id>>', pay, 'Sample.pay')).toThrow(/Sample\.pay.*<<id>>.*orderId, amount/);
    expect(() => compileMethodKey('o:<<5>>', pay, 'Sample.pay')).toThrow(/<<5>>/);
    expect(() => compileMethodKey('o:<<>>', pay, 'Sample.pay')).toThrow(/empty/);
    expect(() => compileMethodKey('o:<<a..b>>', pay, 'Sample.pay')).toThrow(/empty/);
  });

  it('rejects missing, null, empty and non-scalar values with INVALID_KEY, never "order:undefined"', () => {
    const key = compileMethodKey('order:<<orderId>>', pay, 'S.pay');
    for (const value of [undefined, null, '', { id: 1 }]) {
      expect(() => key([value])).toThrow(InvalidLockKeyError);
    }
    expect(() => compileMethodKey('c:<<orderId.customer.id>>', pay, 'S.pay')([{}])).toThrow(/<<orderId\.customer\.id>>/);
  });

  it('checks what a key function returns', () => {
    expect(compileMethodKey((id: string) => `fn:${id}`, pay, 'S.pay')(['1'])).toBe('fn:1');
    expect(() => compileMethodKey(() => '', pay, 'S.pay')([])).toThrow(InvalidLockKeyError);
    expect(() => compileMethodKey(() => undefined as unknown as string, pay, 'S.pay')([])).toThrow(/S\.pay/);
  });
});

describe('compileHandlerKey', () => {
  const http = (request: Record<string, unknown>) =>
    ({ getType: () => 'http', switchToHttp: () => ({ getRequest: () => request }), getArgs: () => [request] }) as unknown as ExecutionContext;
  const rpc = (data: unknown) => ({ getType: () => 'rpc', switchToRpc: () => ({ getData: () => data }), getArgs: () => [data] }) as unknown as ExecutionContext;
  const ws = (data: unknown) => ({ getType: () => 'ws', switchToWs: () => ({ getData: () => data }), getArgs: () => [{}, data] }) as unknown as ExecutionContext;

  const route = { description: 'POST /orders/:id/pay', params: ['id'] };

  it('over HTTP, a bare name is a route param: query and body are read only when named', () => {
    const key = compileHandlerKey('o:<<id>>', 'C.h', route);
    expect(key(http({ params: { id: 'p' }, query: { id: 'q' }, body: { id: 'b' } }))).toBe('o:p');
    expect(() => key(http({ params: {}, query: { id: 'q' }, body: { id: 'b' } }))).toThrow(InvalidLockKeyError);
  });

  it('refuses, when compiled, a bare name the route does not have, saying where else a value can come from', () => {
    expect(() => compileHandlerKey('o:<<orderId>>', 'C.pay', route)).toThrow(LockConfigurationError);
    expect(() => compileHandlerKey('o:<<orderId>>', 'C.pay', route)).toThrow(
      '@WithLock on C.pay (POST /orders/:id/pay): placeholder <<orderId>> is not a param of the route (its params: id). ' +
        'Name a route param, or say where the value comes from: <<query.orderId>>, <<body.orderId>>, <<headers.orderId>> or <<user.orderId>>.',
    );
    expect(() => compileHandlerKey('o:<<body.orderId>>:<<id>>', 'C.pay', route)).not.toThrow();
    expect(() => compileHandlerKey('o:<<orderId>>', 'C.rpc')).not.toThrow(); // no route: an RPC or WebSocket payload
  });

  it('reads the params of a route path', () => {
    expect(routeParams('/shop/:shopId/orders/:id/pay')).toEqual(['shopId', 'id']);
    expect(routeParams('/files/*path')).toEqual(['path']);
    expect(routeParams('/orders{/:id}')).toEqual(['id']);
    expect(routeParams('/orders')).toEqual([]);
  });

  it('accepts explicit roots and reads RPC and WebSocket payloads', () => {
    expect(compileHandlerKey('t:<<headers.x-tenant>>:<<user.id>>', 'C.h')(http({ headers: { 'x-tenant': 'acme' }, user: { id: 3 } }))).toBe('t:acme:3');
    expect(compileHandlerKey('o:<<body.order.id>>', 'C.h')(http({ body: { order: { id: 8 } } }))).toBe('o:8');
    expect(compileHandlerKey('o:<<order.id>>', 'C.h')(rpc({ order: { id: 'r' } }))).toBe('o:r');
    expect(compileHandlerKey('o:<<id>>', 'C.h')(ws({ id: 'w' }))).toBe('o:w');
    expect(compileHandlerKey((req: { params: { id: string } }) => `f:${req.params.id}`, 'C.h')(http({ params: { id: 'z' } }))).toBe('f:z');
  });
});

describe('globToRegExp', () => {
  it('matches * as any run and ? as one character, everything else literally', () => {
    expect(globToRegExp('order:*').test('order:1')).toBe(true);
    expect(globToRegExp('order:*').test('invoice:1')).toBe(false);
    expect(globToRegExp('order:?').test('order:12')).toBe(false);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('*').test('anything\nat all')).toBe(true);
  });
});

describe('toHttpException', () => {
  it('maps not-acquired to the conflict status, invalid keys to 400, and keeps the LockError as cause', () => {
    const busy = new LockAlreadyHeldError('order:1', 'another-holder');
    const mapped = toHttpException(busy, 423) as HttpException;
    expect(mapped.getStatus()).toBe(423);
    expect(mapped.getResponse()).toMatchObject({ error: 'LOCK_ALREADY_HELD', key: 'order:1' });
    expect(mapped.cause).toBe(busy);
    expect((toHttpException(new LockTimeoutError('k', 5), 409) as HttpException).getStatus()).toBe(409);
    expect((toHttpException(new InvalidLockKeyError('x'), 409) as HttpException).getStatus()).toBe(400);
    const lost = new LockLostError('k', 'key-deleted');
    expect(toHttpException(lost, 409)).toBe(lost);
    const other = new Error('boom');
    expect(toHttpException(other, 409)).toBe(other);
  });

  it('maps an unreachable etcd to 503 with Retry-After: 1 and a message that does not show etcd\'s addresses', () => {
    const headers: Record<string, string> = {};
    const down = new EtcdUnavailableError('https://etcd-1.internal:2379', new Error('connect ECONNREFUSED'));
    const mapped = toHttpException(down, 409, (name, value) => (headers[name] = value)) as HttpException;
    expect(mapped.getStatus()).toBe(503);
    expect(headers).toEqual({ 'Retry-After': '1' });
    expect(mapped.getResponse()).toEqual({ statusCode: 503, error: 'ETCD_UNAVAILABLE', message: expect.stringMatching(/Retry in 1 s/) });
    expect(JSON.stringify(mapped.getResponse())).not.toContain('etcd-1.internal');
    expect(mapped.cause).toBe(down);
  });

  it('maps an unreachable Redis, or the store of a custom backend, to the same 503 with its own code', () => {
    for (const down of [new RedisUnavailableError('Redis at redis://cache.internal:6379', new Error('ECONNREFUSED')), new LockStoreUnavailableError('my store', new Error('down'))]) {
      const mapped = toHttpException(down, 409, () => undefined) as HttpException;
      expect(mapped.getStatus()).toBe(503);
      expect(mapped.getResponse()).toEqual({ statusCode: 503, error: down.code, message: expect.stringMatching(/Retry in 1 s/) });
      expect(JSON.stringify(mapped.getResponse())).not.toContain('internal');
    }
  });
});

describe('validateWithLockOptions and resolveConflictStatus', () => {
  it('name the method and the option', () => {
    expect(() => validateWithLockOptions({ onContention: 'later' as 'wait' }, 'C.m')).toThrow(/C\.m.*"onContention"/);
    expect(() => validateWithLockOptions({ minHold: -1 }, 'C.m')).toThrow(/"minHold"/);
    expect(() => validateWithLockOptions({ maxHold: NaN }, 'C.m')).toThrow(/"maxHold"/);
    expect(() => validateWithLockOptions({ reentrant: 'yes' as unknown as boolean }, 'C.m')).toThrow(/"reentrant"/);
    expect(() => validateWithLockOptions({ retry: { maxMs: 0 } }, 'C.m')).toThrow(/C\.m.*"retry".*"retry\.maxMs"/);
    expect(validateWithLockOptions({ retry: false }, 'C.m')).toEqual({ retry: false });
    expect(() => validateWithLockOptions({ ttl: 5 }, 'C.m')).toThrow(/C\.m.*"ttl".*autoRenew: false/);
    expect(() => validateWithLockOptions({ autoRenew: 'no' as unknown as boolean }, 'C.m')).toThrow(/"autoRenew"/);
    expect(validateWithLockOptions({ autoRenew: false, ttl: 5 }, 'C.m')).toEqual({ autoRenew: false, ttl: 5 });
    expect(validateWithLockOptions({ onContention: 'skip', maxHold: Infinity }, 'C.m')).toEqual({ onContention: 'skip', maxHold: Infinity });
    expect(() => validateWithLockOptions({ mode: 'read' as 'shared' }, 'C.m')).toThrow(/C\.m.*"mode"/);
    expect(() => validateWithLockOptions({ limit: 0 }, 'C.m')).toThrow(/C\.m.*"limit"/);
    expect(() => validateWithLockOptions({ limit: 2, mode: 'shared' }, 'C.m')).toThrow(/"limit".*either limit or mode/);
    expect(() => validateWithLockOptions({ fair: false, mode: 'shared' }, 'C.m')).toThrow(/"fair".*exclusive locks only/);
    expect(validateWithLockOptions({ limit: 3, fair: true }, 'C.m')).toEqual({ limit: 3, fair: true });
    expect(resolveConflictStatus()).toBe(409);
    expect(() => resolveConflictStatus(200)).toThrow(/"conflictStatus"/);
  });
});
