// The safety checker every fault test runs (issue 6): worker processes take one lock over and
// over and, inside it, do an unsafe read-modify-write on a fenced register in etcd, while the
// test injects a fault. Afterwards etcd's own log of accepted writes is checked against what
// each holder saw. It is the same check whatever the fault, so each scenario only says what
// it breaks.
import { expect } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import type { LockErrorCode } from '../../lib/index.js';
import type { FencedLoopResult, FencedSection } from '../workers/lock.worker.js';
import { expectEtcdClean } from './etcd-state.js';
import { FencedRegister } from './fenced-register.js';
import type { LockWorker } from './lock-worker.js';

export interface SafetyRun {
  name: string;
  admin: Etcd3; // reaches etcd directly: the register, and the final clean-up check
  workers: LockWorker[]; // started by the test (directly, or through proxies)
  prefix: string; // the workers' lock prefix
  cycles: number; // holds per worker
  holdMs?: number; // time inside the register between entry and write
  waitTimeout?: number; // ms, per acquire
  /** The fault, run while the workers loop; resolve when it is over (healed). */
  fault?: () => Promise<void>;
  /** Codes an acquire may fail with under this fault: anything else fails the check. */
  expectedFailures?: LockErrorCode[];
  /** Give up (and fail) if the loops have not all ended by then. */
  timeoutMs?: number;
  /** Where the locks are kept when it is not `admin`'s etcd (Redis): checks nothing is left there. */
  expectLocksClean?: () => Promise<void>;
}

export interface SafetyReport {
  holds: number;
  acceptedWrites: number;
  rejectedStale: number; // holds whose entry or write the fence refused
  writesAfterLoss: number; // accepted writes sent after the holder was told of its loss (no newer holder had entered)
  failures: Record<string, number>; // acquire failures by code
  killed: number; // workers the fault killed (their loops ended with them)
}

const DEFAULT_FAILURES: LockErrorCode[] = ['LOCK_TIMEOUT', 'LOCK_LOST', 'ETCD_UNAVAILABLE'];

/**
 * Runs the workers' fenced loops beside `run.fault`, then checks, from etcd's log and the
 * holders' records: no accepted write was lost (the count is exact and each write counted
 * one up from the last), tokens increase in acceptance order, no two holders that believed
 * they held the lock overlapped in time, every refused write came from a holder that had been told its
 * lock was lost, every failed acquire failed with an expected typed error, and no key or
 * lease is left once the workers stop. Prints the figures.
 */
