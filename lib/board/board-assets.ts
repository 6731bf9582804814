import { readFileSync } from 'node:fs';

/** The page's files, served as they are: plain HTML, JS and CSS, no build step. */
const TYPES = { 'index.html': 'text/html; charset=utf-8', 'board.js': 'text/javascript; charset=utf-8', 'board.css': 'text/css; charset=utf-8' } as const;

export type BoardAssetName = keyof typeof TYPES;

/**
 * Headers of every answer of the board: the page runs only its own script and style, talks
 * only to its own server, and may not be framed (no clickjacking of force-unlock).
 */
export const BOARD_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const loaded = new Map<BoardAssetName, string>();

/** One of the page's files, read once from the package (assets/board, beside lib/ and dist/). */
export function boardAsset(name: BoardAssetName): { readonly type: string; readonly body: string } {
  let body = loaded.get(name);
  if (!body) {
    body = readFileSync(new URL(`../../assets/board/${name}`, import.meta.url), 'utf8');
    loaded.set(name, body);
  }
  return { type: TYPES[name], body };
}

/** The page, its files fetched from `base` (where the board is served, ending with a slash). */
export function boardPage(base: string): string {
  return boardAsset('index.html').body.replaceAll('{{base}}', escapeAttribute(base));
}

function escapeAttribute(text: string): string {
  return text.replace(/[&"'<>]/g, c => `&#${c.charCodeAt(0)};`);
}
