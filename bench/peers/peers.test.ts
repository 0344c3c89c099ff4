/**
 * The `npm run bench:peers` harness itself, at a tiny size: every contender runs both workloads once, each sum is
 * checked by its sample (and flyte-ts's records read back), the tables name every contender with its durable
 * work, and no private database is left behind. Not part of `npm test` (it needs the peers installed:
 * `npm run bench:peers -- --help` installs them); run it by hand:
 *
 * ```sh
 * CI=true node --conditions=flyte-source --import tsx --test bench/peers/peers.test.ts
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
import { peekPostgres, postgresSkip } from '../../test/support/postgres.js';
import { PEERS, WORKLOADS } from './peers.js';

const RUN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'run.ts');
const skip = await postgresSkip();

/** The names of the databases `peers_*` on the bench's server. */
async function peerDatabases(): Promise<string[]> {
  const rows = await peekPostgres<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datname LIKE 'peers\\_%'",
  );
  return rows.map((r) => r.datname).sort();
}

interface Report {
  readonly summaries: readonly {
    readonly peer: string;
    readonly workload: string;
    readonly errors: readonly string[];
    readonly samples: readonly { readonly sum: number; readonly n: number; readonly clientCpuMs: number }[];
    readonly storeCommits: number | null;
    readonly pgWriteTransactions: number | null;
    readonly redisCommands: number | null;
    readonly serverCpuMs: number | null;
  }[];
  readonly redis: Readonly<Record<string, string>> | null;
}

describe('npm run bench:peers', { skip }, () => {
  it(
    'runs every contender on both workloads at a tiny size, checks each, and cleans up',
    { timeout: 600_000 },
    async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'flyte-bench-peers-test-'));
      const before = await peerDatabases();
      try {
        const out = path.join(dir, 'out.json');
        const args = ['--n', '200', '--chain', '20', '--rounds', '1', '--warmup', '20', '--out', out];
        const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, RUN, ...args], {
          maxBuffer: 16 * 1024 * 1024,
        });
        assert.match(stdout, /### Fan-out: 200 children, at most 64 in flight/);
        assert.match(stdout, /### Chain: 20 children awaited one after the other/);
        for (const p of PEERS)
          assert.match(stdout, new RegExp(`\\| \`${p.name}\` \\| \\d`), `a row of figures for ${p.name}`);
        const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
        assert.deepEqual(report.redis?.['appendfsync'], 'everysec');
        assert.equal(report.redis?.['appendonly'], 'yes');
        for (const w of WORKLOADS) {
          for (const p of PEERS) {
            const s = report.summaries.find((x) => x.peer === p.name && x.workload === w);
            assert.ok(s !== undefined, `${p.name} ${w} summarized`);
            assert.deepEqual(s.errors, [], `${p.name} ${w} ran`);
            const n = w === 'fanout' ? 200 : 20;
            assert.deepEqual(
              s.samples.map((x) => [x.n, x.sum]),
              [[n, n * (n - 1)]],
            );
            // Each contender's durable work is counted where it is done.
            if (p.name.startsWith('flyte-') && p.uses.length === 0)
              assert.ok(s.storeCommits! > 0, `${p.name}: commits`);
            if (p.uses.includes('postgres')) assert.ok(s.pgWriteTransactions! > 0, `${p.name}: write transactions`);
            if (p.uses.includes('redis')) assert.ok(s.redisCommands! > 0, `${p.name}: Redis commands`);
            if (p.uses.length > 0) assert.ok(s.serverCpuMs !== null, `${p.name}: server CPU`);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      assert.deepEqual(await peerDatabases(), before, 'no private database left behind');
    },
  );
});
