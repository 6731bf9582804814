// The recipes in docs/recipes.md are the type-checked files of docs/recipes/, word for word.
import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));

describe('docs/recipes.md', () => {
  const markdown = readFileSync(`${DOCS}recipes.md`, 'utf8');
  const blocks = [...markdown.matchAll(/```ts\n([\s\S]*?)\n```/g)].map(match => match[1]);

  it('shows every recipe file, each exactly as it is type-checked', () => {
    const files = readdirSync(`${DOCS}recipes`).filter(name => name.endsWith('.ts')).sort();
    const shown = blocks.map(block => /^\/\/ docs\/recipes\/(\S+\.ts)\n/.exec(block)?.[1]).sort();
    expect(shown).toEqual(files);
    for (const block of blocks) {
      const file = /^\/\/ (docs\/recipes\/\S+\.ts)\n/.exec(block)![1];
      expect(block).toBe(readFileSync(`${DOCS}../${file}`, 'utf8').trimEnd());
    }
  });
});
