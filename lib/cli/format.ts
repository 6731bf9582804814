import type { LockHolderInfo, LockInfo, LockOwnerInfo } from '../interfaces/lock-info.interface.js';

/** JSON with bigint tokens as strings: what `--json` prints. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

/** Columns padded to their widest cell, a header first. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)));
  return [header, ...rows].map(row => row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** "3.2 s", "4 min", "2.1 h": how long ago `since` was. */
export function age(since: Date, now = Date.now()): string {
  const s = Math.max(0, (now - since.getTime()) / 1000);
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** `list`: one row per held lock. */
export function formatList(locks: LockInfo[]): string {
  if (locks.length === 0) return 'No lock is held.';
  const rows = locks.map(l => [
    l.key,
    l.holders.length > 1 ? `${l.holder!.owner} +${l.holders.length - 1}` : l.holder!.owner,
    String(l.holder!.pid),
    l.holder!.host,
    l.holder!.token.toString(),
    age(l.holder!.acquiredAt),
    `${l.holder!.ttlRemaining} s`,
    String(l.waiters.length + l.unfairWaiters.length),
  ]);
  return table(['LOCK', 'HOLDER', 'PID', 'HOST', 'TOKEN', 'HELD', 'TTL', 'WAITING'], rows);
}

/** `info`: holders, then waiters in queue order. */
export function formatInfo(key: string, info: LockInfo | null): string {
  if (!info) return `Lock "${key}" is free: nobody holds or waits for it.`;
  const row = (what: string, o: LockOwnerInfo | LockHolderInfo) => [
    what,
    o.owner,
    String(o.pid),
    o.host,
    o.token.toString(),
    o.mode,
    'acquiredAt' in o ? `held ${age(o.acquiredAt)}, TTL ${o.ttlRemaining} s` : `waiting ${age(o.queuedAt)}`,
  ];
  const rows = [
    ...info.holders.map(h => row('holder', h)),
    ...info.waiters.map((w, i) => row(`waiter ${i + 1}`, w)),
    ...info.unfairWaiters.map(w => row('unfair waiter', w)),
  ];
  const title = `Lock "${info.key}"${info.limit ? ` (semaphore, limit ${info.limit})` : ''}: ${info.holders.length} holding, ${info.waiters.length + info.unfairWaiters.length} waiting`;
  return `${title}\n${table(['', 'OWNER', 'PID', 'HOST', 'TOKEN', 'MODE', 'STATE'], rows)}`;
}
