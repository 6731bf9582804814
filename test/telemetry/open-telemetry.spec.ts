// Metrics and spans through the real OpenTelemetry SDK (sdk-metrics, sdk-trace, the
// AsyncLocalStorage context manager), after real contended runs on etcd, Redis and memory:
// names, units, attributes, values, the parent of each span, and cardinality that stays bounded
// however many keys are locked.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { trace, SpanStatusCode } from '@opentelemetry/api';
import { DataPointType, type Histogram } from '@opentelemetry/sdk-metrics';
import { Etcd3 } from 'etcd3';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstValueFrom, filter } from 'rxjs';
import { startEtcd, type EtcdHandle } from '../../harness/etcd.js';
import { startRedis, type RedisHandle } from '../../harness/redis.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import { HOLDER_WATCH_DELAY_MS } from '../../lib/engine/holds.js';
import { EtcdLockModule, LockService, WithLock, type EtcdLockModuleOptions } from '../../lib/index.js';
import { MemoryBackend } from '../../lib/testing/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { pointsOf, registerOtelSdk, type OtelSdk } from '../support/otel-sdk.js';

const PREFIX = 'telemetry/';
let sdk: OtelSdk;
let etcd: EtcdHandle;
let redis: RedisHandle;

beforeAll(async () => {
  sdk = registerOtelSdk(); // before any LockService, as an app's instrumentation file does
  [etcd, redis] = await Promise.all([startEtcd(), startRedis()]);
}, 60_000);

afterAll(async () => {
  await sdk?.shutdown();
  await Promise.all([etcd?.stop(), redis?.stop()]);
});

const memory = new MemoryBackend();
const backends: [string, () => EtcdLockModuleOptions, (prefix: string) => Promise<void>][] = [
  ['etcd', () => ({ etcd: { hosts: etcd.endpoints } }), expectEtcdPrefixClean],
  ['redis', () => ({ backend: new RedisBackend({ url: redis.url }) }), expectRedisPrefixClean],
  ['memory', () => ({ backend: memory }), expectMemoryPrefixClean],
];

async function expectMemoryPrefixClean(prefix: string): Promise<void> {
  const reader = new LockService({ backend: memory, prefix });
  expect(await reader.listLocks().finally(() => reader.close())).toEqual([]);
}

async function expectEtcdPrefixClean(prefix: string): Promise<void> {
  const admin = new Etcd3({ hosts: etcd.endpoints });
  await expectEtcdClean(admin, prefix).finally(() => admin.close());
}

async function expectRedisPrefixClean(prefix: string): Promise<void> {
  const client = new Redis(redis.url);
  const keys = await client.keys(`{${prefix}}:*`).finally(() => client.disconnect());
  expect(keys.filter(k => !/:(seq|swept)$/.test(k))).toEqual([]);
}

