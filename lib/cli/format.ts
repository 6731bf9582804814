import type { LockEvent } from '../interfaces/lock-event.interface.js';
import type { LockHolderInfo, LockInfo, LockOwnerInfo } from '../interfaces/lock-info.interface.js';
import type { PrefixInUse } from './prefixes.js';

/** JSON with bigint tokens as strings: what `--json` prints (`indent` 0: one line). */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), indent);
}

/** Columns padded to their widest cell, a header first. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)));
  return [header, ...rows].map(row => row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** "3.2 s", "4 min", "2.1 h": how long ago `since` was; "?" when unknown (another etcd client's key: the epoch). */
export function age(since: Date, now = Date.now()): string {
  if (since.getTime() === 0) return '?';
  const s = Math.max(0, (now - since.getTime()) / 1000);
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** `list`: one row per held lock. */
export function formatList(locks: LockInfo[], prefix: string, namePrefix = ''): string {
  if (locks.length === 0) return `No lock${namePrefix ? ` whose name starts with "${namePrefix}"` : ''} is held under ${prefix}.`;
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
export function formatInfo(key: string, info: LockInfo | null, prefix: string): string {
  if (!info) return `Lock "${key}" is free under ${prefix}: nobody holds or waits for it.`;
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

/** `watch`: one line per event, e.g. `2026-12-02T03:04:05.678Z  expired   order:7  app@host:42  token 1234  session-expired  held 3.2 s`. */
export function formatEvent(event: LockEvent): string {
  const parts = [event.at.toISOString(), event.type.padEnd(8), event.key, event.owner, `token ${event.token}`];
  if (event.reason) parts.push(event.reason);
  if (event.heldMs !== undefined) parts.push(`held ${(event.heldMs / 1000).toFixed(1)} s`);
  return parts.join('  ');
}

/**
 * Where else to look, when nothing was found under `searched`: the other prefixes in use (for
 * `info`, with whether `key` is held there), or that no session of this library uses any.
 * Nothing when `searched` is in use and no other prefix is.
 */
export function formatPrefixesInUse(searched: string, found: { prefixes: PrefixInUse[]; complete: boolean }, key?: string): string | undefined {
  const others = found.prefixes.filter(p => p.prefix !== searched);
  const where = found.complete ? 'this etcd' : 'the first 100000 keys of this etcd';
  if (found.prefixes.length === 0) return `No lock prefix is in use in ${where}: no process of nestjs-etcd-lock has a session there.`;
  if (others.length === 0) return undefined;
  const held = (p: PrefixInUse) =>
    key !== undefined
      ? `"${key}" ${p.held.includes(key) ? 'held' : 'not held'} there`
      : `${p.held.length === 0 ? 'none' : p.held.length} held`;
  return `Lock prefixes in use in ${where}: ${others.map(p => `${p.prefix} (${held(p)})`).join(', ')}. Pass --prefix to look there.`;
}
