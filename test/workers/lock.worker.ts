// A separate OS process holding a LockService, driven by the test over IPC, so that
// concurrency and fault claims are tested across real processes (and real signals).
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { LockService, type AcquireOptions, type LockHandle } from '../../lib/index.js';
import { RedisBackend } from '../../lib/backends/redis/index.js';
import { FencedRegister } from '../support/fenced-register.js';

export type WorkerCommand =
  // `as` names the handle, for several holds of one key in one process (default: the key)
  | { op: 'acquire'; key: string; waitTimeout?: number; options?: LockKindOptions & Pick<AcquireOptions, 'autoRenew' | 'ttl'>; as?: string }
  | { op: 'tryAcquire'; key: string; options?: LockKindOptions; as?: string }
  | { op: 'release'; key: string; as?: string }
  | { op: 'probe'; key: string }
  | { op: 'work'; key: string }
  | { op: 'counter'; key: string; counterKey: string; cycles: number }
  | { op: 'fenced-loop'; key: string; register: string; cycles: number; holdMs: number; waitTimeout: number }
  | { op: 'occupancy-loop'; key: string; counterKey: string; cycles: number; holdMs: number; options: LockKindOptions[] }
  | { op: 'clock' }
  | { op: 'watching' } // resolves once the LOCK_WATCH watch runs
  | { op: 'close' };

/** One hold in the fenced loop, as its holder saw it (wall-clock ms comparable across processes). */
export interface FencedSection {
  token: bigint;
  writeId: string;
  acquiredAt: number;
  entered: boolean | 'unknown'; // the register took our token on entry ('unknown': no answer)
  writeSentAt?: number;
  writeAckedAt?: number;
  written?: boolean | 'unknown'; // the register accepted our write
  heldBeforeWrite: boolean; // lock.isHeld just before writing
  lostAfterWrite: boolean; // lock.signal aborted just after the write's answer
  releaseError?: string;
}

/** What the fenced loop did: its holds, and every acquire that failed (with its error code). */
export interface FencedLoopResult {
  sections: FencedSection[];
  failures: { code?: string; message: string }[];
}

/** The kind of lock an op asks for. */
export type LockKindOptions = Pick<AcquireOptions, 'mode' | 'limit' | 'fair'>;

/** Who was inside when a holder of the occupancy loop entered (itself included), counted in etcd. */
export interface Occupancy {
  shared: number;
  other: number;
}

/** One hold of the occupancy loop: its token and kind, and the occupancy its entry made. */
export interface OccupancySection {
  token: bigint;
  mode: 'shared' | 'other';
  seen: Occupancy;
  /** etcd revision of the entry's update: the order of entries, on etcd's one clock */
  enteredAt: bigint;
}

/** One critical section of the counter loop, in wall-clock ms comparable across processes. */
export interface CriticalSection {
  token: bigint;
  enter: number;
  exit: number;
  read: number;
}

const now = () => performance.timeOrigin + performance.now();
const send = (message: unknown) => process.send?.(message);
const hosts = process.env.ETCD_ENDPOINTS!.split(',');
// LOCK_WATCH: the watch option, as JSON (true, or { prefix })
const watch = process.env.LOCK_WATCH ? (JSON.parse(process.env.LOCK_WATCH) as boolean | { prefix: string }) : undefined;
// LOCK_REDIS_URL: the locks are in that Redis; the protected resource (counter, register) stays in etcd
const where = process.env.LOCK_REDIS_URL ? { backend: new RedisBackend({ url: process.env.LOCK_REDIS_URL }) } : { etcd: { hosts } };
const service = new LockService({ ...where, prefix: process.env.LOCK_PREFIX, ttl: Number(process.env.LOCK_TTL ?? 1), watch });
// the protected resource may be reachable when the lock's etcd is not (a partition, a proxy)
const etcd = new Etcd3({ hosts: process.env.REGISTER_ENDPOINTS?.split(',') ?? hosts });
const handles = new Map<string, LockHandle>();
service.events$.subscribe(e => send({ event: e.type, key: e.key, token: e.token, reason: e.reason, origin: e.origin, owner: e.owner, at: now() }));

async function run(command: WorkerCommand): Promise<unknown> {
  switch (command.op) {
    case 'acquire':
    case 'tryAcquire': {
      const lock =
        command.op === 'acquire'
          ? await service.acquire(command.key, { ...command.options, waitTimeout: command.waitTimeout ?? 30_000 })
          : await service.tryAcquire(command.key, command.options);
      if (lock) handles.set(command.as ?? command.key, lock);
      return lock && { token: lock.token, at: now() };
    }
    case 'release':
      await handles.get(command.as ?? command.key)?.release();
      return { at: now() };
    case 'probe': {
      const lock = handles.get(command.key)!;
      let assertError: string | undefined;
      try {
        lock.assertHeld();
      } catch (err) {
        assertError = (err as { code?: string }).code;
      }
      return { isHeld: lock.isHeld, aborted: lock.signal.aborted, reason: lock.signal.reason?.code, assertError };
    }
    case 'work': {
      // the loop a careful holder runs: check the lock before every step of work
      const lock = handles.get(command.key)!;
      void (async () => {
        const passes: number[] = [];
        try {
          for (;;) {
            // the time of the check, taken before it: a SIGSTOP between a passed check and
            // a clock read would date the check after the pause
            const at = now();
            lock.assertHeld();
            passes.push(at);
            await sleep(10);
          }
        } catch (err) {
          send({ event: 'work-stopped', code: (err as { code?: string }).code, passes, at: now() });
        }
      })();
      return null;
    }
    case 'counter': {
      // an unsafe read, pause, write increment: only mutual exclusion keeps the count exact
      const sections: CriticalSection[] = [];
      for (let i = 0; i < command.cycles; i++) {
        const asked = now();
        await service.withLock(command.key, async lock => {
          const enter = now();
          // a wait past a second here is a stall worth naming (the suite's time limit only says that it ran out)
          if (enter - asked > 1000) process.stderr.write(`[counter] pid ${process.pid} cycle ${i}: waited ${Math.round(enter - asked)} ms for ${command.key}, token ${lock.token}\n`);
          const read = Number((await etcd.get(command.counterKey).string()) ?? '0');
          await sleep(Math.random() < 0.5 ? 0 : 1);
          await etcd.put(command.counterKey).value(String(read + 1));
          sections.push({ token: lock.token, enter, exit: now(), read });
        });
      }
      return sections;
    }
    case 'fenced-loop':
      return fencedLoop(command);
    case 'occupancy-loop':
      return occupancyLoop(command);
    case 'watching':
      return service.watching();
    case 'clock':
      return now(); // the test compares it with its own clock: processes' wall clocks differ by up to ms
    case 'close':
      await service.close();
      etcd.close();
      return null;
  }
}

