/**
 * Keeping secrets out of what flyte-ts prints and stores: the password of every URL in a text, masked. One
 * function for the store's and the engine's descriptions, their error messages, and every log line.
 *
 * @example
 * ```ts
 * hidePasswords('cannot reach redis://:s3cret@cache:6379'); // 'cannot reach redis://:***@cache:6379'
 * ```
 * @module
 */

/**
 * `text` with the password of every URL in it masked: `postgres://me:pw@db/x` reads `postgres://me:***@db/x`.
 * A URL that does not parse is masked too (a password may hold a raw `/` or `:`); it ends at the first `@`.
 */
export function hidePasswords(text: string): string {
  return text.includes('://') ? text.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@]*@/gi, '$1***@') : text;
}
