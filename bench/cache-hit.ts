/**
 * What a cache hit costs, side by side with an executed no-op action, in one process and one SQLite store.
 *
 * A parent calls N children, once as a `Promise.all` fan-out and once as a loop of sequential awaits, in three
 * ways: N cache hits (a task with `cache: 'auto'` whose entries were written by an unmeasured run first), N
 * executed no-op actions (the same body, cache disabled), and the plain function without flyte. Each is repeated
 * (alternating) and the median reported, as µs per action and as a ratio to the executed no-op.
 *
 * ```sh
 * node --conditions=flyte-source --import tsx bench/cache-hit.ts                     # n = 20 000, 5 runs each
 * node --conditions=flyte-source --import tsx bench/cache-hit.ts --n 5000 --runs 3
 * node --conditions=flyte-source --import tsx bench/cache-hit.ts --store memory      # diagnostic: no durable record
 * ```
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'bench_cache' });

let executions = 0;

export const noop = env.task(async function noop(i: number) {
  executions++;
  return i;
});

export const cachedNoop = env.task({ cache: 'auto' }, async function cachedNoop(i: number) {
  executions++;
  return i;
});

export const executedFanOut = env.task(async function executedFanOut(n: number) {
  const out = await Promise.all(Array.from({ length: n }, (_, i) => noop(i)));
  return out.length;
});

export const cachedFanOut = env.task(async function cachedFanOut(n: number) {
  const out = await Promise.all(Array.from({ length: n }, (_, i) => cachedNoop(i)));
  return out.length;
});

export const executedLoop = env.task(async function executedLoop(n: number) {
  let count = 0;
  for (let i = 0; i < n; i++) count += (await noop(i)) === i ? 1 : 0;
  return count;
});

export const cachedLoop = env.task(async function cachedLoop(n: number) {
  let count = 0;
  for (let i = 0; i < n; i++) count += (await cachedNoop(i)) === i ? 1 : 0;
  return count;
});

async function plainNoop(i: number): Promise<number> {
  executions++;
  return i;
}

interface Measurement {
  readonly ms: number;
  readonly executions: number;
  readonly cacheHits: number;
}

async function measureRun(
  task: flyte.Task<[number], Promise<number>>,
  n: number,
  countHits: boolean,
): Promise<Measurement> {
  executions = 0;
  const t0 = performance.now();
  const run = await flyte.run(task, n);
  const got = await run.outputs();
  const ms = performance.now() - t0;
  if (got !== n) throw new Error(`expected ${n} results; received ${got}`);
  const ran = executions;
  let cacheHits = 0;
  if (countHits) cacheHits = (await run.actions()).filter((a) => a.cacheHit).length;
  return { ms, executions: ran, cacheHits };
}

async function measurePlain(n: number, sequential: boolean): Promise<Measurement> {
  executions = 0;
  const t0 = performance.now();
  let got = 0;
  if (sequential) {
    for (let i = 0; i < n; i++) got += (await plainNoop(i)) === i ? 1 : 0;
  } else {
    got = (await Promise.all(Array.from({ length: n }, (_, i) => plainNoop(i)))).length;
  }
  const ms = performance.now() - t0;
  if (got !== n) throw new Error('the plain fan-out lost results');
  return { ms, executions, cacheHits: 0 };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`--${name}: expected a positive integer; received ${JSON.stringify(text)}`);
  }
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '20000' },
      runs: { type: 'string', default: '5' },
      store: { type: 'string', default: 'sqlite' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('Usage: bench/cache-hit.ts [--n 20000] [--runs 5] [--store sqlite|memory]');
    return;
  }
  const n = positiveInteger('n', values.n);
  const runs = positiveInteger('runs', values.runs);
  if (values.store !== 'sqlite' && values.store !== 'memory') {
    throw new RangeError(`--store: expected sqlite or memory; received ${JSON.stringify(values.store)}`);
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'flyte-bench-cache-'));
  flyte.init({ root, store: values.store === 'memory' ? 'memory:' : undefined, echoLogs: false });
  try {
    // Unmeasured: write the N cache entries, and warm up every path.
    const fill = await measureRun(cachedFanOut, n, false);
    if (fill.executions !== n) throw new Error(`the fill run executed ${fill.executions} of ${n}`);
    await measureRun(executedFanOut, Math.min(n, 2000), false);
    await measureRun(cachedLoop, Math.min(n, 2000), false);
    await measureRun(executedLoop, Math.min(n, 2000), false);
    await measurePlain(n, false);

    const shapes = [
      { shape: 'Promise.all fan-out', cached: cachedFanOut, executed: executedFanOut, sequential: false },
      { shape: 'sequential awaits', cached: cachedLoop, executed: executedLoop, sequential: true },
    ];
    console.log(
      `\nflyte-ts: cache hit vs executed no-op action. n = ${n} children per run, median of ${runs} runs, ` +
        `store ${values.store}, Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}\n`,
    );
    console.log('| shape | scenario | total ms | µs / action | vs executed no-op |');
    console.log('|---|---|---:|---:|---:|');
    for (const { shape, cached, executed, sequential } of shapes) {
      const hits: number[] = [];
      const ran: number[] = [];
      const plain: number[] = [];
      for (let r = 0; r < runs; r++) {
        const hit = await measureRun(cached, n, r === 0);
        if (hit.executions !== 0) throw new Error(`a cache-hit run executed ${hit.executions} bodies`);
        if (r === 0 && hit.cacheHits !== n) throw new Error(`expected ${n} cache hits; recorded ${hit.cacheHits}`);
        hits.push(hit.ms);
        const done = await measureRun(executed, n, false);
        if (done.executions !== n) throw new Error(`the executed run ran ${done.executions} of ${n}`);
        ran.push(done.ms);
        plain.push((await measurePlain(n, sequential)).ms);
      }
      const usPer = (ms: number): number => (ms * 1000) / n;
      const executedUs = usPer(median(ran));
      const rows: Array<[string, number]> = [
        ['cache hit (`cache: auto`, entry present)', median(hits)],
        ['executed no-op (cache disabled)', median(ran)],
        ['plain async function (no flyte)', median(plain)],
      ];
      for (const [name, ms] of rows) {
        const us = usPer(ms);
        console.log(`| ${shape} | ${name} | ${ms.toFixed(1)} | ${us.toFixed(2)} | ${(us / executedUs).toFixed(2)}× |`);
      }
    }
    console.log(
      `\nEvery measured cache-hit run ran no body, and the first of each shape recorded ${n} cacheHit actions.`,
    );
  } finally {
    await flyte.shutdown();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