export async function checkSafety(run: SafetyRun): Promise<SafetyReport> {
  const clocks = new Map(await Promise.all(run.workers.map(async w => [w.process.pid!, await w.clockOffset()] as const)));
  const register = new FencedRegister(run.admin, `safety-register/${run.name.replace(/\W+/g, '-')}/`);
  await register.reset();
  const key = 'checked';
  const loops = Promise.all(
    run.workers.map(w =>
      w
        .request<FencedLoopResult>({ op: 'fenced-loop', key, register: register.prefix, cycles: run.cycles, holdMs: run.holdMs ?? 2, waitTimeout: run.waitTimeout ?? 15_000 })
        .catch((err: Error) => ({ crashed: err, worker: w })),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    const ms = run.timeoutMs ?? 45_000;
    const state = () => run.workers.map(w => `pid ${w.process.pid}: ${w.events.slice(-4).map(e => `${e.event}${e.token ? ` ${e.token}` : ''}`).join(', ')}`).join('; ');
    timer = setTimeout(() => reject(new Error(`${run.name}: the workers' loops did not end within ${ms} ms (a waiter hangs?). Last events: ${state()}`)), ms);
  });
  let results: Awaited<typeof loops>;
  try {
    [results] = await Promise.race([Promise.all([loops, run.fault?.()]), bound]);
  } finally {
    clearTimeout(timer);
  }

  const sections: FencedSection[] = [];
  const firstMessage: Record<string, string> = {};
  const report: SafetyReport = { holds: 0, acceptedWrites: 0, rejectedStale: 0, writesAfterLoss: 0, failures: {}, killed: 0 };
  for (const result of results) {
    if ('crashed' in result) {
      // only a worker the fault killed may end without its loop's result
      expect({ worker: result.worker.process.pid, signal: result.worker.process.signalCode, error: result.crashed.message }).toMatchObject({ signal: 'SIGKILL' });
      report.killed++;
      continue;
    }
    sections.push(...result.sections);
    for (const failure of result.failures) {
      expect({ failure, expected: (run.expectedFailures ?? DEFAULT_FAILURES).includes(failure.code as LockErrorCode) }).toMatchObject({ expected: true });
      report.failures[failure.code!] = (report.failures[failure.code!] ?? 0) + 1;
      firstMessage[failure.code!] ??= failure.message;
    }
  }
  report.holds = sections.length;

  // etcd's log: exact count, each accepted write one up from the last, tokens increasing
  const { count, writes } = await register.history();
  report.acceptedWrites = writes.length;
  expect(count).toBe(writes.length);
  expect(writes.map(w => w.count)).toEqual(writes.map((_, i) => i + 1));
  for (let i = 1; i < writes.length; i++) expect({ at: i, increasing: writes[i].token > writes[i - 1].token }).toEqual({ at: i, increasing: true });

  // the holders' records agree with etcd's log
  const logged = new Set(writes.map(w => w.writeId));
  const byId = new Map(sections.map(s => [s.writeId, s]));
  for (const s of sections) {
    if (s.written === true) expect({ writeId: s.writeId, logged: logged.has(s.writeId) }).toEqual({ writeId: s.writeId, logged: true });
    if (s.written === false || s.entered === false) {
      expect({ writeId: s.writeId, logged: logged.has(s.writeId) }).toEqual({ writeId: s.writeId, logged: false });
      // a refused holder had been told: loss is never silent
      expect({ token: s.token, lostAfterWrite: s.lostAfterWrite }).toEqual({ token: s.token, lostAfterWrite: true });
      report.rejectedStale++;
    }
  }
  for (const w of writes) {
    const s = byId.get(w.writeId);
    if (s) expect(s.token).toBe(w.token);
    else expect(report.killed).toBeGreaterThan(0); // a write of a killed worker: its record died with it
  }

  // no two holders that still believed they held the lock when they wrote overlapped:
  // [acquired, write sent], on this process's clock, beyond what the clock offsets leave unknown.
  // (A write after a reported loss is the fence's business.)
  const clockOf = (s: FencedSection) => clocks.get(Number(s.writeId.split('-')[0]))!;
  const believed = writes.map(w => byId.get(w.writeId)).filter((s): s is FencedSection => s?.heldBeforeWrite === true && s.writeSentAt !== undefined);
  believed.sort((a, b) => a.acquiredAt - clockOf(a).offset - (b.acquiredAt - clockOf(b).offset));
  for (let i = 1; i < believed.length; i++) {
    const [before, after] = [believed[i - 1], believed[i]];
    const overlapMs = before.writeSentAt! - clockOf(before).offset - (after.acquiredAt - clockOf(after).offset);
    const unknownMs = clockOf(before).uncertainty + clockOf(after).uncertainty;
    expect({ before: before.token, after: after.token, overlapMs: overlapMs > unknownMs ? overlapMs : 0 }).toEqual({ before: before.token, after: after.token, overlapMs: 0 });
  }
  report.writesAfterLoss = sections.filter(s => s.written === true && !s.heldBeforeWrite).length;

  // nothing of ours left in etcd once the workers are gone
  await Promise.all(run.workers.map(w => w.stop()));
  await register.clear();
  await expectEtcdClean(run.admin, run.prefix, 10_000);
  await run.expectLocksClean?.();

  const failures = Object.entries(report.failures).map(([code, n]) => `${n} ${code} ("${firstMessage[code]}")`).join(', ') || 'none';
  console.info(
    `[safety] ${run.name}: ${run.workers.length} processes, ${report.holds} holds, ${report.acceptedWrites} accepted writes (count exact), ` +
      `${report.rejectedStale} stale writes rejected by the fence${report.writesAfterLoss ? ` (${report.writesAfterLoss} accepted: sent after a reported loss, before any newer holder entered)` : ''}, acquire failures: ${failures}${report.killed ? `, ${report.killed} worker(s) killed` : ''}; ` +
      `process clocks differed by up to ${Math.max(...[...clocks.values()].map(c => Math.abs(c.offset))).toFixed(2)} ms (corrected)`,
  );
  return report;
}
