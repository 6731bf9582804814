import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { IOptions } from 'etcd3';
import type { LockBackend } from '../interfaces/lock-backend.interface.js';
import { hasControlCharacter } from '../common/lock-name.js';
import { EXCLUSIVE, SHARED, describeKind, type LockKind } from '../common/lock-kind.js';
import { LockConfigurationError } from '../common/lock.errors.js';
import { CLIENT_OPTION_OUTSIDE_ETCD, INVALID_OPTION, MODULE_EXTRA_IN_OPTIONS, UNKNOWN_OPTION } from '../common/lock.messages.js';
import { closestName } from '../util/closest-name.js';
import type { EtcdLockModuleOptions } from '../interfaces/etcd-lock-module-options.interface.js';
import type { LockLogger } from '../interfaces/lock-logger.interface.js';
import type { RetryOptions } from '../interfaces/acquire-options.interface.js';

/** Options with every default applied and every value checked. */
export interface ResolvedLockOptions {
  readonly etcd: IOptions;
  /** undefined: etcd, with `etcd` or the given client */
  readonly backend: LockBackend | undefined;
  readonly prefix: string;
  readonly ttl: number;
  readonly waitTimeout: number;
  readonly ownerId: string;
  readonly connectTimeout: number;
  /** Locks of other processes to report on events$: those whose name starts with `prefix`; undefined: none. */
  readonly watch: { readonly prefix: string } | undefined;
  /** undefined: log nothing */
  readonly logger: LockLogger | undefined;
}

export const DEFAULT_PREFIX = 'nestjs-etcd-lock/';
export const DEFAULT_TTL_SECONDS = 10;
export const DEFAULT_WAIT_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Applies defaults and rejects values that cannot work, naming the option and the fix. */
export function resolveLockOptions(options: EtcdLockModuleOptions = {}): ResolvedLockOptions {
  if (options === null || typeof options !== 'object') {
    throw new LockConfigurationError(INVALID_OPTION('options', 'expected an object such as { etcd: { hosts } }'));
  }
  if (options.client && options.etcd) {
    throw new LockConfigurationError(
      INVALID_OPTION('client', 'pass either an existing etcd3 client (client) or options to create one (etcd), not both'),
    );
  }
  if (options.backend !== undefined && (options.client || options.etcd)) {
    throw new LockConfigurationError(INVALID_OPTION('backend', 'pass a backend (backend) or etcd settings (etcd, client), not both'));
  }
  if (options.backend !== undefined && typeof (options.backend as Partial<LockBackend> | null)?.connect !== 'function') {
    throw new LockConfigurationError(INVALID_OPTION('backend', 'expected a LockBackend (an object with connect(settings)), such as new MemoryBackend()'));
  }
  refuseUnknownOptions(options);
  return {
    etcd: options.etcd ?? { hosts: '127.0.0.1:2379' },
    backend: options.backend,
    prefix: resolvePrefix(options.prefix),
    ttl: resolveTtl(fromString(options.ttl), options.ttl),
    waitTimeout: validateDuration('waitTimeout', fromString(options.waitTimeout ?? DEFAULT_WAIT_TIMEOUT_MS), true, options.waitTimeout),
    ownerId: resolveOwnerId(options.ownerId),
    connectTimeout: validateDuration('connectTimeout', fromString(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS), false, options.connectTimeout),
    watch: resolveWatch(options.watch),
    logger: resolveLogger(options.logger),
  };
}

/** Every option of the module and LockService; the type makes a new option fail to compile until it is listed here. */
const KNOWN_OPTIONS = Object.keys({
  etcd: true, client: true, backend: true, prefix: true, ttl: true, waitTimeout: true, ownerId: true, connectTimeout: true, conflictStatus: true, watch: true, logger: true,
} satisfies Record<keyof EtcdLockModuleOptions, true>);
// options that belong elsewhere: the etcd3 client's, and forRoot()'s own (Nest takes them out of forRoot's options, not out of a factory's)
const CLIENT_OPTIONS = ['hosts', 'auth', 'credentials', 'dialTimeout', 'grpcOptions', 'defaultCallOptions', 'faultHandling'];
const MODULE_EXTRAS = ['isGlobal', 'name'];

