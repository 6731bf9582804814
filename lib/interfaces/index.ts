export * from './acquire-options.interface.js';
export * from './etcd-lock-module-options.interface.js';
export * from './lock-event.interface.js';
