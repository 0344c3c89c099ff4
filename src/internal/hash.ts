/**
 * SHA-256 helpers used for value hashes, cache keys and deterministic names.
 *
 * `shortHash` returns the first characters of the digest in lower-case base32 (RFC 4648 alphabet `a–z2–7`,
 * no padding): 5 bits per character instead of hex's 4, and only letters and digits, so it is safe in action
 * names, file names and URLs.
 *
 * @example
 * ```ts
 * sha256Hex('abc');      // 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
 * shortHash('abc');      // 'xj4bnp4pahh6uqkb' (16 characters)
 * shortHash('abc', 8);   // 'xj4bnp4p'
 * ```
 * @module
 */
import * as crypto from 'node:crypto';

const BASE32_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** The longest `shortHash`: 256 bits in 5-bit characters. */
const MAX_SHORT_HASH_LENGTH = 52;

// `crypto.hash` (Node >= 20.12) skips the Hash object and is about twice as fast for short inputs.
const digestHex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');

const digestBuffer: (text: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'buffer')
    : (text) => crypto.createHash('sha256').update(text, 'utf8').digest();

/**
 * The SHA-256 digest of a string's UTF-8 bytes, as 64 lower-case hex characters.
 *
 * @example
 * ```ts
 * sha256Hex(''); // 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
 * ```
 */
export function sha256Hex(text: string): string {
  return digestHex(text);
}

/**
 * A short, name-safe digest of a string: the first `length` characters of the lower-case base32 encoding
 * (`a–z2–7`) of its SHA-256. Each character carries 5 bits, so the default 16 characters carry 80 bits.
 *
 * @param length - how many characters to return, 1 to 52. @default 16
 * @throws RangeError when `length` is not an integer from 1 to 52.
 * @example
 * ```ts
 * shortHash('my-task:[1,2,3]', 10); // 10 characters from a–z and 2–7
 * ```
 */
export function shortHash(text: string, length = 16): string {
  if (!Number.isInteger(length) || length < 1 || length > MAX_SHORT_HASH_LENGTH) {
    throw new RangeError(
      `shortHash length: expected an integer from 1 to ${MAX_SHORT_HASH_LENGTH}; received ${length}`,
    );
  }
  const digest = digestBuffer(text);
  let out = '';
  let bits = 0;
  let acc = 0;
  for (let i = 0; out.length < length;) {
    if (bits < 5) {
      // Past the last byte (only for length 52) pad with zero bits, as RFC 4648 does.
      acc = (acc << 8) | (i < digest.length ? (digest[i] as number) : 0);
      i += 1;
      bits += 8;
    }
    bits -= 5;
    out += BASE32_ALPHABET[(acc >>> bits) & 31];
    acc &= (1 << bits) - 1;
  }
  return out;
}
