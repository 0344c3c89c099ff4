/**
 * Sync tasks on the worker-thread pool: CPU-bound fan-out at concurrency 1 vs 2 (measured side by side, same
 * process), and the per-call cost of a trivial sync child (blocking call from a sync body) next to an async one.
 *
 *   node --conditions=flyte-source --import tsx bench/sync.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as flyte from 'flyte-ts';
import { asyncCalls, fanOut, syncCalls } from './sync-tasks.js';

const ITEMS = 8;
const BUSY_MS = 400;
const CALLS = 300;

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const root = await mkdtemp(path.join(os.tmpdir(), 'flyte-bench-sync-'));
flyte.init({ root, echoLogs: false, threads: Math.max(2, os.availableParallelism()) });
try {
  // Warm the pool (thread start and module load are not what is measured).
  await (await flyte.run(fanOut, 2, 1, 2)).outputs();
  await (await flyte.run(syncCalls, 20)).outputs();
  await (await flyte.run(asyncCalls, 20)).outputs();

  const c1: number[] = [];
  const c2: number[] = [];
  for (let round = 0; round < 2; round++) {
    c1.push(await timed(async () => (await flyte.run(fanOut, ITEMS, BUSY_MS, 1)).outputs()));
    c2.push(await timed(async () => (await flyte.run(fanOut, ITEMS, BUSY_MS, 2)).outputs()));
  }
  const best1 = Math.min(...c1);
  const best2 = Math.min(...c2);
  const syncMs = await timed(async () => (await flyte.run(syncCalls, CALLS)).outputs());
  const asyncMs = await timed(async () => (await flyte.run(asyncCalls, CALLS)).outputs());

  console.log(`cores: ${os.availableParallelism()}; node ${process.version}`);
  console.table({
    [`fan-out ${ITEMS} x ${BUSY_MS} ms, concurrency 1`]: { ms: Math.round(best1) },
    [`fan-out ${ITEMS} x ${BUSY_MS} ms, concurrency 2`]: { ms: Math.round(best2) },
    'speedup (c1 / c2)': { ms: Number((best1 / best2).toFixed(2)) },
  });
  console.table({
    'trivial sync child (blocking call from a sync body)': { 'µs per call': Math.round((syncMs * 1000) / CALLS) },
    'trivial async child (await from an async body)': { 'µs per call': Math.round((asyncMs * 1000) / CALLS) },
  });
} finally {
  await flyte.shutdown();
  await rm(root, { recursive: true, force: true });
}
