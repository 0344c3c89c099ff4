/**
 * The `npm run bench:remote` harness itself, at a tiny size: every contender runs once, its result is verified
 * (the run's actions read back, all succeeded; every raw job done), and each sample leaves no schema and no keys
 * behind. Not part of `npm test`; run it by hand (needs Postgres and Redis; under `CI=true` their absence fails):
 *
 * ```sh
 * CI=true node --conditions=flyte-source --import tsx --test bench/remote.test.ts
 * ```
 * @module
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { peekPostgres, postgresSkip } from '../test/support/postgres.js';
import { rawRedis, redisSkip } from '../test/support/redis.js';
import type { SampleResult } from './remote-sample.js';

const REMOTE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'remote.ts');
const skip = (await postgresSkip()) || (await redisSkip());

describe('npm run bench:remote', { skip }, () => {
  it('measures every contender at a tiny size, verifies each, and cleans up', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flyte-bench-remote-test-'));
    try {
      const out = path.join(dir, 'out.json');
      const args = ['--n', '200', '--chain', '20', '--hold', '30', '--rounds', '1', '--warmup', '20', '--out', out];
      const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, REMOTE, ...args], {
        maxBuffer: 16 * 1024 * 1024,
      });
      for (const key of ['bullmq-1w', 'flyte-1w', 'bullmq-2w', 'flyte-2w'])
        assert.match(stdout, new RegExp(`\`${key}\``));
      assert.match(stdout, /Latency: a parent awaits 20 children/);
      assert.match(stdout, /Memory: one worker holds 30 waiting parents/);
      const report = JSON.parse(readFileSync(out, 'utf8')) as { samples: Record<string, SampleResult[]> };
      assert.deepEqual(Object.keys(report.samples).sort(), [
        'bullmq-1w',
        'bullmq-2w',
        'chain',
        'flyte-1w',
        'flyte-2w',
        'hold',
      ]);
      for (const [key, samples] of Object.entries(report.samples)) {
        assert.equal(samples.length, 1, key);
        assert.ok(samples[0]!.verified, key);
        assert.ok(
          samples[0]!.workerPeakRssMiB.every((m) => m > 0),
          key,
        );
      }
      assert.equal(report.samples['chain']![0]!.latency!.p50 > 0, true);
      assert.ok(report.samples['hold']![0]!.hold!.holdingRssMiB > 0);
      const samples = Object.values(report.samples).flat();
      const schemas = samples.flatMap((s) => (s.schema === null ? [] : [s.schema]));
      assert.equal(schemas.length, 4, 'flyte-1w, flyte-2w, chain, hold: one schema each');
      const left = await peekPostgres<{ schema_name: string }>(
        'SELECT schema_name FROM information_schema.schemata WHERE schema_name = ANY($1)',
        [schemas],
      );
      assert.deepEqual(left, [], 'every sample dropped its schema');
      const redis = rawRedis();
      try {
        for (const { prefix } of samples) {
          const [, keys] = await redis.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 10_000);
          assert.deepEqual(keys, [], `the sample of prefix ${prefix} deleted its keys`);
        }
      } finally {
        redis.disconnect();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
