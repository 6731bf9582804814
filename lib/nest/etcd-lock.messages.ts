// Messages of the Nest layer; each says what is wrong and what to do.

export const UNKNOWN_PLACEHOLDER = (where: string, placeholder: string, why: string) =>
  `@WithLock on ${where}: key placeholder ${placeholder} names no parameter (${why}). ` +
  `Use a parameter name, an index such as <<0>>, or a path such as <<order.id>>.`;

export const NOT_A_ROUTE_PARAM = (where: string, route: string, placeholder: string, name: string, params: readonly string[]) =>
  `@WithLock on ${where} (${route}): placeholder ${placeholder} is not a param of the route ` +
  `(its params: ${params.length ? params.join(', ') : 'none'}). Name a route param, or say where the value comes from: ` +
  `<<query.${name}>>, <<body.${name}>>, <<headers.${name}>> or <<user.${name}>>.`;

export const EMPTY_PLACEHOLDER = (placeholder: string, template: string, value: unknown) =>
  `placeholder ${placeholder} of "${template}" is ${value === '' ? 'empty' : String(value)}; send a value for it`;

export const NON_SCALAR_PLACEHOLDER = (placeholder: string, template: string, type: string) =>
  `placeholder ${placeholder} of "${template}" is an ${type}; point it at a string or number, e.g. <<order.id>>`;

export const BAD_KEY_FUNCTION_RESULT = (where: string, result: unknown) =>
  `the key function of @WithLock on ${where} returned ${JSON.stringify(result)}; it must return a non-empty string`;

export const BAD_WITH_LOCK_OPTION = (where: string, option: string, why: string) =>
  `@WithLock on ${where}: option "${option}" ${why}.`;

export const EVENT_HANDLER_FAILED = (where: string, type: string, key: string) =>
  `@OnLockEvent handler ${where} failed on "${type}" of lock "${key}"`;

export const GATEWAY_NOT_READY = (where: string) =>
  `@WithLock gateway handler ${where} was called before EtcdLockModule finished bootstrapping this gateway; call it after app.init().`;

export const UNKNOWN_LOCK_INSTANCE = (name: string, where: string, known: string[]) =>
  `${where} names the lock service "${name}", but no EtcdLockModule.forRoot({ name: '${name}' }) was imported ` +
  `(there is ${known.length ? known.map(k => `"${k}"`).join(', ') : 'none'}). Import one with that name, or fix the name.`;

export const DUPLICATE_LOCK_INSTANCE = (name: string) =>
  `EtcdLockModule "${name}" is imported twice with different options. Give each instance its own name.`;

export const UNLOCKED_METHOD = (where: string) =>
  `@WithLock method ${where} was called, but no app with EtcdLockModule owns this instance, so its lock cannot be taken. ` +
  `Get the instance from a Nest app that imports EtcdLockModule; to call it without a lock in a unit test, wrap the call in withoutLocks(() => ...).`;

export const SHUTDOWN_HOOKS_DISABLED = (delayMs: number) =>
  `No SIGTERM handler ${delayMs / 1000} s after bootstrap: when this app is stopped (a deploy, a scale-down), it exits without ` +
  `releasing its locks, and other replicas wait up to its lease TTL for them. Call app.enableShutdownHooks() before app.listen(), ` +
  `or close the app yourself on SIGTERM.`;

export const AMBIGUOUS_LOCKED_METHOD = (where: string) =>
  `@WithLock method ${where} was called on an instance that several running Nest apps claim; give each app its own instance.`;

export const HANDLER_NOT_INTERCEPTED = (where: string) =>
  `@WithLock handler ${where} was called without EtcdLockModule's interceptor, so its lock was not taken and it did not run. ` +
  `A microservice connected to an HTTP app needs app.connectMicroservice(options, { inheritAppConfig: true }); ` +
  `other code should call a provider method instead of the handler.`;

export const STORE_UNAVAILABLE_FOR_CLIENTS = (retryAfterSeconds: number) =>
  `The lock service cannot reach its store right now. Retry in ${retryAfterSeconds} s.`;

/** What a client is told of a server fault: the words of Nest's own filters. */
export const INTERNAL_ERROR = 'Internal server error';
