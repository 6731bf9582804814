// A real Chromium for the board's tests: Debian's (installed by .ci/run), driven by playwright-core.
import { expect } from '@jest/globals';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Where tests save their screenshots (git-ignored). */
export const SCREENSHOTS = fileURLToPath(new URL('../../test-output/screenshots/', import.meta.url));

/** Starts Chromium headless; fails with what to install when there is none (never skips). */
export async function launchChromium(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_BIN ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
  if (!executablePath) throw new Error("No Chromium: install Debian's chromium (apt-get install chromium; .ci/run does) or set CHROMIUM_BIN");
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** Reads until it equals `expected` (a page updates as events come), at most `timeoutMs`; then asserts it, for the diff. */
export async function eventually<T>(read: () => Promise<T>, expected: T, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let seen = await read();
  while (!isDeepStrictEqual(seen, expected) && Date.now() < until) {
    await sleep(100);
    seen = await read();
  }
  expect(seen).toEqual(expected);
}

/**
 * The page's WCAG 2.1 A and AA violations, as axe-core finds them (its id and the first
 * element it names): empty when none. The page's context needs `bypassCSP`: axe is injected.
 */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
  const violations = await page.evaluate<{ id: string; impact: string; nodes: { target: string[] }[] }[]>(
    "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }).then(r => r.violations)",
  );
  return violations.map(v => `${v.id} (${v.impact}): ${v.nodes[0]?.target.join(' ')}${v.nodes.length > 1 ? ` and ${v.nodes.length - 1} more` : ''}`);
}
