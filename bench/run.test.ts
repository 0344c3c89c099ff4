/**
 * The bench harness itself, at a tiny n: `--stores sqlite,postgres` measures each flyte scenario once per store
 * next to the raw baseline, reports rows per second and commits from the store's counters, states Postgres's
 * durability settings, and drops the schema of each sample afterwards. Not part of `npm test` (which runs
 * `test/*.test.ts`); run it by hand:
 *
 * ```sh
 * CI=true node --conditions=flyte-source --import tsx --test bench/run.test.ts
 * ```
 * Without Postgres the Postgres case is skipped with the reason, except under `CI=true`, where it fails.
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
import pg from 'pg';
import { PG_BENCH_URL, postgresSettings } from './stores.js';

const RUN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'run.ts');

/** Runs `bench/run.ts` with `args`; resolves with its stdout and the JSON it wrote. */
async function bench(args: readonly string[]): Promise<{ stdout: string; report: Report }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flyte-bench-test-'));
  try {
    const out = path.join(dir, 'out.json');
    const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, RUN, ...args, '--out', out], {
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout, report: JSON.parse(readFileSync(out, 'utf8')) as Report };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Report {
  readonly postgres: { readonly synchronous_commit: string; readonly fsync: string } | null;
  readonly scenarios: readonly {
    readonly key: string;
    readonly store: string | null;
    readonly addedUsPerAction: number | null;
    readonly rowsPerSecond: number | null;
    readonly rowsWritten: number | null;
    readonly commits: number | null;
    readonly fullyRecorded: boolean | null;
    readonly runs: readonly { readonly run?: { readonly name: string } }[];
  }[];
}

async function postgresSkip(): Promise<string | false> {
  try {
    await postgresSettings();
    return false;
  } catch (e) {
    if (process.env['CI'] === 'true') throw e;
    return (e as Error).message;
  }
}

async function benchSchemas(): Promise<string[]> {
  const client = new pg.Client({ connectionString: PG_BENCH_URL });
  await client.connect();
  try {
    const res = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'`,
    );
    return res.rows.map((r) => r.nspname);
  } finally {
    await client.end();
  }
}

const n = 200;

describe('npm run bench', async () => {
  const skip = await postgresSkip();

  it('measures each flyte scenario on SQLite and Postgres, side by side with its baseline', { skip }, async () => {
    const before = new Set(await benchSchemas());
    const { stdout, report } = await bench([
      '--n',
      String(n),
      '--runs',
      '1',
      '--warmup',
      '10',
      '--only',
      'flyte-map-0',
      '--stores',
      'sqlite,postgres',
    ]);
    assert.deepEqual(
      report.scenarios.map((s) => s.key),
      ['promise-all', 'flyte-map-0@sqlite', 'flyte-map-0@postgres'],
    );
    for (const s of report.scenarios.filter((c) => c.store !== null)) {
      assert.equal(s.fullyRecorded, true, `${s.key}: expected ${n + 1} succeeded actions`);
      assert.ok(typeof s.addedUsPerAction === 'number', `${s.key}: expected added µs per action`);
      // n children and the root, at least: every action is one row.
      assert.ok((s.rowsWritten ?? 0) >= n + 1, `${s.key}: expected >= ${n + 1} rows; received ${s.rowsWritten}`);
      assert.ok((s.rowsPerSecond ?? 0) > 0, `${s.key}: expected rows per second; received ${s.rowsPerSecond}`);
      assert.ok((s.commits ?? 0) >= 1, `${s.key}: expected commits; received ${s.commits}`);
    }
    assert.match(report.postgres?.synchronous_commit ?? '', /^(on|off|local|remote_write|remote_apply)$/);
    assert.match(report.postgres?.fsync ?? '', /^(on|off)$/);
    assert.match(stdout, /synchronous_commit=\w+, fsync=\w+/);
    assert.match(stdout, /postgres: target ≤ 40 µs added per action/);
    assert.match(stdout, /sqlite: target ≤ 20 µs added per action/);
    // The sample's schema is gone.
    const left = (await benchSchemas()).filter((s) => !before.has(s));
    assert.deepEqual(left, []);
  });

  it('refuses an unknown store with the list it expected', async () => {
    await assert.rejects(bench(['--n', '10', '--stores', 'sqlite,oracle']), (e: Error & { stderr?: string }) => {
      assert.match(
        e.stderr ?? '',
        /--stores: expected a comma-separated list of sqlite, sqlite-node, sqlite-better-sqlite3, postgres, postgres-async, memory/,
      );
      return true;
    });
  });
});
