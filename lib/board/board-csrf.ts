import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * CSRF protection of the board's one write, force-unlock. The page reads a token with its
 * snapshot (a GET another site cannot read) and sends it back in a header (a header another
 * site cannot set without CORS, which the board never grants). The token is an HMAC of who
 * the viewer is, under a key made at startup: nothing to store, and it dies with the process.
 * On top, a request the browser marks as coming from another site is refused outright.
 */
export class BoardCsrf {
  private readonly key = randomBytes(32);

  token(actor: string): string {
    return createHmac('sha256', this.key).update(actor).digest('base64url');
  }

  /** Why the request is refused, or undefined when it passes. */
  check(actor: string, headers: Record<string, string | string[] | undefined>): string | undefined {
    const site = header(headers, 'sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return `the request came from another site (Sec-Fetch-Site: ${site})`;
    const origin = header(headers, 'origin');
    const host = header(headers, 'host');
    if (origin !== undefined && host !== undefined && hostOf(origin) !== host.toLowerCase()) return `the request came from another origin (${origin})`;
    const sent = header(headers, 'x-csrf-token');
    if (!sent) return 'the x-csrf-token header is missing: send the csrf value of the snapshot';
    const expected = Buffer.from(this.token(actor));
    const given = Buffer.from(sent);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'the x-csrf-token header does not match: reload the board';
    return undefined;
  }
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined;
  }
}
