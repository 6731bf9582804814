// nestjs-etcd-lock/terminus: a @nestjs/terminus health indicator, on its own export path so that an app without Terminus never loads it.
export { LockHealthIndicator, type LockHealthCheckOptions } from './lock-health.indicator.js';
