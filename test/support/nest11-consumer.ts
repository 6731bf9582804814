// Consumer packages for the compatibility tests: the library as users get it (an `npm pack`
// tarball, installed with npm into a copy of a fixture package that has its own lockfile), never
// a symlink into this repo, which would resolve @nestjs/* from our own node_modules (Nest 12).
//
// Every step is cached under os.tmpdir(), keyed by content hashes, so only the first run
// installs everything: the tarball by the sources that make it (lib/, package.json, README,
// tsconfig, TypeScript's version), a fixture's `npm ci` by its files, a prepared consumer by those
// and the tarball's bytes. Entries unused for a day are removed.
// Directories are filled under a temporary name and renamed into place, so jest workers (or
// concurrent runs) that prepare the same thing at once never see half of it.
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = path.join(os.tmpdir(), 'nestjs-etcd-lock-compat');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const NPM_QUIET = ['--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

/** A consumer package ready to run: a temp copy of the fixture with the tarball installed. */
export interface Consumer {
  readonly dir: string;
  readonly tarball: string;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter(e => e.isFile())
    .map(e => path.relative(dir, path.join(e.parentPath, e.name)))
    .filter(f => !f.split(path.sep).includes('node_modules'))
    .sort();
}

async function hashFiles(base: string, files: string[], extra: string[] = []): Promise<string> {
  const hash = createHash('sha256');
  for (const item of extra) hash.update(`${item}\0`);
  for (const file of files) hash.update(`${file}\0`).update(await readFile(path.join(base, file))).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/** Fills `target` through `fill(tmpDir)` unless it exists; a concurrent winner's copy is kept. */
async function once(target: string, fill: (dir: string) => Promise<void>): Promise<void> {
  if (existsSync(target)) return;
  await mkdir(CACHE, { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${randomUUID().slice(0, 8)}`;
  try {
    await mkdir(tmp);
    await fill(tmp);
    await rename(tmp, target);
  } catch (err) {
    if (!existsSync(target)) throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

let packing: Promise<string> | undefined;

/**
 * The library packed by `npm pack`: compiled with tsconfig.build.json into a staging copy of the
 * package (package.json, README, dist), so the shared working tree's dist/ is never touched
 * while others build or test. Returns the tarball's path.
 */
export function packLibrary(): Promise<string> {
  return (packing ??= (async () => {
    const sources = ['package.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json',
      ...(await filesUnder(path.join(ROOT, 'lib'))).map(f => path.join('lib', f))];
    const { version: tsVersion } = JSON.parse(await readFile(path.join(ROOT, 'node_modules/typescript/package.json'), 'utf8'));
    const dir = path.join(CACHE, `pack-${await hashFiles(ROOT, sources, [tsVersion])}`);
    await once(dir, async tmp => {
      const stage = path.join(tmp, 'stage');
      await run(process.execPath, [TSC, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(stage, 'dist')], { cwd: ROOT });
      for (const file of ['package.json', 'README.md']) await cp(path.join(ROOT, file), path.join(stage, file));
      await run('npm', ['pack', '--pack-destination', tmp, ...NPM_QUIET], { cwd: stage });
      await rm(stage, { recursive: true });
    });
    await prune('pack-', [dir]);
    const [tarball] = (await readdir(dir)).filter(f => f.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack left no tarball in ${dir}`);
    return path.join(dir, tarball);
  })());
}

/**
 * A temp copy of `test/<fixture>/` (a package with its own package.json and package-lock.json):
 * `npm ci`, then `npm install --no-save <tarball>`, a real install of the packed library.
 * The `npm ci` result is cached by the fixture's files alone and copied for each new tarball,
 * so a change in lib/ costs a copy and one small install, not a full install.
 */
export async function prepareConsumer(fixture: string): Promise<Consumer> {
  const tarball = await packLibrary();
  const source = path.join(ROOT, 'test', fixture);
  const files = await filesUnder(source);
  const fixtureKey = await hashFiles(source, files, [process.version]);
  const base = path.join(CACHE, `${fixture}-base-${fixtureKey}`);
  await once(base, async tmp => {
    for (const file of files) await cp(path.join(source, file), path.join(tmp, file));
    await run('npm', ['ci', ...NPM_QUIET], { cwd: tmp });
  });
  const dir = path.join(CACHE, `${fixture}-${fixtureKey}-${await hashFiles(path.dirname(tarball), [path.basename(tarball)])}`);
  await once(dir, async tmp => {
    await cp(base, tmp, { recursive: true, verbatimSymlinks: true });
    await run('npm', ['install', '--no-save', ...NPM_QUIET, tarball], { cwd: tmp });
  });
  await prune(`${fixture}-`, [base, dir]);
  return { dir, tarball };
}

/** Removes cached entries of this kind (name prefix) that no run has used for a day (lib/ moves on). */
async function prune(prefix: string, keep: string[]): Promise<void> {
  const now = new Date();
  for (const name of await readdir(CACHE)) {
    const entry = path.join(CACHE, name);
    if (!name.startsWith(prefix) || keep.includes(entry)) continue;
    if (now.getTime() - (await stat(entry)).mtimeMs > 86_400_000) await rm(entry, { recursive: true, force: true });
  }
  await Promise.all(keep.map(entry => utimes(entry, now, now)));
}

/** test/compat-nest11: a CommonJS Nest 11 app (app.cjs). */
export const prepareNest11Consumer = (): Promise<Consumer> => prepareConsumer('compat-nest11');

/** Runs the consumer's own TypeScript (`tsc --noEmit -p <project>`); resolves with its exit code and output. */
export async function typecheckConsumer(consumer: Consumer, project = 'tsconfig.json'): Promise<{ code: number; output: string }> {
  try {
    const tsc = path.join(consumer.dir, 'node_modules/typescript/bin/tsc');
    const { stdout, stderr } = await run(process.execPath, [tsc, '--noEmit', '-p', project], { cwd: consumer.dir });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof code === 'number' ? code : 1, output: `${stdout ?? ''}${stderr ?? ''}` };
  }
}
