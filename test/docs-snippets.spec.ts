// The documentation's code, checked as users meet it: against the package as `npm pack` makes it
// (dist/ and its .d.ts, resolved through package.json "exports"), never against lib/.
//
// - Every ```ts block of README.md and docs/*.md is a complete file (its imports shown, and what
//   it assumes of your app declared). Each is written to its own module and type-checked with tsc
//   in two apps that use a Nest app's compiler options: an ES module app and a CommonJS app. In the
//   CommonJS app a block with top-level await is a `.mts` file, as a script of such an app must be.
//   A block whose first line names its file (`// payments.service.ts`) is written under that
//   name, so that another block can import it.
// - Every block named `*.spec.ts` is a Jest test a user would write: compiled in the ES module
//   app, it runs with Jest against the packed package.
// - Every ```mjs block is a script that runs: each is run with node against a real etcd
//   (ETCD_HOSTS), must exit 0 and leave etcd clean.
// A snippet that stops compiling or running fails `npm test`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { expectEtcdClean } from './support/etcd-state.js';
import { packLibrary } from './support/nest11-consumer.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
// inside the repository, so the apps resolve @nestjs/*, bullmq and the rest from its node_modules;
// nestjs-etcd-lock itself resolves first from WORK/node_modules, where the packed package is
const WORK = `${ROOT}.snippets/`;
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const JEST = `${ROOT}node_modules/jest/bin/jest.js`; // jest's resolver does not see past the package's exports
const PAGES = ['README.md', ...readdirSync(`${ROOT}docs`).filter(name => name.endsWith('.md')).map(name => `docs/${name}`)];

interface Block {
  page: string;
  line: number;
  code: string;
  /** a file name that says where the block stands: tsc's errors name the block that failed */
  name: string;
}

/** The ```<lang> blocks of every page, with the line each starts at. */
function blocks(lang: 'ts' | 'mjs'): Block[] {
  return PAGES.flatMap(page => {
    const text = readFileSync(`${ROOT}${page}`, 'utf8');
    return [...text.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map(match => {
      const line = text.slice(0, match.index).split('\n').length;
      const named = /^\/\/ ([\w.-]+)\.ts\n/.exec(match[1])?.[1];
      return { page, line, code: match[1], name: named ?? `${page.replace(/[/.]/g, '_')}-line-${line}` };
    });
  });
}

/** A Nest app's compiler options (decorators, strict, nodenext), as `nest new` gives, plus strict. */
const APP_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
    outDir: 'out',
  },
  include: ['*.ts', '*.mts'],
};

/** Writes an app of the given module type holding every ts block, compiled into its out/; resolves with tsc's errors ('' if none). */
async function compileApp(type: 'module' | 'commonjs'): Promise<string> {
  const dir = `${WORK}${type}-app/`;
  mkdirSync(dir);
  writeFileSync(`${dir}package.json`, JSON.stringify({ name: `docs-${type}-app`, private: true, type }));
  writeFileSync(`${dir}tsconfig.json`, JSON.stringify(APP_TSCONFIG));
  for (const { name, code } of blocks('ts')) {
    const script = type === 'commonjs' && /^(?:const .*= )?await /m.test(code);
    writeFileSync(`${dir}${name}.${script ? 'mts' : 'ts'}`, code);
  }
  return run(process.execPath, [TSC, '-p', `${dir}tsconfig.json`, '--pretty', 'false']).then(
    () => '',
    (err: { stdout?: string }) => err.stdout || String(err),
  );
}

let etcd: EtcdHandle | undefined;

beforeAll(async () => {
  const tarball = await packLibrary();
  rmSync(WORK, { recursive: true, force: true });
  const pkg = `${WORK}node_modules/nestjs-etcd-lock/`;
  mkdirSync(pkg, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', pkg, '--strip-components=1']);
}, 180_000);

afterAll(async () => {
  rmSync(WORK, { recursive: true, force: true });
  await etcd?.stop();
});

describe('documentation snippets, against the packed package', () => {
  it('there are snippets to check: ts blocks that compile, mjs blocks that run', () => {
    expect(blocks('ts').length).toBeGreaterThanOrEqual(20);
    expect(blocks('mjs').length).toBeGreaterThanOrEqual(1);
  });

  it('each ts block compiles in an ES module app', async () => {
    expect(await compileApp('module')).toBe('');
  }, 120_000);

  it('each ts block compiles in a CommonJS app', async () => {
    expect(await compileApp('commonjs')).toBe('');
  }, 120_000);

  it('each *.spec.ts block runs with Jest in the ES module app, and passes', async () => {
    const specs = blocks('ts').filter(block => block.name.endsWith('.spec'));
    expect(specs.length).toBeGreaterThanOrEqual(1);
    const out = `${WORK}module-app/out`;
    const config = { rootDir: out, testEnvironment: 'node', transform: {}, testMatch: ['<rootDir>/*.spec.js'] };
    const result = await run(process.execPath, [JEST, '--config', JSON.stringify(config), '--ci', '--colors=false'], {
      cwd: `${WORK}module-app`,
      env: { ...process.env, NODE_OPTIONS: '--experimental-vm-modules --disable-warning=ExperimentalWarning', ETCD_ENDPOINTS: '' },
      timeout: 60_000,
    }).then(
      ({ stderr }) => ({ ok: true, output: stderr }),
      (err: { stdout?: string; stderr?: string }) => ({ ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
    );
    expect(result).toMatchObject({ ok: true });
    const tests = specs.reduce((count, spec) => count + (spec.code.match(/^\s*it\(/gm) ?? []).length, 0);
    expect(result.output).toMatch(new RegExp(`Tests: +${tests} passed, ${tests} total`)); // every test ran, none skipped
    for (const spec of specs) expect(result.output).toContain(`${spec.name}.js`);
  }, 120_000);

  it('each mjs block runs with node against a real etcd and leaves it clean', async () => {
    etcd = await startEtcd();
    const dir = `${WORK}scripts/`;
    mkdirSync(dir);
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      for (const { name, code } of blocks('mjs')) {
        writeFileSync(`${dir}${name}.mjs`, code);
        const { stdout } = await run(process.execPath, [`${dir}${name}.mjs`], {
          cwd: dir,
          env: { ...process.env, ETCD_HOSTS: etcd.endpoints.join(',') },
          timeout: 60_000,
        }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
          throw new Error(`${name}.mjs failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
        });
        expect(stdout.trim()).not.toBe(''); // each script prints what it did
      }
      await expectEtcdClean(admin, 'nestjs-etcd-lock/');
    } finally {
      admin.close();
    }
  }, 120_000);
});
