export * from './inject-lock-service.decorator.js';
export * from './on-lock-event.decorator.js';
export * from './with-lock.decorator.js';
