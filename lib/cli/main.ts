#!/usr/bin/env node
// The operator CLI: `nestjs-etcd-lock list | info <key> | unlock <key> | watch [prefix] | board`, against the etcd the
// apps use (connection flags mirror etcdctl's, and so do their environment variables), or their Redis (--redis).
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import type { IOptions } from 'etcd3';
import { createEtcdClient } from '../backends/etcd/etcd-client.js';
import { LockError } from '../common/lock.errors.js';
import type { ConnectionSettings } from '../common/lock.messages.js';
import { resolveLockOptions } from '../engine/lock-options.js';
import { LockService } from '../engine/lock.service.js';
import { formatEvent, formatInfo, formatList, formatPrefixesInUse, toJson } from './format.js';
import { findPrefixesInUse } from './prefixes.js';
import { serveBoard } from './board-server.js';
import { BoardEndpoints } from '../board/board-endpoints.js';
import { LockBoard } from '../board/lock-board.js';

const USAGE = `Usage: nestjs-etcd-lock <command> [options]

Commands:
  list [prefix]     held locks (whose name starts with prefix), with holder and waiters
  info <key>        who holds <key>, and who waits for it, in order
  unlock <key>      force-unlock <key>: removes its current holder's key only (asks first)
  watch [prefix]    print locks (whose name starts with prefix) as they are acquired, released,
                    expire (the holder's lease ran out) or are force-unlocked, until Ctrl-C
  board             serve the live lock board (locks, holders, waiters, timeline) on
                    http://127.0.0.1:<port>; open the link it prints, until Ctrl-C

Options (environment variable in brackets):
  --endpoints <urls>   comma-separated etcd endpoints [ETCDCTL_ENDPOINTS] (default 127.0.0.1:2379)
  --redis <url>        the apps keep their locks in this Redis instead of etcd [NESTJS_ETCD_LOCK_REDIS]
  --prefix <prefix>    the apps' lock prefix [NESTJS_ETCD_LOCK_PREFIX] (default nestjs-etcd-lock/)
  --user <name:pass>   etcd user and password [ETCDCTL_USER]
  --cacert <file>      CA bundle to verify etcd's certificate [ETCDCTL_CACERT]
  --cert <file>        client certificate, for mTLS [ETCDCTL_CERT]
  --key <file>         client private key, for mTLS [ETCDCTL_KEY]
  --json               print JSON instead of a table (watch: one JSON object per line)
  --yes                unlock without asking
  --token <n>          unlock: only the holder with this fencing token, if it still holds
  --port <n>           board: the port to serve on (default 7300; 0: any free port)
  --host <addr>        board: the address to bind (default 127.0.0.1: this machine only)
  --allow-force-unlock board: let the page force-unlock (read-only otherwise)
  --help

Exit codes: 0 done, 1 failed (etcd or Redis unreachable, refused, not confirmed), 2 bad usage.`;

/** What the CLI's messages tell an operator to check: its flags, not the library's options. */
const CLI_SETTINGS: ConnectionSettings = { hosts: '--endpoints', tls: '--cacert, --cert and --key' };

class UsageError extends Error {}

function connection(values: Record<string, string | boolean | undefined>): { etcd: IOptions; redis?: string; prefix?: string } {
  const env = process.env;
  const text = (name: string, variable: string) => (values[name] as string | undefined) ?? (env[variable] || undefined); // an empty variable is unset
  const hosts = (text('endpoints', 'ETCDCTL_ENDPOINTS') ?? '127.0.0.1:2379').split(',').map(h => h.trim()).filter(Boolean);
  const etcd: IOptions = { hosts };
  const user = text('user', 'ETCDCTL_USER');
  if (user) {
    const colon = user.indexOf(':');
    if (colon < 1) throw new UsageError('--user expects name:password');
    etcd.auth = { username: user.slice(0, colon), password: user.slice(colon + 1) };
  }
  const [ca, cert, key] = [text('cacert', 'ETCDCTL_CACERT'), text('cert', 'ETCDCTL_CERT'), text('key', 'ETCDCTL_KEY')];
  if (ca || cert || key) {
    if (!cert !== !key) throw new UsageError('--cert and --key go together');
    etcd.credentials = { rootCertificate: readFileSync(ca ?? '/etc/ssl/certs/ca-certificates.crt'), ...(cert && { certChain: readFileSync(cert), privateKey: readFileSync(key!) }) };
  }
  return { etcd, redis: text('redis', 'NESTJS_ETCD_LOCK_REDIS'), prefix: text('prefix', 'NESTJS_ETCD_LOCK_PREFIX') };
}

/**
 * Tells the operator, on stderr, which other prefixes are in use when `searched` showed
 * nothing: an app with `prefix: 'shop/'` is not reported as holding nothing. Best effort.
 */
