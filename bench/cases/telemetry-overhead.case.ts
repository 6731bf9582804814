import type { BenchCase, SubjectResult } from '../bench.types.js';
import { BenchChild } from '../support/child.js';
import { latencyStats } from '../stats.js';

/**
 * Case 11: what OpenTelemetry costs. Case 1's loop (an uncontended acquire + release, one key,
 * sequential) in two worker processes on the same etcd: one with `@opentelemetry/api` installed
 * and no SDK (the library records into the API's no-ops), one with the SDK registered (metrics
 * aggregated, spans batched and dropped). A process of its own for each, because the API's
 * tracer proxies switch every tracer of a process to the SDK once it is registered. Rounds
 * alternate so that drift in the machine's speed hits both alike.
 */
export const telemetryOverhead: BenchCase = async ({ etcd, quick, progress }) => {
  const cycles = quick ? 30 : 1500;
  const rounds = quick ? 1 : 4;
  const [plain, contextOnly, traced] = await Promise.all([
    BenchChild.start(etcd.endpoints),
    BenchChild.start(etcd.endpoints, { openTelemetry: 'context' }),
    BenchChild.start(etcd.endpoints, { openTelemetry: 'sdk' }),
  ]);
  const subjects: [string, BenchChild][] = [
    ['no SDK registered', plain],
    ['context manager only', contextOnly],
    ['OpenTelemetry SDK registered', traced],
  ];
  try {
    const samples = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const [name, child] of round % 2 ? subjects : [...subjects].reverse()) {
        progress(`case 11, round ${round}/${rounds}: ${name}`);
        const key = `bench/otel/${subjects.findIndex(([, c]) => c === child)}`;
        samples.get(name)!.push(...(await child.request<number[]>({ op: 'cycles', key, cycles, warmUp: Math.min(50, cycles / 10) })));
      }
    }
    const out: SubjectResult[] = subjects.map(([name]) => {
      const stats = latencyStats(samples.get(name)!);
      return { subject: name, ...stats, perSecond: 1000 / stats.mean };
    });
    const [without, context, withSdk] = out;
    const ratio = withSdk.mean! / without.mean!;
    const ours = withSdk.mean! / context.mean!;
    return {
      id: '11',
      title: 'OpenTelemetry overhead: case 1 without and with the SDK registered',
      subjects: out,
      targets: [{ target: 'time per cycle with the SDK <= 1.05 x without', measured: `${ratio.toFixed(3)} x (mean ${withSdk.mean!.toFixed(3)} / ${without.mean!.toFixed(3)} ms)`, met: ratio <= 1.05 }],
      notes: [
        `Of that, the context manager alone (AsyncLocalStorage, which any traced app registers) costs ${(context.mean! / without.mean!).toFixed(3)} x; the library's metrics and spans on top of it ${ours.toFixed(3)} x.`,
      ],
    };
  } finally {
    await Promise.all([plain.stop(), contextOnly.stop(), traced.stop()]);
  }
};
