// The fault-test TCP proxy between a real etcd3 client and a real etcd: no mocks. Each test gets its
// own proxy (fresh mode, latency and connections); clients and sockets are closed after each test.
import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from '@jest/globals';
import { noop } from 'cockatiel';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Etcd3, GRPCDeadlineExceededError } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { createEtcdClient } from '../lib/backends/etcd/etcd-client.js';
import { rejection } from './support/rejection.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const uniqueKey = (name: string) => `tcp-proxy/${name}/${randomUUID()}`;

describe('TCP proxy (fault tests) against a real etcd', () => {
  let etcd: EtcdHandle;
  let direct: Etcd3; // bypasses the proxy: what etcd really holds
  let proxy: TcpProxy;
  let cleanups: (() => void)[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    direct = new Etcd3({ hosts: etcd.endpoints[0] });
  });
  afterAll(async () => {
    direct?.close();
    await etcd?.stop();
  });
  beforeEach(async () => {
    proxy = await startTcpProxy(etcd.endpoints[0]);
  });
  afterEach(async () => {
    cleanups.forEach((cleanup) => cleanup());
    cleanups = [];
    await proxy.close();
  });

  /** The project's client (retries with a short backoff) through the proxy. */
  function client(): Etcd3 {
    const etcd3 = createEtcdClient({ hosts: proxy.url });
    cleanups.push(() => etcd3.close());
    return etcd3;
  }

  /** One attempt per call with a 1 s deadline: with retries, one blackholed get would cost several seconds. */
  function impatientClient(): Etcd3 {
    const etcd3 = createEtcdClient({
      hosts: proxy.url,
      defaultCallOptions: () => ({ deadline: Date.now() + 1000 }),
      faultHandling: { global: noop },
    });
    cleanups.push(() => etcd3.close());
    return etcd3;
  }

  it('pass: put and get go through to etcd', async () => {
    const key = uniqueKey('pass');
    const etcd3 = client();
    await etcd3.put(key).value('through');
    expect(await etcd3.get(key).string()).toBe('through');
    expect(await direct.get(key).string()).toBe('through'); // the very etcd behind the proxy
    expect(proxy.connections).toBe(1);
  });

  it('latency: replies are held back for the latency set, in order even when it is lowered', async () => {
    const key = uniqueKey('latency');
    const etcd3 = client();
    await etcd3.put(key).value('slow'); // connected before timing anything

    proxy.setLatency(200, 'replies');
    const started = performance.now();
    expect(await etcd3.get(key).string()).toBe('slow');
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);

    // A reply that arrives after the latency was lowered still waits behind the one held back:
    // HTTP/2 frames reordered on the wire would break the stream or answer the second get first.
    proxy.setLatency(300, 'replies');
    const finished: string[] = [];
    const get = (name: string) => etcd3.get(key).string().finally(() => { finished.push(name); });
    const first = get('first');
    await sleep(50); // the first reply is queued in the proxy by now (etcd answers in ~1 ms)
    proxy.setLatency(0);
    const second = get('second');
    expect(await Promise.all([first, second])).toEqual(['slow', 'slow']);
    expect(finished).toEqual(['first', 'second']);

    expect(await etcd3.get(key).string()).toBe('slow'); // no latency: still works
  });

  it('blackhole: no answer and no reset; after pass + cut the client reconnects', async () => {
    const key = uniqueKey('blackhole');
    const etcd3 = impatientClient();
    await etcd3.put(key).value('before'); // an established connection: the get below is really sent

    proxy.setMode('blackhole');
    const get = rejection(etcd3.get(key).string());
    await sleep(500);
    expect(proxy.connections).toBeGreaterThanOrEqual(1); // the client's connection was not reset
    expect(await get).toBeInstanceOf(GRPCDeadlineExceededError); // failed by its own deadline, not a reset

    // A client connecting during the blackhole is accepted, then hears nothing: no data, no FIN, no RST.
    const raw = net.connect(proxy.port, '127.0.0.1');
    cleanups.push(() => raw.destroy());
    const heard: string[] = [];
    raw.on('data', () => heard.push('data')).on('end', () => heard.push('end')).on('error', (err) => heard.push(String(err)));
    await once(raw, 'connect');
    raw.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'); // the HTTP/2 preface: etcd would answer with SETTINGS
    await sleep(300);
    expect(heard).toEqual([]);
    expect(raw.destroyed).toBe(false);

    proxy.setMode('pass');
    proxy.cut(); // connections opened during the blackhole lost bytes: start afresh
    expect(await etcd3.get(key).string()).toBe('before');
  });

  it('drop-replies: the request reaches etcd, its answer never comes back', async () => {
    const key = uniqueKey('drop-replies');
    const etcd3 = impatientClient();
    // Established first: on a new connection etcd's HTTP/2 SETTINGS would be dropped too, and
    // grpc-js sends no request before the handshake completes.
    await etcd3.get(key);

    proxy.setMode('drop-replies');
    expect(await rejection(etcd3.put(key).value('written').exec())).toBeInstanceOf(GRPCDeadlineExceededError);
    expect(await direct.get(key).string()).toBe('written');
  });

  it('cut: every connection is closed at once and the client recovers on its next call', async () => {
    const key = uniqueKey('cut');
    const etcd3 = client();
    await etcd3.put(key).value('kept');
    expect(proxy.connections).toBe(1);

    proxy.cut();
    expect(proxy.connections).toBe(0);
    expect(await etcd3.get(key).string()).toBe('kept'); // a dropped connection is retried on a new one
    expect(proxy.connections).toBe(1);
  });
});