/** A misspelt option would otherwise be ignored, its default used instead without a word: refuse it, naming the one meant. */
function refuseUnknownOptions(options: object): void {
  for (const option of Object.keys(options)) {
    if (KNOWN_OPTIONS.includes(option)) continue;
    if (CLIENT_OPTIONS.includes(option)) throw new LockConfigurationError(CLIENT_OPTION_OUTSIDE_ETCD(option));
    if (MODULE_EXTRAS.includes(option)) throw new LockConfigurationError(MODULE_EXTRA_IN_OPTIONS(option));
    throw new LockConfigurationError(UNKNOWN_OPTION(option, closestName(option, KNOWN_OPTIONS), KNOWN_OPTIONS));
  }
}

/**
 * A whole number written as a string, as ConfigService and the environment give it ('10'),
 * as that number; anything else unchanged, for the check to refuse.
 */
export function fromString(value: unknown): unknown {
  return typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
}

/** A value as a message shows it: a string quoted, so that '10' and 10 read differently. */
export function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function resolveLogger(logger: unknown): LockLogger | undefined {
  if (logger === undefined || logger === false) return undefined;
  const methods = ['log', 'warn', 'error'] as const;
  if (typeof logger !== 'object' || logger === null || methods.some(m => typeof (logger as Record<string, unknown>)[m] !== 'function')) {
    throw new LockConfigurationError(INVALID_OPTION('logger', `expected false, or an object with log, warn and error methods such as Nest's Logger, got ${String(logger)}`));
  }
  return logger as LockLogger;
}

function resolveWatch(watch: unknown): { prefix: string } | undefined {
  if (watch === undefined || watch === false) return undefined;
  if (watch === true) return { prefix: '' };
  const prefix = (watch as { prefix?: unknown } | null)?.prefix ?? '';
  if (typeof watch !== 'object' || typeof prefix !== 'string' || hasControlCharacter(prefix)) {
    throw new LockConfigurationError(INVALID_OPTION('watch', `expected true, or { prefix } with a lock name prefix such as 'order:', got ${JSON.stringify(watch)}`));
  }
  return { prefix };
}

/** Checks a wait timeout in ms: a number ≥ 0, or Infinity to wait forever. */
export function validateWaitTimeout(value: unknown, option = 'waitTimeout'): number {
  return validateDuration(option, value, true);
}

/**
 * Checks a duration option in ms: a number ≥ 0 (and Infinity where that means "no limit").
 * `given` is the value as the user wrote it, for the message.
 */
export function validateDuration(option: string, value: unknown, allowInfinity: boolean, given = value): number {
  const ok = typeof value === 'number' && value >= 0 && (Number.isFinite(value) || (allowInfinity && value === Infinity));
  if (!ok) {
    const expected = allowInfinity ? 'milliseconds >= 0, or Infinity to wait forever' : 'milliseconds >= 0';
    throw new LockConfigurationError(INVALID_OPTION(option, `expected ${expected}, got ${shown(given)}`));
  }
  return value;
}

function resolveTtl(ttl: unknown = DEFAULT_TTL_SECONDS, given = ttl): number {
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1) {
    throw new LockConfigurationError(
      INVALID_OPTION('ttl', `expected whole seconds >= 1 (etcd leases count in seconds), got ${shown(given)}`),
    );
  }
  return ttl;
}

