// @WithLock on methods reached through other Nest modules: @Cron, @Interval and @Timeout
// (@nestjs/schedule), @OnEvent (@nestjs/event-emitter), a BullMQ processor (@nestjs/bullmq, on a
// real redis-server), microservice @MessagePattern / @EventPattern (TCP) and a WebSocket gateway
// (ws). Two processes against one etcd, with the integrations imported before and after
// EtcdLockModule: each tick runs once across the cluster, and no two runs for one key overlap
// (an unsafe read-modify-write counter stays exact).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { Queue } from 'bullmq';
import { firstValueFrom } from 'rxjs';
import { WebSocket } from 'ws';
import { freePorts } from '../../harness/etcd.js';
import { startRedis, type RedisHandle } from '../../harness/redis.js';
import { WithLock, withoutLocks } from '../../lib/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { useEtcdAndWorkers } from '../support/worker-fixture.js';

const PREFIX = 'integrations/';
const DATA = 'integrations-data/';
const WORKER = fileURLToPath(new URL('../workers/integrations-app.worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const fixture = useEtcdAndWorkers(PREFIX, 2);
let redis: RedisHandle;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

interface App {
  process: ChildProcess;
  httpPort: number;
  rpc: ClientProxy;
  /** a microservice connected without inheritAppConfig: Nest gives it none of the app's interceptors */
  rpcUnintercepted: ClientProxy;
}

async function startApp(order: 'integrations-first' | 'lock-first'): Promise<App> {
  const [rpcPort, uninterceptedPort] = await freePorts(2);
  const child = fork(WORKER, [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      ETCD_ENDPOINTS: fixture.etcd.endpoints.join(','),
      REDIS_URL: redis.url,
      LOCK_PREFIX: PREFIX,
      DATA_PREFIX: DATA,
      IMPORT_ORDER: order,
      RPC_PORT: String(rpcPort),
      RPC_PORT_UNINTERCEPTED: String(uninterceptedPort),
      NODE_OPTIONS: '',
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [message] = (await once(child, 'message')) as [{ httpPort: number }];
  const client = async (port: number) => {
    const proxy = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port } });
    await proxy.connect();
    return proxy;
  };
  return { process: child, httpPort: message.httpPort, rpc: await client(rpcPort), rpcUnintercepted: await client(uninterceptedPort) };
}

async function stop(app: App): Promise<void> {
  await Promise.all([app.rpc.close(), app.rpcUnintercepted.close()]);
  const exited = once(app.process, 'exit');
  app.process.kill('SIGTERM');
  await Promise.race([exited, sleep(5_000, undefined, { ref: false }).then(() => app.process.kill('SIGKILL'))]);
}

/** Runs per tick: tick → number of processes that ran it. */
async function runsPerTick(job: string): Promise<Map<string, number>> {
  const keys = await fixture.admin.getAll().prefix(`${DATA}${job}/`).keys();
  const ticks = new Map<string, number>();
  for (const key of keys) {
    const tick = key.split('/')[2];
    ticks.set(tick, (ticks.get(tick) ?? 0) + 1);
  }
  return ticks;
}

const count = async (counter: string) => Number((await fixture.admin.get(`${DATA}count/${counter}`).string()) ?? '0');

async function until(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !(await condition()); await sleep(50)) {
    if (Date.now() > end) throw new Error('condition not met in time');
  }
}

/** Sends `times` 'pay' messages for `id` over one WebSocket to `port`; resolves with the replies. */
async function payOverWebSocket(port: number, id: string, times: number): Promise<number[]> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(socket, 'open');
  const replies: number[] = [];
  const done = new Promise<void>(resolve =>
    socket.on('message', raw => {
      replies.push((JSON.parse(String(raw)) as { data: number }).data);
      if (replies.length === times) resolve();
    }),
  );
  for (let i = 0; i < times; i++) socket.send(JSON.stringify({ event: 'pay', data: { id } }));
  await done;
  socket.close();
  return replies;
}

