#!/usr/bin/env node
// `npm run demo` on a fresh clone: install dependencies if missing, build the library and the
// sample app, then run the demo (scripts/demo/run-demo.ts). Arguments are passed on (--quick…).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function step(title, cmd, args) {
  console.log(`demo: ${title}`);
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) {
    console.error(`demo: "${[cmd, ...args].join(' ')}" failed`);
    process.exit(res.status ?? 1);
  }
}

if (!existsSync(`${root}/node_modules`)) step('installing dependencies (npm ci)', npm, ['ci', '--no-audit', '--no-fund']);
// tsc without the `rm -rf dist` of `npm run build`: files are replaced in place, so a test run
// that reads dist/ meanwhile never finds it missing
step('building the library (dist/)', process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json']);
step('building the sample app (sample-app/dist/)', process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'sample-app/tsconfig.json']);

const demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo/run-demo.ts', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
// Ctrl-C reaches the demo too (same process group); it stops what it started, then we exit with it
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => demo.kill(signal));
demo.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
