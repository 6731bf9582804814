// @WithLock on methods that other Nest modules take in their own lifecycle hooks: @Cron and
// @Interval (@nestjs/schedule), @OnEvent (@nestjs/event-emitter). Two processes against one
// etcd, with the integrations imported before and after EtcdLockModule: each tick runs once
// across the cluster, and an order's event handlers never overlap.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import { WithLock, withoutLocks } from '../../lib/index.js';
import { expectEtcdClean } from '../support/etcd-state.js';
import { useEtcdAndWorkers } from '../support/worker-fixture.js';

const PREFIX = 'integrations/';
const DATA = 'integrations-data/';
const WORKER = fileURLToPath(new URL('../workers/scheduled-app.worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const fixture = useEtcdAndWorkers(PREFIX, 2);

async function startApp(order: 'integrations-first' | 'lock-first'): Promise<ChildProcess> {
  const child = fork(WORKER, [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ETCD_ENDPOINTS: fixture.etcd.endpoints.join(','), LOCK_PREFIX: PREFIX, DATA_PREFIX: DATA, IMPORT_ORDER: order, NODE_OPTIONS: '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [message] = await once(child, 'message');
  expect(message).toBe('ready');
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5_000).then(() => child.kill('SIGKILL'))]);
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

describe.each(['integrations-first', 'lock-first'] as const)('two processes, %s', order => {
  let apps: ChildProcess[] = [];

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

  it("@OnEvent + @WithLock('order:<<0.id>>'): 2 × 10 concurrent events of one order never overlap", async () => {
    const id = `o-${order}`;
    await Promise.all(
      apps.map(async app => {
        app.send({ op: 'emit', id, times: 10 });
        expect((await once(app, 'message'))[0]).toBe('emitted');
      }),
    );
    expect(await fixture.admin.get(`${DATA}paid/${id}`).string()).toBe('20'); // an unsafe increment, exact only under the lock
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
    await fixture.admin.delete().prefix(DATA); // the jobs' records
    await expectEtcdClean(fixture.admin, PREFIX, 3_000);
  });
});
