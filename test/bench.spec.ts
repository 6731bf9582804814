// `npm run bench -- --quick` inside the test suite, so the bench cannot rot. Asserts that it
// runs and that its RPC and command counts per operation are as stated: counts, never times.
import { describe, expect, it } from '@jest/globals';
import type { CaseResult } from '../bench/bench.types.js';
import { runBench } from '../bench/run.js';

describe('bench (quick)', () => {
  it('runs every case with finite figures and the stated RPC counts', async () => {
    const results = await runBench({ quick: true, log: () => undefined });
    const byId = (id: string): CaseResult => results.find(r => r.id === id)!;
    expect(results.map(r => r.id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']);

    for (const result of results) {
      expect(result.subjects.length).toBeGreaterThan(0);
      for (const s of result.subjects) {
        const numbers = [s.perSecond, s.p50, s.p99, s.mean, ...Object.values(s.rpc ?? {})].filter(x => x !== undefined);
        expect(numbers.length).toBeGreaterThan(0);
        for (const x of numbers) expect({ subject: s.subject, x, finite: Number.isFinite(x) }).toEqual({ subject: s.subject, x, finite: true });
      }
    }

    // case 1: an uncontended cycle is 2 unary RPCs and no lease grant
    const ours = byId('1').subjects.find(s => s.subject === 'nestjs-etcd-lock')!;
    expect(ours.rpc?.unary).toBe(2);
    expect(ours.rpc?.leaseGrant).toBe(0);

    // case 3: a handoff among 10 contenders wakes one of them: one event and a few Txn
    // (release, the successor's read, the releaser's enqueue, sometimes one more read), not one per waiter
    const handoff = byId('3').subjects.find(s => s.subject === 'nestjs-etcd-lock handoff')!;
    expect(handoff.rpc!.watchEvents).toBeLessThanOrEqual(2);
    expect(handoff.rpc!.txn).toBeLessThanOrEqual(4.5);

    // case 4: herd-free: at most 2 watch events per handoff, whatever the queue length
    const herd = byId('4').subjects;
    expect(herd.length).toBe(2);
    for (const s of herd) expect({ subject: s.subject, events: s.rpc!.watchEvents! <= 2 }).toEqual({ subject: s.subject, events: true });

    // case 7: unfair waiters wait in line in their waiting room: a release wakes one, not all 7 others
    const unfair = byId('7').subjects.find(s => s.subject.startsWith('unfair') && s.rpc)!;
    expect(unfair.rpc!.watchEvents).toBeLessThanOrEqual(2);

    // case 8: on Redis, an uncontended cycle is 2 script calls and nothing else (INFO commandstats)
    expect(byId('8').targets[0]).toMatchObject({ target: expect.stringContaining('2 round trips'), met: true });

    // case 10: on Redis, the PUBLISHes per release do not grow with the number of waiters
    expect(byId('10').targets[0]).toMatchObject({ target: expect.stringContaining('constant PUBLISHes'), met: true });

    // case 11: the same loop without and with OpenTelemetry, in three processes
    expect(byId('11').subjects.map(s => s.subject)).toEqual(['no SDK registered', 'context manager only', 'OpenTelemetry SDK registered']);

    // case 12: the lock board reads nothing while no page is open, and two pages share one reading a second
    const [noPage, onePage, twoPages] = byId('12').subjects;
    expect(noPage.rpc!.unary).toBe(0);
    expect(onePage.rpc!.range).toBeGreaterThan(0);
    expect(twoPages.rpc!.range).toBeLessThanOrEqual(1.5);

    // case 5: every held lock on one lease
    const lease = byId('5').targets.find(t => t.target.includes('1 lease'))!;
    expect(lease.measured).toMatch(/^1 /);
    expect(lease.met).toBe(true);
  }, 240_000); // every case, one after the other: 90 s in a full run on a 2-core machine
});