async function hintOtherPrefixes(etcd: IOptions, searched: string, key?: string, onlyIfUnused = false): Promise<void> {
  const client = createEtcdClient(etcd);
  try {
    const found = await findPrefixesInUse(client);
    if (onlyIfUnused && found.prefixes.some(p => p.prefix === searched)) return;
    const hint = formatPrefixesInUse(searched, found, key);
    if (hint) console.error(hint);
  } catch {
    // the answer was printed already; the hint is extra
  } finally {
    client.close();
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await Promise.race([rl.question(question), new Promise<string>(resolve => rl.once('close', () => resolve('')))]);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      endpoints: { type: 'string' },
      redis: { type: 'string' },
      prefix: { type: 'string' },
      user: { type: 'string' },
      cacert: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      json: { type: 'boolean' },
      yes: { type: 'boolean' },
      token: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'allow-force-unlock': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  const [command, arg, ...extra] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!command || !['list', 'info', 'unlock', 'watch', 'board'].includes(command)) throw new UsageError(command ? `unknown command "${command}"` : 'a command is needed');
  if (['info', 'unlock'].includes(command) && !arg) throw new UsageError(`${command} needs a lock name`);
  if (extra.length > 0 || (command === 'board' && arg)) throw new UsageError(`unexpected ${[...(command === 'board' ? [arg] : []), ...extra].join(' ')}`);
  if (values.token !== undefined && (command !== 'unlock' || !/^\d+$/.test(values.token))) throw new UsageError(command !== 'unlock' ? '--token goes with unlock' : `--token expects a fencing token (a number), got ${values.token}`);
  const token = values.token === undefined ? undefined : BigInt(values.token);
  const port = values.port === undefined ? 7300 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port expects a port number, got ${values.port}`);
  const { etcd, redis, prefix } = connection(values);
  const watch = command === 'watch' ? { prefix: arg ?? '' } : undefined;
  // loaded only when asked for: the CLI on etcd needs no ioredis
  const where = redis ? { backend: new (await import('../backends/redis/index.js')).RedisBackend({ url: redis }) } : { etcd };
  const locks = new LockService({ ...where, prefix, ownerId: `${userInfo().username}@${hostname()} (nestjs-etcd-lock CLI)`, watch }, CLI_SETTINGS);
  // on etcd, an empty answer also names the prefixes in use there (from their lease markers)
  const hint = (key?: string, onlyIfUnused = false) => (redis ? Promise.resolve() : hintOtherPrefixes(etcd, searched, key, onlyIfUnused));
  const searched = resolveLockOptions({ prefix }).prefix;
  try {
    if (command === 'board') {
      await serveUntilStopped(locks, { host: values.host ?? '127.0.0.1', port, forceUnlock: values['allow-force-unlock'] ?? false });
      return 0;
    }
    if (command === 'watch') {
      await locks.watching();
      console.error(`Watching locks under ${searched}${arg ? ` whose name starts with "${arg}"` : ''}; Ctrl-C to stop.`);
      // this service takes no lock: every event is another process's
      locks.events$.subscribe(event => console.log(values.json ? toJson(event, 0) : formatEvent(event)));
      const stopped = new Promise(resolve => ['SIGINT', 'SIGTERM'].forEach(signal => process.once(signal, resolve)));
      await hint(undefined, true);
      await stopped;
      return 0;
    }
    if (command === 'list') {
      const listed = await locks.listLocks(arg ?? '');
      console.log(values.json ? toJson(listed) : formatList(listed, searched, arg));
      if (listed.length === 0) await hint();
      return 0;
    }
    const info = await locks.getLockInfo(arg);
    if (command === 'info') {
      console.log(values.json ? toJson(info) : formatInfo(arg, info, searched));
      if (!info) await hint(arg);
      return 0;
    }
    const holders = info?.holders.filter(h => token === undefined || h.token === token) ?? [];
    if (holders.length === 0) {
      if (values.json) console.log(toJson([]));
      else console.error(`Lock "${arg}" is not held${token === undefined ? '' : ` with token ${token}`} under ${searched}: nothing to unlock.`);
      return 0;
    }
    const who = holders.map(h => `${h.owner} (pid ${h.pid} on ${h.host}, token ${h.token})`).join(', ');
    if (!values.yes && !(await confirm(`Force-unlock "${arg}", held by ${who}? Its holder loses it; the next waiter gets it. [y/N] `))) {
      console.error('Not unlocked (not confirmed; pass --yes to skip the question).');
      return 1;
    }
    const removed = await locks.forceUnlock(arg, { token });
    if (values.json) console.log(toJson(removed));
    else console.log(removed.length > 0 ? `Unlocked "${arg}": removed ${removed.map(h => `${h.owner} (token ${h.token})`).join(', ')}.` : `Lock "${arg}" was released meanwhile: nothing removed.`);
    return 0;
  } finally {
    await locks.close();
  }
}

/** The board on this machine until Ctrl-C: its link on stdout, force-unlocks logged on stderr. */
async function serveUntilStopped(locks: LockService, settings: { host: string; port: number; forceUnlock: boolean }): Promise<void> {
  const board = new LockBoard(locks, { windowMinutes: 60 });
  const endpoints = new BoardEndpoints(board, { forceUnlock: settings.forceUnlock, enableHint: 'Start the board with --allow-force-unlock to enable it.', log: message => console.error(message) });
  const actor = `${userInfo().username}@${hostname()} (nestjs-etcd-lock board)`;
  let server: Awaited<ReturnType<typeof serveBoard>> | undefined;
  try {
    await board.start();
    server = await serveBoard(endpoints, { host: settings.host, port: settings.port, actor }).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'EADDRINUSE' ? new Error(`port ${settings.port} is in use on ${settings.host}: pass another with --port (0: any free port)`) : err;
    });
    const { store, prefix } = locks.location;
    if (!LOOPBACK_HOSTS.includes(settings.host)) console.error(`Warning: the board is bound to ${settings.host}: anyone who can reach it and has the link can see every lock${settings.forceUnlock ? ' and force-unlock them' : ''}.`);
    console.error(`Lock board of ${prefix} at ${store}${settings.forceUnlock ? ' (force-unlock enabled)' : ' (read-only)'}; Ctrl-C to stop. Open:`);
    console.log(server.url);
    await new Promise(resolve => ['SIGINT', 'SIGTERM'].forEach(signal => process.once(signal, resolve)));
  } finally {
    await server?.close();
    board.stop();
  }
}

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '::1'];

run(process.argv.slice(2)).then(
  code => (process.exitCode = code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`nestjs-etcd-lock: ${(err as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      console.error(`nestjs-etcd-lock: ${err instanceof LockError ? err.message : err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  },
);
