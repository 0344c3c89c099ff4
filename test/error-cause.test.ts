/**
 * Failure causes (src/internal/error-cause.ts): `maskMessage` makes the messages of one cause one pattern, and
 * `causeOf` gives the cause of a failed or timed-out action only.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PATTERN_LENGTH, causeOf, maskMessage } from '../src/internal/error-cause.js';

describe('maskMessage', () => {
  it('makes the messages of one cause one pattern', () => {
    assert.equal(maskMessage('HTTP 503 for item 7'), 'HTTP 503 for item <n>');
    assert.equal(maskMessage('HTTP 503 for item 12'), maskMessage('HTTP 503 for item 7'));
  });

  it('keeps a 3-digit HTTP status, so that 503 and 404 stay two causes', () => {
    assert.equal(maskMessage('HTTP 404 for item 12'), 'HTTP 404 for item <n>');
    assert.equal(maskMessage('HTTP/1.1 502 Bad Gateway after 3 tries'), 'HTTP/1.1 502 Bad Gateway after <n> tries');
    assert.equal(maskMessage('request failed with status 429'), 'request failed with status 429');
    assert.equal(maskMessage('statusCode: 500 (attempt 2)'), 'statusCode: 500 (attempt <n>)');
    assert.equal(maskMessage('status code=401'), 'status code=401');
    // Not a status: a number elsewhere, or one of another length after the word.
    assert.equal(maskMessage('got 503 rows'), 'got <n> rows');
    assert.equal(maskMessage('status 42'), 'status <n>');
  });

  it('masks numbers of every form', () => {
    assert.equal(maskMessage('took 3.5 s, limit 2'), 'took <n> s, limit <n>');
    assert.equal(maskMessage('at 10:42:07 on 127.0.0.1:5432'), 'at <n> on <n>');
    assert.equal(maskMessage('negative: -4'), 'negative: -<n>');
    assert.equal(maskMessage('item7 of 12ms'), 'item<n> of <n>ms');
  });

  it('masks quoted strings, and leaves apostrophes alone', () => {
    assert.equal(maskMessage(`no key "user-42" in 'cfg' or \`env\``), 'no key <str> in <str> or <str>');
    assert.equal(maskMessage("can't parse 'a b' here"), "can't parse <str> here");
    assert.equal(maskMessage('escaped "a \\" b" end'), 'escaped <str> end');
  });

  it('masks urls, uuids, paths and ids', () => {
    assert.equal(maskMessage('GET https://api.example.com/v1/items?id=3 failed'), 'GET <url> failed');
    assert.equal(maskMessage('job 0b6d2c1e-8f3a-4c5d-9e7f-1a2b3c4d5e6f lost'), 'job <uuid> lost');
    assert.equal(maskMessage('ENOENT: no such file, open /data/in/7.csv'), 'ENOENT: no such file, open <path>');
    assert.equal(maskMessage('read ./out/a.txt and ~/x and C:\\tmp\\y'), 'read <path> and <path> and <path>');
    assert.equal(maskMessage('object 3f9c2e1bd07a not found'), 'object <id> not found');
    assert.equal(maskMessage('lease of job_42abcdef expired'), 'lease of <id> expired');
    // Words are not ids, and a slash between words is not a path.
    assert.equal(maskMessage('and/or the database'), 'and/or the database');
  });

  it('collapses whitespace and caps the length', () => {
    assert.equal(maskMessage('  a\n\n  b\tc  '), 'a b c');
    const long = maskMessage('x'.repeat(1000));
    assert.equal(long.length, MAX_PATTERN_LENGTH);
    assert.ok(long.endsWith('…'));
    assert.equal(maskMessage(''), '');
  });
});

describe('causeOf', () => {
  const error = { code: 'Error', kind: 'user', message: 'HTTP 503 for item 7' } as const;
  it('gives the code and pattern of a failed or timed-out action', () => {
    assert.deepEqual(causeOf({ phase: 'failed', error }), { code: 'Error', pattern: 'HTTP 503 for item <n>' });
    assert.deepEqual(causeOf({ phase: 'timed_out', error: { ...error, code: 'TaskTimeoutError' } }), {
      code: 'TaskTimeoutError',
      pattern: 'HTTP 503 for item <n>',
    });
  });
  it('gives none for other phases or no error', () => {
    assert.equal(causeOf({ phase: 'aborted', error }), null);
    assert.equal(causeOf({ phase: 'succeeded', error: null }), null);
    assert.equal(causeOf({ phase: 'failed', error: null }), null);
  });
});