/**
 * Takes the lock `cycles` times; each hold enters the fenced register, waits `holdMs`, then
 * writes count + 1, whether or not the lock is still held: the register's fence, not the
 * holder's good manners, must stop a stale write. Announces each hold ('in-section', once
 * entered) so a test can fault the current holder.
 */
async function fencedLoop(command: Extract<WorkerCommand, { op: 'fenced-loop' }>): Promise<FencedLoopResult> {
  const register = new FencedRegister(etcd, command.register);
  const result: FencedLoopResult = { sections: [], failures: [] };
  // `cycles` holds; failed acquires (etcd down, say) are retried, up to 100 of them
  for (let i = 0; i < command.cycles && result.failures.length < 100; ) {
    let lock: LockHandle;
    try {
      lock = await service.acquire(command.key, { waitTimeout: command.waitTimeout });
    } catch (err) {
      result.failures.push({ code: (err as { code?: string }).code, message: (err as Error).message });
      await sleep(50);
      continue;
    }
    i++;
    const section: FencedSection = { token: lock.token, writeId: `${process.pid}-${i}`, acquiredAt: now(), entered: 'unknown', heldBeforeWrite: false, lostAfterWrite: false };
    result.sections.push(section);
    try {
      const entry = await register.enter(lock.token);
      section.entered = entry.accepted;
      // inside: a test may now fault this holder, between its entry and its write
      send({ event: 'in-section', key: command.key, token: lock.token, at: section.acquiredAt });
      await sleep(command.holdMs);
      if (entry.accepted) {
        section.heldBeforeWrite = lock.isHeld;
        section.writeSentAt = now();
        section.written = 'unknown';
        section.written = await register.write(lock.token, entry.count + 1, section.writeId);
        section.writeAckedAt = now();
      }
    } catch {
      // the register did not answer: etcd's log of accepted writes tells what happened
    }
    section.lostAfterWrite = lock.signal.aborted;
    try {
      await lock.release();
    } catch (err) {
      section.releaseError = (err as { code?: string }).code ?? (err as Error).message;
    }
  }
  return result;
}

/**
 * Takes the lock `cycles` times, with the kinds in `options` in turn. Each hold adds itself to
 * a count of holders kept in etcd (a compare-and-swap, so every update is seen in one order),
 * records the count it made, waits `holdMs`, and takes itself off before releasing.
 */
async function occupancyLoop(command: Extract<WorkerCommand, { op: 'occupancy-loop' }>): Promise<OccupancySection[]> {
  const sections: OccupancySection[] = [];
  for (let i = 0; i < command.cycles; i++) {
    const options = command.options[i % command.options.length];
    const mode = options.mode === 'shared' ? 'shared' : 'other';
    await service.withLock(
      command.key,
      async lock => {
        const { seen, revision } = await updateOccupancy(command.counterKey, mode, +1);
        sections.push({ token: lock.token, mode, seen, enteredAt: revision });
        await sleep(command.holdMs);
        await updateOccupancy(command.counterKey, mode, -1);
      },
      { ...options, waitTimeout: 60_000 },
    );
  }
  return sections;
}

/** Adds `delta` to one count of the occupancy in etcd, atomically; returns the new occupancy and its etcd revision. */
async function updateOccupancy(counterKey: string, mode: keyof Occupancy, delta: number): Promise<{ seen: Occupancy; revision: bigint }> {
  for (;;) {
    const current = await etcd.get(counterKey).exec();
    const kv = current.kvs[0];
    const next: Occupancy = kv ? JSON.parse(kv.value.toString()) : { shared: 0, other: 0 };
    next[mode] += delta;
    const swap = await etcd
      .if(counterKey, 'Mod', '==', kv ? kv.mod_revision : 0)
      .then(etcd.put(counterKey).value(JSON.stringify(next)))
      .commit();
    if (swap.succeeded) return { seen: next, revision: BigInt(swap.header.revision) };
  }
}

process.on('message', (message: { id: number; command: WorkerCommand }) => {
  run(message.command).then(
    result => send({ id: message.id, ok: true, result }),
    (err: Error & { code?: string }) => send({ id: message.id, ok: false, error: { code: err.code, name: err.name, message: err.message } }),
  );
});
send({ ready: true });
