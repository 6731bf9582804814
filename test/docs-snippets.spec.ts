// Every ```ts block of README.md and docs/*.md is a complete file (its imports shown, and what it
// assumes of your app declared) that compiles: each is written to its own module and
// type-checked with tsc against the package's sources, under the project's compiler options.
// A snippet that stops compiling fails `npm test`.
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = `${ROOT}.snippets/`;
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** The ```ts blocks of a Markdown file, with the line each starts at. */
function tsBlocks(file: string): { line: number; code: string }[] {
  const text = readFileSync(`${ROOT}${file}`, 'utf8');
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map(match => ({ line: text.slice(0, match.index).split('\n').length, code: match[1] }));
}

afterAll(() => rmSync(WORK, { recursive: true, force: true }));

const PAGES = ['README.md', ...readdirSync(`${ROOT}docs`).filter(name => name.endsWith('.md')).map(name => `docs/${name}`)];

describe('documentation snippets', () => {
  it('each ts block of the README and docs/ compiles on its own', async () => {
    const blocks = PAGES.flatMap(page => tsBlocks(page).map(block => ({ ...block, page })));
    expect(blocks.length).toBeGreaterThanOrEqual(20);
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(WORK);
    // the project's options (decorators, nodenext, strict; the package name mapped to its sources)
    writeFileSync(`${WORK}tsconfig.json`, JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noUnusedLocals: false, noUnusedParameters: false }, include: ['*.ts'] }));
    // one module per block, named after where it stands: tsc's errors say which block failed
    for (const { page, line, code } of blocks) writeFileSync(`${WORK}${page.replace(/[/.]/g, '_')}-line-${line}.ts`, code);
    const result = await promisify(execFile)(process.execPath, [TSC, '-p', `${WORK}tsconfig.json`, '--noEmit', '--pretty', 'false']).then(
      () => '',
      (err: { stdout?: string }) => err.stdout ?? String(err),
    );
    expect(result).toBe('');
  }, 120_000);
});
