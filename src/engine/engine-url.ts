/**
 * The engine URL: `redis://[user:pass@]host:port[/db][?prefix=NAME]` (or `rediss://` for TLS).
 * @module
 */
import { InitializationError } from '../errors.js';
import { hidePasswords } from '../internal/secrets.js';

/** What {@link parseEngineUrl} finds in an engine URL. */
export interface EngineUrl {
  readonly host: string;
  readonly port: number;
  /** The Redis database number. @default 0 */
  readonly db: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** `rediss://`: connect with TLS. */
  readonly tls: boolean;
  /** The prefix of every key and channel (letters, digits, `_` and `-`). @default 'flyte' */
  readonly prefix: string;
  /** The URL without its password, for messages. */
  readonly description: string;
}

/** The prefix of every key and channel when the URL does not name one. */
export const DEFAULT_ENGINE_PREFIX = 'flyte';

const PREFIX_PATTERN = /^[A-Za-z0-9_-]+$/;
const EXPECTED = 'expected redis://[user:password@]host:port[/db][?prefix=NAME] (or rediss://)';

/**
 * Reads an engine URL.
 *
 * @throws {@link InitializationError} when the URL is not of that form, saying what was expected and what was
 * received (the password hidden).
 * @example
 * ```ts
 * parseEngineUrl('redis://127.0.0.1:6379/2?prefix=ci').prefix; // 'ci'
 * ```
 */
export function parseEngineUrl(url: string): EngineUrl {
  const shown = hidePasswords(url);
  const bad = (what: string): InitializationError =>
    new InitializationError(`Invalid engine URL: ${what}; ${EXPECTED}, received '${shown}'`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw bad(`the scheme must be redis or rediss, not '${parsed.protocol.replace(/:$/, '')}'`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw bad('no host');
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) throw bad(`the path must be a database number, not '/${path}'`);
  const db = path === '' ? 0 : Number(path);
  for (const key of parsed.searchParams.keys()) {
    if (key !== 'prefix') throw bad(`unknown parameter '${key}' (the only one is 'prefix')`);
  }
  const prefix = parsed.searchParams.get('prefix') ?? DEFAULT_ENGINE_PREFIX;
  if (!PREFIX_PATTERN.test(prefix)) {
    throw bad(`the prefix must be letters, digits, '_' and '-', not '${prefix}'`);
  }
  if (parsed.hash !== '') throw bad('a fragment (#...) is not allowed');
  const username = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
  const password = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  return {
    host,
    port,
    db,
    username,
    password,
    tls: parsed.protocol === 'rediss:',
    prefix,
    description: shown,
  };
}