describe.each(backends)('OpenTelemetry on %s', (backend, where, expectClean) => {
  let a: LockService;
  let b: LockService;
  const base = { 'lock.backend': backend, 'lock.kind': 'exclusive' };

  beforeAll(() => {
    a = new LockService({ ...where(), prefix: `${PREFIX}${backend}/`, ownerId: 'a' });
    b = new LockService({ ...where(), prefix: `${PREFIX}${backend}/`, ownerId: 'b' });
    sdk.spans.reset();
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await expectClean(`${PREFIX}${backend}/`);
  });

  it('a contended run: wait and hold times, outcomes, held and pending counts, a loss; spans under the caller', async () => {
    const before = await sdk.collect();
    const count = (name: string, match: Record<string, string>) => pointsOf(before.get(name), { ...base, ...match }).reduce((n, p) => n + Number(p.value), 0);
    const acquiredBefore = count('lock.acquisitions', { 'lock.name': 'order:<<id>>', 'lock.outcome': 'acquired' });

    // b holds order:1 for 200 ms; a waits for it inside a span of its own
    const held = await b.acquire('order:1', { telemetryName: 'order:<<id>>' });
    const waiting = firstValueFrom(a.events$.pipe(filter(e => e.type === 'waiting')));
    const tracer = trace.getTracer('test');
    let callerSpanId = '';
    const waited = tracer.startActiveSpan('caller', async span => {
      callerSpanId = span.spanContext().spanId;
      try {
        return await a.withLock('order:1', lock => lock.token, { telemetryName: 'order:<<id>>' });
      } finally {
        span.end();
      }
    });
    await waiting;
    const during = await sdk.collect();
    expect(pointsOf(during.get('lock.pending_requests'), { ...base, 'lock.name': 'order:<<id>>' }).map(p => p.value)).toEqual([1]);
    expect(pointsOf(during.get('lock.held'), { ...base, 'lock.name': 'order:<<id>>' }).map(p => p.value)).toEqual([1]);
    await sleep(200);
    await held.release();
    const token = await waited;

    // a timeout, a skip, and a loss by force-unlock
    const busy = await b.acquire('busy');
    await expect(a.acquire('busy', { waitTimeout: 50 })).rejects.toMatchObject({ code: 'LOCK_TIMEOUT' });
    expect(await a.tryAcquire('busy')).toBeNull();
    await sleep(HOLDER_WATCH_DELAY_MS + 50); // on etcd a holder watches its key once it has held it this long
    const lost = firstValueFrom(b.events$.pipe(filter(e => e.type === 'lost')));
    await a.forceUnlock('busy');
    expect(await lost).toMatchObject({ reason: 'forced' });
    await busy.release();

    const after = await sdk.collect();
    const acquisitions = after.get('lock.acquisitions')!;
    expect(acquisitions.descriptor).toMatchObject({ unit: '{acquisition}' });
    const total = (name: string, match: Record<string, string>) => pointsOf(after.get(name), { ...base, ...match }).reduce((n, p) => n + Number(p.value), 0);
    expect(total('lock.acquisitions', { 'lock.name': 'order:<<id>>', 'lock.outcome': 'acquired' }) - acquiredBefore).toBe(2);
    // the waiter's acquire queued behind the holder; the holder's did not
    const contended = pointsOf(after.get('lock.acquisitions'), { ...base, 'lock.name': 'order:<<id>>', 'lock.outcome': 'acquired' }).filter(p => p.attributes['lock.contended'] === true);
    expect(contended.map(p => p.value)).toEqual([1]);
    expect(total('lock.acquisitions', { 'lock.name': 'unnamed', 'lock.outcome': 'timeout' })).toBe(1);
    expect(total('lock.acquisitions', { 'lock.name': 'unnamed', 'lock.outcome': 'skipped' })).toBe(1);
    expect(total('lock.losses', { 'lock.name': 'unnamed', 'lock.loss.reason': 'forced' })).toBe(1);
    expect(after.get('lock.losses')!.descriptor).toMatchObject({ unit: '{loss}' });
    // nothing is held or waiting any more
    for (const name of ['lock.held', 'lock.pending_requests']) {
      expect(pointsOf(after.get(name), base).map(p => p.value)).toEqual(pointsOf(after.get(name), base).map(() => 0));
    }

    // the waiter's wait_time covers the 200 ms the holder kept the lock
    const wait = after.get('lock.wait_time')!;
    expect(wait.descriptor).toMatchObject({ unit: 's' });
    expect(wait.dataPointType).toBe(DataPointType.HISTOGRAM);
    const waitedPoint = pointsOf(wait, { ...base, 'lock.name': 'order:<<id>>', 'lock.outcome': 'acquired' })[0].value as Histogram;
    expect(waitedPoint.max).toBeGreaterThanOrEqual(0.2);
    const holds = pointsOf(after.get('lock.hold_time'), { ...base, 'lock.name': 'order:<<id>>', 'lock.end': 'released' })[0].value as Histogram;
    expect(holds.count).toBeGreaterThanOrEqual(2);
    expect(holds.max).toBeGreaterThanOrEqual(0.2); // b's hold

    // spans: the waiter's acquire and hold are children of the caller's span, with the token
    const spans = sdk.spans.getFinishedSpans();
    const acquireSpan = spans.find(s => s.name === 'lock.acquire order:<<id>>' && s.attributes['lock.token'] === token.toString())!;
    const holdSpan = spans.find(s => s.name === 'lock.hold order:<<id>>' && s.attributes['lock.token'] === token.toString())!;
    for (const span of [acquireSpan, holdSpan]) {
      expect(span.parentSpanContext?.spanId).toBe(callerSpanId);
      expect(span.attributes).toMatchObject({ ...base, 'lock.name': 'order:<<id>>', 'lock.key': 'order:1' });
    }
    expect(acquireSpan.attributes['lock.outcome']).toBe('acquired');
    expect(holdSpan.attributes['lock.end']).toBe('released');
    const timedOut = spans.find(s => s.name === 'lock.acquire unnamed' && s.attributes['lock.outcome'] === 'timeout')!;
    expect(timedOut.status.code).toBe(SpanStatusCode.ERROR);
    const forced = spans.find(s => s.name === 'lock.hold unnamed' && s.attributes['lock.end'] === 'lost')!;
    expect(forced.events.map(e => [e.name, e.attributes?.['lock.loss.reason']])).toEqual([['lock.lost', 'forced']]);
    expect(forced.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a telemetryName that is not a short name is refused, naming the option, and nothing is queued', async () => {
    for (const telemetryName of ['', 'x'.repeat(201), 42 as unknown as string]) {
      await expect(a.acquire('named', { telemetryName })).rejects.toThrow(/"telemetryName".*order:<<id>>/);
    }
    expect(await a.isLocked('named')).toBe(false);
  });

  it('cardinality stays bounded: 200 distinct keys make no more series than the names given', async () => {
    for (let i = 0; i < 100; i++) await (await a.acquire(`cart:${i}`, { telemetryName: 'cart:<<id>>' })).release();
    for (let i = 0; i < 100; i++) await (await a.acquire(`session:${i}`)).release();
    const after = await sdk.collect();
    for (const name of ['lock.acquisitions', 'lock.wait_time', 'lock.hold_time', 'lock.held']) {
      const names = new Set(pointsOf(after.get(name), { 'lock.backend': backend }).map(p => p.attributes['lock.name']));
      expect([...names].sort()).toEqual(['cart:<<id>>', 'order:<<id>>', 'unnamed']);
      for (const point of pointsOf(after.get(name))) expect(Object.keys(point.attributes).every(k => !k.includes('key'))).toBe(true);
    }
  });
});


@Injectable()
class Invoices {
  @WithLock('invoice:<<id>>')
  async send(id: string): Promise<string> {
    return `sent ${id}`;
  }

  @WithLock((id: string) => `refund:${id}`)
  async refund(id: string): Promise<string> {
    return `refunded ${id}`;
  }
}

describe('OpenTelemetry with @WithLock (a Nest app on etcd)', () => {
  it('metrics name the lock by its key template (Class.method for a key function); spans carry the key', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [EtcdLockModule.forRoot({ etcd: { hosts: etcd.endpoints }, prefix: `${PREFIX}nest/`, logger: false })],
      providers: [Invoices],
    }).compile();
    const app = await moduleRef.init();
    try {
      const invoices = app.get(Invoices);
      for (const id of ['1', '2', '3']) await invoices.send(id);
      await invoices.refund('9');
      const after = await sdk.collect();
      const acquired = pointsOf(after.get('lock.acquisitions'), { 'lock.backend': 'etcd', 'lock.outcome': 'acquired' });
      expect(acquired.filter(p => String(p.attributes['lock.name']).match(/^(invoice|refund|Invoices)/)).map(p => [p.attributes['lock.name'], p.value])).toEqual([
        ['invoice:<<id>>', 3],
        ['Invoices.refund', 1],
      ]);
      const keys = sdk.spans.getFinishedSpans().filter(s => s.name === 'lock.acquire invoice:<<id>>').map(s => s.attributes['lock.key']);
      expect(keys.sort()).toEqual(['invoice:1', 'invoice:2', 'invoice:3']);
    } finally {
      await app.close();
    }
    await expectEtcdPrefixClean(`${PREFIX}nest/`);
  });
});