describe.each(['integrations-first', 'lock-first'] as const)('two processes, %s', order => {
  let apps: App[] = [];
  const id = `o-${order}`;

  beforeAll(async () => {
    await fixture.admin.delete().prefix(DATA);
    apps = await Promise.all([startApp(order), startApp(order)]);
  });

  afterAll(async () => {
    await Promise.all(apps.map(stop));
  });

  it('@Cron + @WithLock(onContention: skip): each second runs on one process only', async () => {
    await sleep(4_500);
    const ticks = await runsPerTick('cron');
    expect(ticks.size).toBeGreaterThanOrEqual(3);
    expect([...ticks.values()].filter(n => n > 1)).toEqual([]); // no tick ran twice
  });

  it('@Interval + @WithLock(onContention: skip): each half second runs on one process only', async () => {
    const ticks = await runsPerTick('interval');
    expect(ticks.size).toBeGreaterThanOrEqual(5);
    expect([...ticks.values()].filter(n => n > 1)).toEqual([]);
  });

  it('@Timeout + @WithLock: the startup job of each process ran, one after the other', async () => {
    expect(await count('timeout')).toBe(2);
  });

  it("@OnEvent + @WithLock('order:<<0.id>>'): 2 × 10 concurrent events of one order never overlap", async () => {
    await Promise.all(
      apps.map(async app => {
        app.process.send({ op: 'emit', id, times: 10 });
        expect((await once(app.process, 'message'))[0]).toBe('emitted');
      }),
    );
    expect(await count(`event-${id}`)).toBe(20);
  });

  it("BullMQ WorkerHost.process + @WithLock('account:<<0.data.accountId>>'): 20 jobs of one account on 2 × 5 workers never overlap", async () => {
    const queue = new Queue('payments', { connection: { host: redis.host, port: redis.port } });
    try {
      await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'charge', data: { accountId: id }, opts: { jobId: `${order}-${i}` } })));
      await until(async () => (await queue.getCompletedCount()) + (await queue.getFailedCount()) >= 20);
      expect(await queue.getFailedCount()).toBe(0);
      expect(await count(`job-${id}`)).toBe(20);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it("microservice @MessagePattern and @EventPattern + @WithLock('order:<<id>>'): 2 × 10 concurrent messages never overlap", async () => {
    const replies = await Promise.all(apps.flatMap(app => Array.from({ length: 10 }, () => firstValueFrom(app.rpc.send<number>('pay', { id })))));
    expect(replies.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1)); // each saw the count before it
    await Promise.all(apps.flatMap(app => Array.from({ length: 10 }, () => firstValueFrom(app.rpc.emit('paid', { id })))));
    await until(async () => (await count(`rpc-event-${id}`)) >= 20, 5_000).catch(() => undefined);
    expect(await count(`rpc-event-${id}`)).toBe(20);
  });

  it('a microservice without the app\'s interceptors refuses a @WithLock handler instead of running it unlocked', async () => {
    const refused = await firstValueFrom(apps[0].rpcUnintercepted.send<number>('pay', { id: `${id}-bare` })).then(
      () => undefined,
      (err: unknown) => err as { message?: string },
    );
    // refused (Nest's RPC filter masks the LockConfigurationError, which it logs, as "Internal server error")
    expect(refused).toMatchObject({ message: 'Internal server error' });
    expect(await count(`rpc-${id}-bare`)).toBe(0); // the handler did not run
    expect(await firstValueFrom(apps[0].rpcUnintercepted.send<string>('ping', {}))).toBe('pong'); // the transport itself works
  });

  it("WebSocket gateway @SubscribeMessage + @WithLock('order:<<body.id>>'): 2 × 10 messages never overlap", async () => {
    const replies = (await Promise.all(apps.map(app => payOverWebSocket(app.httpPort, id, 10)))).flat();
    expect(replies.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});

describe('outside an app', () => {
  @Injectable()
  class Payments {
    @WithLock('order:<<id>>')
    async charge(id: string): Promise<string> {
      return `charged ${id}`;
    }
  }

  it('a @WithLock method of an instance no app owns throws instead of running unlocked', async () => {
    await expect(new Payments().charge('o1')).rejects.toThrow(/no app with EtcdLockModule owns this instance/);
  });

  it('withoutLocks() runs it without the lock, on purpose', async () => {
    await expect(withoutLocks(() => new Payments().charge('o1'))).resolves.toBe('charged o1');
  });
});

describe('cleanup', () => {
  it('leaves etcd clean', async () => {
    await fixture.admin.delete().prefix(DATA); // the handlers' records
    await expectEtcdClean(fixture.admin, PREFIX, 3_000);
  });
});
