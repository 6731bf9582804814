/** Metadata key of @WithLock (on the method). */
export const WITH_LOCK_METADATA = 'etcd-lock:with_lock';
/** Metadata key of @OnLockEvent (on the method; a list, the decorator stacks). */
export const ON_LOCK_EVENT_METADATA = 'etcd-lock:on_lock_event';
/** Class metadata @nestjs/websockets puts on gateways: their handlers run through interceptors. */
export const GATEWAY_METADATA = 'websockets:is_gateway';
/** Token of the provider that prepares gateways while providers are created (see WithLockExplorer.prepareGateways). */
export const GATEWAYS_PREPARED = 'etcd-lock:gateways_prepared';
/** The name of the lock service of `EtcdLockModule.forRoot()` without a `name`. */
export const DEFAULT_LOCK_INSTANCE = 'default';
/** Metadata keys of Nest's HTTP route decorators (`@Controller(path)`, `@Post(path)`), read to check key templates against routes. */
export const HTTP_PATH_METADATA = 'path';
export const HTTP_METHOD_METADATA = 'method';
/** The context of the module's log lines (Nest's Logger). */
export const LOG_CONTEXT = 'EtcdLockModule';
/**
 * How long after bootstrap the module looks for a SIGTERM handler: `enableShutdownHooks()` often
 * comes after `init()` (`createApplicationContext()` runs init itself).
 */
export const SHUTDOWN_HOOKS_CHECK_DELAY_MS = 1_000;
