#!/usr/bin/env node
// `npm run sample`: builds the library and the sample app, then runs ONE replica in the
// foreground against ETCD_ENDPOINTS (default http://127.0.0.1:2379). PORT (3000), LOCK_PREFIX,
// LOCK_TTL, DATA_PREFIX, REPLICA, LOG_LOCK_EVENTS=1 and LOCK_REDIS_URL (locks in that Redis) are
// passed through. Ctrl-C stops it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = 'node_modules/typescript/bin/tsc';

if (!existsSync(`${root}/node_modules`)) {
  console.error('sample: run `npm ci` first');
  process.exit(1);
}
for (const project of ['tsconfig.build.json', 'sample-app/tsconfig.json']) {
  const res = spawnSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
if (!process.env.ETCD_ENDPOINTS) console.log('sample: ETCD_ENDPOINTS is not set, using http://127.0.0.1:2379');

const app = spawn(process.execPath, ['sample-app/dist/main.js'], { cwd: root, stdio: 'inherit' });
// Ctrl-C reaches the app too (same process group): Nest's shutdown hooks release its locks
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => app.kill(signal));
app.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
