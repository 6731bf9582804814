export * from './acquire-options.interface.js';
export * from './etcd-lock-module-options.interface.js';
export * from './lock-event.interface.js';
export * from './lock-health.interface.js';
export * from './lock-info.interface.js';
export * from './lock-logger.interface.js';
export * from './on-lock-event-options.interface.js';
export * from './with-lock-options.interface.js';
