export * from './on-lock-event.decorator.js';
export * from './with-lock.decorator.js';
