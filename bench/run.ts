// `npm run bench` (`-- --quick` for a short run): every case against ONE etcd and ONE Redis, in one run,
// with the baselines measured alongside. Prints a table and writes bench/results.json.
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startEtcd } from '../harness/etcd.js';
import { startRedis } from '../harness/redis.js';
import { redisUncontended } from './redis/redis-uncontended.case.js';
import { redisHandoff } from './redis/redis-handoff.case.js';
import { redisHerdFree } from './redis/redis-herd-free.case.js';
import type { BenchCase, CaseResult } from './bench.types.js';
import { uncontendedCycle } from './cases/uncontended-cycle.case.js';
import { throughput } from './cases/throughput.case.js';
import { contendedHandoff } from './cases/contended-handoff.case.js';
import { herdFree } from './cases/herd-free.case.js';
import { scale } from './cases/scale.case.js';
import { decoratorOverhead } from './cases/decorator-overhead.case.js';
import { hotKey } from './cases/hot-key.case.js';
import { telemetryOverhead } from './cases/telemetry-overhead.case.js';
import { boardLoad } from './cases/board-load.case.js';

export const CASES: Record<string, BenchCase> = {
  '1': uncontendedCycle,
  '2': throughput,
  '3': contendedHandoff,
  '4': herdFree,
  '5': scale,
  '6': decoratorOverhead,
  '7': hotKey,
  '8': redisUncontended,
  '9': redisHandoff,
  '10': redisHerdFree,
  '11': telemetryOverhead,
  '12': boardLoad,
};

const fmt = (x: number | undefined, digits = 2) => (x === undefined || Number.isNaN(x) ? '' : x.toFixed(digits));

export function formatTable(results: CaseResult[]): string {
  const lines: string[] = [];
  for (const result of results) {
    lines.push('', `Case ${result.id}: ${result.title}`);
    lines.push('  subject                          ops/s    p50 ms   p99 ms   unary/op  grants/op  events/op');
    for (const s of result.subjects) {
      lines.push(
        `  ${s.subject.padEnd(30)} ${fmt(s.perSecond, 0).padStart(8)} ${fmt(s.p50, 3).padStart(8)} ${fmt(s.p99, 3).padStart(8)} ` +
          `${fmt(s.rpc?.unary).padStart(9)} ${fmt(s.rpc?.leaseGrant).padStart(10)} ${fmt(s.rpc?.watchEvents).padStart(10)}${s.note ? `  ${s.note}` : ''}`,
      );
    }
    for (const t of result.targets) lines.push(`  ${t.met ? 'MET   ' : 'MISSED'} ${t.target}: ${t.measured}`);
    for (const note of result.notes ?? []) lines.push(`  note: ${note}`);
  }
  return lines.join('\n');
}

export async function runBench(options: { quick: boolean; only?: string[]; log?: (line: string) => void }): Promise<CaseResult[]> {
  const log = options.log ?? (line => process.stderr.write(`${line}\n`));
  const [etcd, redis] = await Promise.all([startEtcd({ log }), startRedis()]);
  const results: CaseResult[] = [];
  try {
    for (const [id, run] of Object.entries(CASES)) {
      if (options.only && !options.only.includes(id)) continue;
      results.push(await run({ etcd, redis, quick: options.quick, progress: message => log(`… ${message}`) }));
    }
  } finally {
    await Promise.all([etcd.stop(), redis.stop()]);
  }
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const only = process.argv.find(a => a.startsWith('--case='))?.slice('--case='.length).split(',');
  const results = await runBench({ quick, only });
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  console.log(`nestjs-etcd-lock bench (${quick ? 'quick' : 'full'}) on ${machine}`);
  console.log(formatTable(results));
  const out = fileURLToPath(new URL('./results.json', import.meta.url));
  writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), machine, quick, results }, null, 2));
  console.log(`\nwritten ${out}`);
}
