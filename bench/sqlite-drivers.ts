/**
 * The SQLite store's own cost on each driver, without the rest of flyte-ts: `n` actions written three times each
 * (queued, running, succeeded: coalesced into one row), committed in one transaction; then every action read
 * back with `listActions`. Rounds alternate the drivers in one process; the median of each is reported.
 *
 * ```sh
 * node --conditions=flyte-source --import tsx bench/sqlite-drivers.ts             # n = 100 000, 5 rounds
 * node --conditions=flyte-source --import tsx bench/sqlite-drivers.ts --n 10000 --rounds 3
 * ```
 * Needs a Node with node:sqlite (>= 22.13) and better-sqlite3 built for it.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SQLITE_DRIVERS, SqliteStore, type SqliteDriverName } from '../src/store/index.js';
import type { ActionWrite } from '../src/store/run-store.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '5' } },
});
const n = Number(values.n);
const rounds = Number(values.rounds);
if (!Number.isInteger(n) || n < 1) throw new RangeError(`--n: expected a positive integer; received ${values.n}`);
if (!Number.isInteger(rounds) || rounds < 1) {
  throw new RangeError(`--rounds: expected a positive integer; received ${values.rounds}`);
}

function action(i: number, phase: ActionWrite['phase']): ActionWrite {
  return {
    runName: 'r1',
    name: `a${i}`,
    parentName: 'a0',
    taskName: 'bench.child',
    shortName: 'child',
    group: null,
    itemIndex: null,
    phase,
    cacheHit: false,
    attempts: 1,
    startedAt: 1_700_000_000_000 + i,
    endedAt: phase === 'succeeded' ? 1_700_000_000_001 + i : null,
    error: null,
    ...(phase === 'queued' ? { inputs: `[${i}]`, inputsHash: `h${i}` } : {}),
    ...(phase === 'succeeded' ? { outputs: `${i * 2}` } : {}),
  };
}

/** One round on one driver: ms to buffer, to commit, to read back. */
async function round(driver: SqliteDriverName): Promise<{ write: number; commit: number; read: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flyte-bench-drivers-'));
  const store = SqliteStore.open(path.join(dir, 'flyte.db'), { driver, flushIntervalMs: 600_000, maxBatch: 10 * n });
  try {
    const t0 = performance.now();
    for (const phase of ['queued', 'running', 'succeeded'] as const) {
      for (let i = 1; i <= n; i++) store.putAction(action(i, phase));
    }
    const t1 = performance.now();
    await store.flush();
    const t2 = performance.now();
    const read = await store.listActions('r1');
    const t3 = performance.now();
    if (read.length !== n) throw new Error(`${driver}: read ${read.length} actions, expected ${n}`);
    return { write: t1 - t0, commit: t2 - t1, read: t3 - t2 };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const results = new Map<SqliteDriverName, { write: number[]; commit: number[]; read: number[] }>(
  SQLITE_DRIVERS.map((d) => [d, { write: [], commit: [], read: [] }]),
);
await round('node'); // warm-up of both drivers, unmeasured
await round('better-sqlite3');
for (let r = 0; r < rounds; r++) {
  // Alternate which driver goes first, so that neither always runs on a warmer machine.
  const order = r % 2 === 0 ? SQLITE_DRIVERS : [...SQLITE_DRIVERS].reverse();
  for (const driver of order) {
    const m = await round(driver);
    const into = results.get(driver);
    into?.write.push(m.write);
    into?.commit.push(m.commit);
    into?.read.push(m.read);
  }
}
console.log(
  `node ${process.version}, ${os.cpus().length} cores, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(`| driver | n | commit of n rows, ms | µs per row committed | listActions of n, ms | µs per row read |`);
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [driver, r] of results) {
  const commit = median(r.commit);
  const read = median(r.read);
  console.log(
    `| ${driver} | ${n} | ${commit.toFixed(0)} | ${((commit * 1000) / n).toFixed(2)} | ${read.toFixed(0)} | ` +
      `${((read * 1000) / n).toFixed(2)} |`,
  );
}
