/**
 * A sequential chain: a root task awaits `n` trivial children one after the other (`for … await child(i)`), in
 * one local run recorded in SQLite, side by side with the same loop of plain function calls. Reports µs per step
 * (wall time of the run / n) and how many SQLite commits the run took, which says how much of the chain a crash
 * could lose: a child's outcome reaches its parent only once it is committed, so a chain commits once per step.
 *
 * ```sh
 * node --conditions=flyte-source --import tsx bench/chain.ts              # n = 1 000, 5 rounds
 * node --conditions=flyte-source --import tsx bench/chain.ts --n 200 --rounds 3
 * ```
 * Prints a Markdown table. Each round runs in this process after a warm-up chain; the median is reported.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as flyte from 'flyte-ts';
import { runtime } from '../src/internal/runtime.js';
import { SqliteStore } from '../src/store/index.js';
import { median } from './stats.js';
import { chain, double } from './tasks.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '5' } },
});
const n = Number(values.n);
const rounds = Number(values.rounds);
if (!Number.isInteger(n) || n < 1) throw new RangeError(`--n: expected a positive integer; received ${values.n}`);
if (!Number.isInteger(rounds) || rounds < 1) {
  throw new RangeError(`--rounds: expected a positive integer; received ${values.rounds}`);
}

async function rawChain(steps: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < steps; i++) total += await double(i);
  return total;
}

const root = mkdtempSync(path.join(os.tmpdir(), 'flyte-bench-chain-'));
flyte.init({ root, echoLogs: false });
try {
  const store = runtime().store;
  if (!(store instanceof SqliteStore)) throw new Error(`expected the SQLite store; received ${store.description}`);
  await (await flyte.run(chain, 100)).outputs(); // warm-up: JIT, store open
  const raw: number[] = [];
  const ours: number[] = [];
  const commits: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    await rawChain(n);
    raw.push(performance.now() - t0);
    await store.flush();
    const before = store.stats.commits;
    t0 = performance.now();
    const run = await flyte.run(chain, n);
    const out = await run.outputs();
    ours.push(performance.now() - t0);
    commits.push(store.stats.commits - before);
    if (out !== n * (n - 1)) throw new Error(`chain: expected ${n * (n - 1)}; received ${String(out)}`);
    const actions = await run.actions();
    if (actions.length !== n + 1 || actions.some((a) => a.phase !== 'succeeded')) {
      throw new Error(`chain: expected ${n + 1} succeeded actions; received ${actions.length}`);
    }
  }
  const rawMs = median(raw);
  const ms = median(ours);
  console.log(
    `node ${process.version}, ${os.availableParallelism()} cores, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log('| chain of n awaited children | n | wall ms, median | µs per step | commits per run, median |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  console.log(
    `| raw \`for … await double(i)\` | ${n} | ${rawMs.toFixed(1)} | ${((rawMs * 1000) / n).toFixed(2)} | – |`,
  );
  console.log(
    `| flyte-ts local, SQLite | ${n} | ${ms.toFixed(1)} | ${((ms * 1000) / n).toFixed(1)} | ${median(commits)} |`,
  );
} finally {
  await flyte.shutdown();
  rmSync(root, { recursive: true, force: true });
}
