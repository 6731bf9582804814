// nestjs-etcd-lock/redis: the Redis backend, on its own export path so that an app on etcd never loads ioredis.
export { RedisBackend, type RedisBackendOptions } from './redis.backend.js';
