// Jest runs in ESM mode (NODE_OPTIONS=--experimental-vm-modules, see package.json):
// Nest 12 is ESM-only. Every test file starts its own etcd through harness/, so files
// may run in parallel without seeing each other's keys, leases or /metrics counters.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  // the sample app imports the package by name: under Jest, that is the sources (no build needed)
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1', '^nestjs-etcd-lock$': '<rootDir>/lib/index.ts', '^nestjs-etcd-lock/testing$': '<rootDir>/lib/testing/index.ts', '^nestjs-etcd-lock/redis$': '<rootDir>/lib/backends/redis/index.ts', '^nestjs-etcd-lock/terminus$': '<rootDir>/lib/terminus/index.ts' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  testTimeout: 60_000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/support/plain-summary.reporter.js'],
};
