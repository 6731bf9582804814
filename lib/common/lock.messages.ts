// Every user-facing message in one place; each says what happened and what to do.

export const LOCK_TIMEOUT = (key: string, waitedMs: number) =>
  `Timed out after ${waitedMs} ms waiting for lock "${key}". Raise waitTimeout, or use tryAcquire() to fail at once.`;

export const LOCK_ALREADY_HELD = (key: string) =>
  `Lock "${key}" is already held by this async context and reentrant is false. ` +
  `Pass { reentrant: true }, or release the outer lock first.`;

export const LOCK_UPGRADE = (key: string) =>
  `Lock "${key}" is held shared by this async context, which cannot upgrade it to exclusive (it would wait for itself). ` +
  `Release the shared lock first, or take it exclusive from the start.`;

export const LOCK_KIND_CONFLICT = (key: string, wanted: string, found: string) =>
  `Lock "${key}" is in use as ${found}, and this call asked for ${wanted}. Every caller of one lock name must ` +
  `ask for the same kind (readers and writers may mix; a semaphore only with its own limit): use another name for another limit.`;

export const LOCK_BUSY = (key: string) =>
  `Lock "${key}" is held by another holder and this call does not wait (onContention 'fail'). ` +
  `Retry later, or use onContention 'wait' with a waitTimeout.`;

export const LOCK_RELEASED = (key: string) =>
  `Lock "${key}" was released. Acquire it again before touching what it protects.`;

export const LOCK_LOST = (key: string, why: string) =>
  `Lock "${key}" was lost: ${why}. Another holder may now be inside; stop, and do not write without a fencing token check.`;

export const LOCK_ABORTED = (key: string) => `Acquiring lock "${key}" was aborted by its signal.`;

export const SERVICE_CLOSED = () =>
  `This LockService was closed. Create a new one (or do not call close() while locks are still needed).`;

/** Where a user sets the connection to etcd, as messages name it: the options, or the CLI's flags. */
export interface ConnectionSettings {
  /** where the endpoints are set */
  readonly hosts: string;
  /** where TLS is set */
  readonly tls: string;
}

export const OPTION_SETTINGS: ConnectionSettings = { hosts: 'the etcd.hosts option', tls: 'etcd.credentials' };

export const ETCD_UNAVAILABLE = (hosts: string, cause: string, settings = OPTION_SETTINGS) =>
  `etcd did not answer at ${hosts}: ${cause}. Check that etcd is running and reachable there, and ${settings.hosts}.`;

export const ETCD_NOT_TLS = (hosts: string, settings = OPTION_SETTINGS) =>
  `etcd at ${hosts} closed the connection during the TLS handshake, as a server of plain HTTP does. Use http:// in ${settings.hosts} ` +
  `(without ${settings.tls}), or start etcd with TLS (--cert-file, --key-file).`;

export const INVALID_KEY = (why: string) => `Invalid lock key: ${why}.`;

export const INVALID_OPTION = (option: string, why: string) => `Invalid option "${option}": ${why}.`;

export const UNKNOWN_OPTION = (option: string, closest: string | undefined, known: readonly string[]) =>
  `Unknown option "${option}": ${closest ? `did you mean "${closest}"?` : `the options are ${known.join(', ')}.`} Fix or remove it.`;

export const CLIENT_OPTION_OUTSIDE_ETCD = (option: string) =>
  `Unknown option "${option}": it is an option of the etcd3 client. Pass it inside etcd: { etcd: { ${option}: ... } }.`;

export const MODULE_EXTRA_IN_OPTIONS = (option: string) =>
  `Unknown option "${option}": it is an option of EtcdLockModule.forRoot() and forRootAsync() themselves. ` +
  `With forRootAsync, pass it beside useFactory, not in the options the factory returns.`;

export const TTL_BELOW_MINIMUM = (ttl: number, minimum: number) =>
  `Invalid option "ttl": ${ttl} s is below this etcd cluster's minimum lease TTL of ${minimum} s ` +
  `(1.5 x its election timeout); etcd would silently extend it. Set ttl >= ${minimum}.`;

export const ETCD_AUTH_FAILED = (hosts: string, cause: string) =>
  `etcd at ${hosts} rejected the username or password (${cause}). Check etcd.auth { username, password } ` +
  `(the same as etcdctl --user name:password).`;

export const ETCD_AUTH_MISSING = (hosts: string) =>
  `etcd at ${hosts} has authentication enabled and no credentials were given. Set etcd.auth { username, password }.`;

export const ETCD_PERMISSION_DENIED = (hosts: string, prefix: string) =>
  `etcd at ${hosts} denied this user access to the lock prefix "${prefix}". Grant its role read and write on it: ` +
  `etcdctl role grant-permission <role> --prefix=true readwrite '${prefix}'.`;

export const ETCD_SERVER_NOT_TRUSTED = (hosts: string, cause: string) =>
  `The TLS certificate of etcd at ${hosts} is not trusted (${cause}). Set etcd.credentials.rootCertificate ` +
  `to the CA certificate that signed it (etcdctl --cacert).`;

export const ETCD_CLIENT_CERT_REFUSED = (hosts: string, cause: string) =>
  `etcd at ${hosts} refused our TLS client certificate (${cause}). Set etcd.credentials.certChain and privateKey ` +
  `to a certificate signed by a CA that etcd trusts (its --trusted-ca-file; etcdctl --cert/--key).`;

// What a LockService logs (see LockServiceLogger).

export const LOG_STARTED = (where: string, prefix: string, ttl: number, leaseHex: string) =>
  `Locks on ${where} under prefix "${prefix}": session lease ${leaseHex}, TTL ${ttl} s.`;

export const LOG_SESSION_REPLACED = (leaseHex: string, ttl: number) =>
  `New session lease ${leaseHex} (TTL ${ttl} s) in place of the one that expired.`;

export const LOG_SESSION_EXPIRED = (where: string, leaseHex: string, ttl: number, locks: number) =>
  `Session lease ${leaseHex} expired: no keepalive was acknowledged within its TTL of ${ttl} s (${where} unreachable, ` +
  `or this process stalled), or it reported the session gone. ${locks} lock(s) lost with it; the next acquire opens a new session.`;

export const LOG_LOCK_LOST = (lostMessage: string, reason: string, token: bigint | undefined, heldMs: number | undefined) =>
  `${lostMessage} (reason '${reason}'${token === undefined ? '' : `, token ${token}`}${heldMs === undefined ? '' : `, held ${(heldMs / 1000).toFixed(1)} s`})`;

export const LOG_CLOSED = (released: number, leaseHex: string | undefined) =>
  leaseHex === undefined ? 'Closed (no session was open).' : `Closed: ${released} held lock(s) released, session lease ${leaseHex} revoked.`;

export const LOG_CLOSED_UNCONFIRMED = (where: string, leaseHex: string, ttl: number) =>
  `Closed, but ${where} did not confirm the end of session lease ${leaseHex}: its entries (and any lock whose release ` +
  `was not confirmed) block others until its TTL of ${ttl} s runs out.`;
