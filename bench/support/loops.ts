// Loops shared by the bench's own process and its child processes (bench/workers/bench.worker.ts):
// the same code measures one process and several.
import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdLockFailedError, type Etcd3 } from 'etcd3';
import type { LockService } from '../../lib/index.js';
import { bareFifoAcquire, bareGroupCommitCycle } from './bare-etcd.js';

export type ThroughputSubject = 'floor' | 'etcd3' | 'bare' | 'ours';
export type ContendSubject = 'ours' | 'bare' | 'polling';

/** Wall-clock ms, comparable across processes on one machine. */
export const wallNow = () => performance.timeOrigin + performance.now();

/** One acquire + release (or, for the floor, put + delete) of `key`. */
export function cycleOf(subject: ThroughputSubject, client: Etcd3, locks: LockService): (key: string) => Promise<void> {
  switch (subject) {
    case 'floor':
      return async key => {
        await client.put(key).value('x');
        await client.delete().key(key);
      };
    case 'etcd3':
      return async key => {
        const lock = client.lock(key);
        await lock.acquire();
        await lock.release();
      };
    case 'bare':
      return bareGroupCommitCycle(client);
    case 'ours':
      return async key => {
        const lock = await locks.acquire(key);
        await lock.release();
      };
  }
}

/**
 * `keys.length` concurrent loops, one per key, each cycling until `durationMs` has passed.
 * Returns the cycles completed, the time they took, the CPU time this process spent (ms) and,
 * if `timed`, the time of each cycle (ms).
 */
export async function runThroughput(
  cycle: (key: string) => Promise<void>,
  keys: string[],
  durationMs: number,
  timed = false,
): Promise<{ cycles: number; elapsedMs: number; cpuMs: number; latencies: number[] }> {
  let cycles = 0;
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    keys.map(async key => {
      for (let t = performance.now(); t < deadline; ) {
        await cycle(key);
        cycles++;
        const now = performance.now();
        if (timed) latencies.push(now - t);
        t = now;
      }
    }),
  );
  const spent = process.cpuUsage(cpu);
  return { cycles, elapsedMs: performance.now() - started, cpuMs: (spent.user + spent.system) / 1000, latencies };
}

/** One hold of the contended key, as seen by its holder. */
export interface Hold {
  token?: string; // fencing token (ours); the polling lock has none
  acquiredAt: number;
  releaseCalledAt: number;
}

/**
 * `waiters` concurrent contenders for one key, each taking it `holds` times and holding it
 * ~`holdMs`. `releaseCalledAt` is taken just before release() is called, `acquiredAt` just
 * after acquire resolves.
 */
export async function runContended(
  subject: ContendSubject,
  client: Etcd3,
  locks: LockService,
  key: string,
  waiters: number,
  holds: number,
  holdMs: number,
): Promise<Hold[]> {
  const out: Hold[] = [];
  const hold = async (token?: string) => {
    const acquiredAt = wallNow();
    await sleep(holdMs);
    return { token, acquiredAt, releaseCalledAt: wallNow() };
  };
  await Promise.all(
    Array.from({ length: waiters }, async (_, w) => {
      for (let i = 0; i < holds; i++) {
        if (subject === 'bare') {
          const lock = await bareFifoAcquire(client, key, `${process.pid}-${w}`);
          out.push(await hold(String(lock.token)));
          await lock.release();
        } else if (subject === 'ours') {
          const lock = await locks.acquire(key, { waitTimeout: 60_000 });
          const h = await hold(String(lock.token));
          out.push(h);
          await lock.release();
        } else {
          // what most lock libraries do when they wait: try, sleep 100 ms, retry
          for (;;) {
            const lock = client.lock(key);
            try {
              await lock.acquire();
            } catch (err) {
              if (!(err instanceof EtcdLockFailedError)) throw err;
              await sleep(100);
              continue;
            }
            const h = await hold();
            out.push(h);
            await lock.release();
            break;
          }
        }
      }
    }),
  );
  return out;
}

/** One hold of a hot key by one contender (`who`: process id and loop number). */
export interface HotHold extends Hold {
  token: string;
  who: string;
}

/**
 * `waiters` contenders looping on one key until `durationMs` has passed, each taking it
 * (fairly or not), holding it ~`holdMs` and releasing it at once: a hot key.
 */
export async function runHotKey(locks: LockService, key: string, waiters: number, durationMs: number, holdMs: number, fair: boolean): Promise<HotHold[]> {
  const out: HotHold[] = [];
  const deadline = performance.now() + durationMs;
  await Promise.all(
    Array.from({ length: waiters }, async (_, w) => {
      while (performance.now() < deadline) {
        const lock = await locks.acquire(key, { fair, waitTimeout: 60_000 });
        const acquiredAt = wallNow();
        await sleep(holdMs);
        out.push({ token: String(lock.token), who: `${process.pid}-${w}`, acquiredAt, releaseCalledAt: wallNow() });
        await lock.release();
      }
    }),
  );
  return out;
}
