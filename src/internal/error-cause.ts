/**
 * Failure causes: the failed items of a fan-out grouped by what went wrong, not one by one. A cause is an error
 * code plus the error's message with its variable parts masked ({@link maskMessage}), so that
 * `HTTP 503 for item 7` and `HTTP 503 for item 12` are one cause, `HTTP 503 for item <n>`.
 *
 * A leaf module (it imports only the record types): the stores compute the cause of an action when they write it
 * ({@link causeOf}) and keep it in columns of their own, so that a fan-out's causes are one indexed query.
 * @module
 */
import type { ActionRecord } from '../types.js';

/** The longest masked message kept, in characters (a longer one is cut and ends with `…`). */
export const MAX_PATTERN_LENGTH = 200;

/** What a failed action failed of: its error code and its masked message. */
export interface ErrorCause {
  readonly code: string;
  readonly pattern: string;
}

const URL = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"`<>]+/gi;
const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
// A quote opens where no word character precedes it, so the apostrophe of "can't" opens nothing.
const QUOTED = /(^|[^\w])(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`\n]*`)/g;
// Absolute, home, dot-relative and Windows paths; at least one separator after the start.
const PATH = /(^|[\s(=:,[])(?:[a-z]:[\\/]|~[\\/]|\.{1,2}[\\/]|[\\/])[\w.@%+~-]+(?:[\\/][\w.@%+~-]*)*/gi;
// Hashes and ids: words of 8 or more characters that mix letters and digits (a run of digits alone is a number).
const ID = /\b(?=[a-z_]*\d)(?=[\d_]*[a-z])\w{8,}\b/gi;
const NUMBER = /\d+(?:[.,:]\d+)*/g;
/** What may precede an HTTP status that is kept: `HTTP 503`, `HTTP/1.1 503`, `status 404`, `statusCode: 502`. */
const STATUS_BEFORE = /(?:\bhttps?(?:\/\d(?:\.\d)?)?|\bstatus(?:[ _-]?code)?)[\s:=]*$/i;
/** The protocol version of `HTTP/1.1` is kept too. */
const HTTP_VERSION_BEFORE = /\bhttps?\/$/i;
const SPACE = /\s+/g;

/**
 * An error message with its variable parts masked, so that the failures of one cause share one pattern:
 *
 * | what | becomes |
 * | --- | --- |
 * | URLs (`https://api.example.com/x?id=3`) | `<url>` |
 * | UUIDs | `<uuid>` |
 * | quoted strings (`"…"`, `'…'`, `` `…` ``) | `<str>` |
 * | paths (`/tmp/a.txt`, `./x/y`, `~/f`, `C:\dir`) | `<path>` |
 * | hashes and ids (words of 8+ characters mixing letters and digits: `3f9c2e1b`, `job_42abc`) | `<id>` |
 * | numbers (`12`, `3.5`, `10:42:07`, `127.0.0.1`) | `<n>` |
 *
 * Whitespace runs become one space, the ends are trimmed, and a pattern longer than {@link MAX_PATTERN_LENGTH}
 * is cut and ends with `…`.
 *
 * **HTTP statuses stay.** Masking every number would merge `HTTP 503` and `HTTP 404`, two causes a person
 * handles differently (retry later, fix the request). A 3-digit number right after `HTTP` (or `HTTP/1.1`),
 * `status` or `status code` / `statusCode` (with an optional `:` or `=`) is kept; every other number is masked.
 *
 * @example
 * ```ts
 * maskMessage('HTTP 503 for item 7');                   // 'HTTP 503 for item <n>'
 * maskMessage('HTTP 404 for item 12');                  // 'HTTP 404 for item <n>'
 * maskMessage("no such file '/data/in/7.csv'");         // 'no such file <str>'
 * maskMessage('timed out after 5000 ms at /srv/x.ts');  // 'timed out after <n> ms at <path>'
 * ```
 */
export function maskMessage(message: string): string {
  const masked = message
    .replace(URL, '<url>')
    .replace(UUID, '<uuid>')
    .replace(QUOTED, '$1<str>')
    .replace(PATH, '$1<path>')
    .replace(ID, '<id>')
    .replace(NUMBER, (n: string, at: number, whole: string) => {
      const before = whole.slice(Math.max(0, at - 24), at);
      return HTTP_VERSION_BEFORE.test(before) || (/^\d{3}$/.test(n) && STATUS_BEFORE.test(before)) ? n : '<n>';
    })
    .replace(SPACE, ' ')
    .trim();
  return masked.length <= MAX_PATTERN_LENGTH ? masked : `${masked.slice(0, MAX_PATTERN_LENGTH - 1)}…`;
}

/**
 * The cause of an action's failure: its error's code and masked message, for an action that `failed` or
 * `timed_out` with an error; `null` for any other (a succeeded, running or aborted action has no cause).
 *
 * @example
 * ```ts
 * causeOf({ ...action, phase: 'failed', error: { code: 'Error', kind: 'user', message: 'HTTP 503 for item 7' } });
 * // { code: 'Error', pattern: 'HTTP 503 for item <n>' }
 * ```
 */
export function causeOf(action: Pick<ActionRecord, 'phase' | 'error'>): ErrorCause | null {
  const { error } = action;
  if (error === null || (action.phase !== 'failed' && action.phase !== 'timed_out')) return null;
  return { code: error.code, pattern: maskMessage(error.message) };
}