function resolvePrefix(prefix: unknown = DEFAULT_PREFIX): string {
  if (typeof prefix !== 'string' || prefix.length === 0 || hasControlCharacter(prefix)) {
    throw new LockConfigurationError(
      INVALID_OPTION('prefix', `expected a non-empty string without control characters, got ${JSON.stringify(prefix)}`),
    );
  }
  // "app" and "app2" would share keys: a separator keeps prefixes apart
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

function resolveOwnerId(ownerId: unknown): string {
  if (ownerId === undefined) return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  if (typeof ownerId !== 'string' || ownerId.length === 0 || ownerId.length > 256) {
    throw new LockConfigurationError(
      INVALID_OPTION('ownerId', `expected a string of 1 to 256 characters, got ${JSON.stringify(ownerId)}`),
    );
  }
  return ownerId;
}

const DEFAULT_RETRY = { initialMs: 50, maxMs: 1_000 };

/** Checks the `retry` option of an acquire; undefined means: do not retry. */
export function resolveRetry(retry: unknown, option = 'retry'): Required<RetryOptions> | undefined {
  if (retry === false) return undefined;
  if (retry === undefined) return DEFAULT_RETRY;
  if (typeof retry !== 'object' || retry === null) {
    throw new LockConfigurationError(INVALID_OPTION(option, `expected false or { initialMs, maxMs }, got ${String(retry)}`));
  }
  const { initialMs = DEFAULT_RETRY.initialMs, maxMs = DEFAULT_RETRY.maxMs } = retry as RetryOptions;
  for (const [name, value] of [['initialMs', initialMs], ['maxMs', maxMs]] as const) {
    if (!(typeof value === 'number' && Number.isFinite(value) && value >= 1)) {
      throw new LockConfigurationError(INVALID_OPTION(`${option}.${name}`, `expected milliseconds >= 1, got ${String(value)}`));
    }
  }
  return { initialMs, maxMs: Math.max(initialMs, maxMs) };
}

/** Checks `autoRenew` and `ttl` of an acquire; the TTL (s) of its own lease, or undefined if it has none. */
export function resolveOwnLeaseTtl(options: { autoRenew?: unknown; ttl?: unknown }, defaultTtl: number): number | undefined {
  if (options.autoRenew !== undefined && typeof options.autoRenew !== 'boolean') {
    throw new LockConfigurationError(INVALID_OPTION('autoRenew', `expected a boolean, got ${String(options.autoRenew)}`));
  }
  if (options.autoRenew !== false) {
    if (options.ttl !== undefined) {
      throw new LockConfigurationError(
        INVALID_OPTION('ttl', 'a per-lock ttl needs autoRenew: false (a hard-TTL lock); other locks live by the session, whose ttl is set on the module'),
      );
    }
    return undefined;
  }
  return options.ttl === undefined ? defaultTtl : resolveTtl(options.ttl);
}

/** The `lock.name` of metrics when an acquire names none: one series for all such locks, however many keys. */
export const DEFAULT_TELEMETRY_NAME = 'unnamed';
/** Longest `telemetryName`: a name template, not a key. */
const MAX_TELEMETRY_NAME_LENGTH = 200;

/** Checks an acquire's `telemetryName`; the default when it has none. */
export function resolveTelemetryName(name: unknown): string {
  if (name === undefined) return DEFAULT_TELEMETRY_NAME;
  if (typeof name !== 'string' || name === '' || name.length > MAX_TELEMETRY_NAME_LENGTH) {
    throw new LockConfigurationError(INVALID_OPTION('telemetryName', `expected a name template of 1 to ${MAX_TELEMETRY_NAME_LENGTH} characters, such as 'order:<<id>>', got ${shown(name)}`));
  }
  return name;
}

/** The largest semaphore limit: the place of a waiter is counted by reading up to limit + 1 keys. */
export const MAX_SEMAPHORE_LIMIT = 1000;

/** Checks `mode`, `limit` and `fair` of an acquire: the kind of queue key it puts, and whether it queues. */
export function resolveLockKind(options: { mode?: unknown; limit?: unknown; fair?: unknown }): { kind: LockKind; fair: boolean } {
  const { mode = 'exclusive', limit, fair = true } = options;
  if (mode !== 'exclusive' && mode !== 'shared') {
    throw new LockConfigurationError(INVALID_OPTION('mode', `expected 'exclusive' or 'shared', got ${JSON.stringify(mode)}`));
  }
  if (typeof fair !== 'boolean') throw new LockConfigurationError(INVALID_OPTION('fair', `expected a boolean, got ${String(fair)}`));
  let kind = mode === 'shared' ? SHARED : EXCLUSIVE;
  if (limit !== undefined) {
    if (!(typeof limit === 'number' && Number.isInteger(limit) && limit >= 1 && limit <= MAX_SEMAPHORE_LIMIT)) {
      throw new LockConfigurationError(INVALID_OPTION('limit', `expected a whole number from 1 to ${MAX_SEMAPHORE_LIMIT}, got ${String(limit)}`));
    }
    if (options.mode !== undefined) {
      throw new LockConfigurationError(INVALID_OPTION('limit', 'a semaphore (limit) has no mode: pass either limit or mode'));
    }
    if (limit > 1) kind = { mode: 'semaphore', limit }; // a semaphore of 1 is an exclusive lock, and queues with one
  }
  if (!fair && kind.mode !== 'exclusive') {
    throw new LockConfigurationError(INVALID_OPTION('fair', `fair: false is for exclusive locks only, not ${describeKind(kind)}`));
  }
  return { kind, fair };
}
