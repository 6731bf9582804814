// `npm run demo` must not rot: a short run (--quick, few orders, one SIGKILL) through the same
// entry point (scripts/demo.mjs: builds the library and the sample app, then runs the demo)
// must end in PASS with exit code 0 and every invariant printed as ok, with the locks in etcd
// and, with --redis, in a Redis.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('npm run demo', () => {
  it.each([
    ['etcd', []],
    ['Redis', ['--redis']],
  ])('--quick with the locks in %s ends in PASS, exit code 0, with the kill and the invariants reported', async (where, flags) => {
    const child = spawn(process.execPath, ['scripts/demo.mjs', '--quick', '--orders', '20', '--clients', '4', ...flags], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '' }, // not Jest's --experimental-vm-modules
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', chunk => (output += chunk));
    child.stderr.on('data', chunk => (output += chunk));
    const code = await new Promise<number | null>(resolve => child.on('exit', resolve));

    if (code !== 0) console.log(output);
    expect(code).toBe(0);
    expect(output).toMatch(/verdict: PASS/);
    expect(output).toMatch(/SIGKILL r2/);
    expect(output).toContain(where === 'Redis' ? 'locks in Redis, data in etcd' : 'locks and data in etcd');
    for (const invariant of [
      'every order paid exactly once',
      'balances exact',
      'each job tick run once',
      'no stale fenced write accepted',
    ]) {
      expect(output).toMatch(new RegExp(`ok\\s+${invariant}`));
    }
    expect(output).toMatch(/20\/20 orders, 20 payment records/);
    // the surviving replicas' Terminus check, and wait times read back from their /metrics (counts printed with thousands separators)
    expect(output).toMatch(/\/health \(Terminus\)\s+r1 200, r3 200/);
    expect(output).toMatch(/lock wait, order:<<id>> \(\/metrics\)\s+p50 [\d.]+ ms\s+p99 [\d.]+ ms \(bucket estimates\); [\d,]+ of [1-9][\d,]* acquisitions queued/);
  }, 120_000);
});
