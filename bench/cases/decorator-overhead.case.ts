import 'reflect-metadata';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller, Get, Inject, Module, Param, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EtcdLockModule, LockService, WithLock } from '../../lib/index.js';
import type { BenchCase, SubjectResult } from '../bench.types.js';
import { perOperation, readCounters } from '../etcd-metrics.js';
import { latencyStats } from '../stats.js';

/** The same trivial work behind both routes. */
const work = (id: string) => ({ id });

// explicit @Inject: tsx emits no decorator metadata
@Controller('bench')
class BenchController {
  constructor(@Inject(LockService) private readonly locks: LockService) {}

  @Get('decorated/:id')
  @WithLock('k:<<id>>')
  decorated(@Param('id') id: string) {
    return work(id);
  }

  @Get('manual/:id')
  manual(@Param('id') id: string) {
    return this.locks.withLock(`k:${id}`, () => work(id));
  }
}

function get(agent: http.Agent, port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent }, res => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`GET ${path}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Case 6: a Nest HTTP app (express) with two routes doing the same trivial work under the
 * same lock key scheme: one with @WithLock, one calling LockService.withLock by hand.
 * Sequential requests over one keep-alive connection, alternating routes so that drift hits
 * both alike, distinct ids (a fresh key per request) on both.
 */
export const decoratorOverhead: BenchCase = async ({ etcd, quick, progress }) => {
  const requests = quick ? 60 : 1500;
  @Module({ imports: [EtcdLockModule.forRoot({ etcd: { hosts: etcd.endpoints }, prefix: 'bench/decorator/', ttl: 10 })], controllers: [BenchController] })
  class BenchAppModule {}
  progress('case 6: starting the Nest app');
  const app: INestApplication = await NestFactory.create(BenchAppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const routes = { decorated: '@WithLock route', manual: 'LockService.withLock route' } as const;
  const samples: Record<keyof typeof routes, number[]> = { decorated: [], manual: [] };
  const counters: Partial<Record<keyof typeof routes, SubjectResult['rpc']>> = {};
  try {
    for (let i = 0; i < Math.min(50, requests); i++) for (const r of Object.keys(routes)) await get(agent, port, `/bench/${r}/w${i}`); // warm-up
    progress(`case 6: ${requests} requests per route`);
    for (const r of Object.keys(routes) as (keyof typeof routes)[]) {
      // the RPC cost of each route, measured alone
      const before = await readCounters(etcd);
      for (let i = 0; i < 20; i++) await get(agent, port, `/bench/${r}/c${i}`);
      counters[r] = perOperation(before, await readCounters(etcd), 20);
    }
    for (let i = 0; i < requests; i++) {
      const order = (i % 2 ? ['manual', 'decorated'] : ['decorated', 'manual']) as (keyof typeof routes)[];
      for (const r of order) {
        const t = performance.now();
        await get(agent, port, `/bench/${r}/${i}`);
        samples[r].push(performance.now() - t);
      }
    }
  } finally {
    agent.destroy();
    await app.close();
  }
  const subjects: SubjectResult[] = (Object.keys(routes) as (keyof typeof routes)[]).map(r => {
    const stats = latencyStats(samples[r]);
    return { subject: routes[r], ...stats, perSecond: 1000 / stats.mean, rpc: counters[r] };
  });
  const [decorated, manual] = subjects;
  const ratio = decorated.p50! / manual.p50!;
  return {
    id: '6',
    title: 'Decorator overhead: HTTP route with @WithLock vs LockService.withLock by hand',
    subjects,
    targets: [{ target: '@WithLock p50 <= 1.10 x manual p50', measured: `${ratio.toFixed(3)} x`, met: ratio <= 1.1 }],
    notes:
      ratio > 1.1
        ? [`@WithLock p50 ${decorated.p50!.toFixed(3)} ms vs manual ${manual.p50!.toFixed(3)} ms with ${decorated.rpc!.unary!.toFixed(2)} vs ${manual.rpc!.unary!.toFixed(2)} unary RPCs per request`]
        : [],
  };
};
