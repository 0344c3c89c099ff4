/**
 * Who may talk to the UI server.
 *
 * - Bound to a loopback address (`127.0.0.1`, `localhost`, `::1`: the default) without a token, only requests
 *   whose `Host` header names this machine are answered, so that a web page cannot reach the server through a
 *   DNS name it controls (DNS rebinding).
 * - With a token (required for any other address), every request must carry it: `Authorization: Bearer T`, the
 *   `flyte_ui_token` cookie, or `?token=T`. A page opened with `?token=T` gets the cookie and is redirected to the
 *   same address without the token, so the token does not stay in the address bar or the history.
 * - Requests that change something (`POST`) must be `application/json` and, when the browser says where they
 *   come from (`Origin`), come from the UI itself: an HTML form or another site cannot send them.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { InitializationError } from '../errors.js';

/** Name of the cookie that keeps the token for the pages opened with `?token=`. */
export const TOKEN_COOKIE = 'flyte_ui_token';
/** The shortest token accepted. */
export const MIN_TOKEN_LENGTH = 16;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Whether `host` is one of the loopback names the UI may bind without a token. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host.toLowerCase());
}

/**
 * Checks the host/token pair before the server starts.
 *
 * @throws InitializationError when `host` is not loopback and there is no token, or the token is too short.
 */
export function checkAccessOptions(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new InitializationError(
      `the UI token must have at least ${MIN_TOKEN_LENGTH} characters; received ${token.length} (generate one with \`openssl rand -hex 16\`)`,
    );
  }
  if (token === undefined && !isLoopbackHost(host)) {
    throw new InitializationError(
      `binding the UI to ${host} exposes runs, their inputs and outputs beyond this machine; ` +
        `set a token with --token or FLYTE_UI_TOKEN (at least ${MIN_TOKEN_LENGTH} characters), or bind 127.0.0.1`,
    );
  }
}

/** The verdict on one request. */
export type Access =
  | { readonly ok: true; readonly cookie?: string; readonly redirect?: string }
  | { readonly ok: false; readonly status: 401 | 403; readonly message: string };

/** Decides whether requests may be answered. */
export class AccessPolicy {
  readonly #tokenDigest: Buffer | undefined;
  #port = 0;

  constructor(readonly token: string | undefined) {
    this.#tokenDigest = token === undefined ? undefined : digest(token);
  }

  /** The port the server listens on, once known (the allowed `Host` headers name it). */
  set port(port: number) {
    this.#port = port;
  }

  /** Judges `req`, whose URL is `url`. `page` says whether it asks for an HTML page (not the API). */
  check(req: IncomingMessage, url: URL, page: boolean): Access {
    if (this.#tokenDigest !== undefined) {
      const fromQuery = url.searchParams.get('token');
      // The query's token wins over the cookie, which may be left from another UI on this host.
      const given = bearer(req) ?? fromQuery ?? cookie(req, TOKEN_COOKIE);
      if (given === undefined || !timingSafeEqual(digest(given), this.#tokenDigest)) {
        return {
          ok: false,
          status: 401,
          message: 'this flyte UI needs its token: open the address `flyte ui` printed',
        };
      }
      if (fromQuery !== null && given === fromQuery && page && req.method === 'GET') {
        const clean = new URL(url);
        clean.searchParams.delete('token');
        return {
          ok: true,
          cookie: `${TOKEN_COOKIE}=${encodeURIComponent(fromQuery)}; Path=/; HttpOnly; SameSite=Strict`,
          // One leading slash: `//host/...` would send the browser to another site.
          redirect: `/${clean.pathname.replace(/^\/+/, '')}${clean.search}`,
        };
      }
    } else if (!this.#hostAllowed(req.headers.host)) {
      return { ok: false, status: 403, message: `unexpected Host header ${JSON.stringify(req.headers.host ?? '')}` };
    }
    if (req.method === 'POST') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/json') {
        return { ok: false, status: 403, message: 'expected a request with Content-Type: application/json' };
      }
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) {
        return { ok: false, status: 403, message: `requests from ${origin} may not change runs` };
      }
    }
    return { ok: true };
  }

  #hostAllowed(host: string | undefined): boolean {
    if (host === undefined) return false;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
    if (m === null || !isLoopbackHost(m[1] as string)) return false;
    return m[2] === undefined ? this.#port === 80 : Number(m[2]) === this.#port;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function bearer(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        // A malformed cookie value is no token.
        return undefined;
      }
    }
  }
  return undefined;
}
