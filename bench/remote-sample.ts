/**
 * One sample of `npm run bench:remote`, in a process of its own: fresh worker processes, a fresh Postgres
 * schema and Redis prefix, an unmeasured warm-up, the measured run, then everything removed. Prints one JSON
 * line ({@link SampleResult}) on stdout. `bench/remote.ts` runs it in interleaved rounds.
 *
 * ```sh
 * node --conditions=flyte-source --import tsx bench/remote-sample.ts --contender flyte --workers 2 --n 20000
 * node --conditions=flyte-source --import tsx bench/remote-sample.ts --contender bullmq --workers 1 --n 20000
 * node --conditions=flyte-source --import tsx bench/remote-sample.ts --contender chain --n 2000
 * node --conditions=flyte-source --import tsx bench/remote-sample.ts --contender hold --n 10000
 * ```
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import * as flyte from 'flyte-ts';
import { queueName } from '../src/engine/engine.js';
import { deletePrefix, REDIS_TEST_URL, urlWithPrefix } from '../test/support/redis.js';
import { startWorker, type WorkerProcess } from '../test/support/workers.js';
import * as tasks from './remote-tasks.js';
import { cpuOf, procUsage } from './proc.js';
import { benchStore, serverCpuMs } from './stores.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TASKS = path.join(HERE, 'remote-tasks.ts');
const RAW_WORKER = path.join(HERE, 'remote-raw-worker.ts');
/** A lock long enough that no bench job is ever taken over (the default of `flyte worker`). */
const LOCK_MS = 30_000;
/** `FLYTE_BENCH_WORKER_PROF=DIR`: every flyte worker writes a V8 CPU profile into DIR when it exits. */
const PROFILE_DIR = process.env['FLYTE_BENCH_WORKER_PROF'] || undefined;

export const CONTENDERS = ['flyte', 'bullmq', 'chain', 'hold'] as const;
export type ContenderKind = (typeof CONTENDERS)[number];

/** The line a sample prints. */
export interface SampleResult {
  readonly contender: ContenderKind;
  readonly workers: number;
  readonly n: number;
  readonly wallMs: number;
  /** Jobs or actions per second: n / wall (the parent not counted). */
  readonly perSecond: number;
  /** Peak RSS of each worker process over the whole sample (warm-up included). */
  readonly workerPeakRssMiB: readonly number[];
  /** CPU of all worker processes over the measured span. */
  readonly workerCpuMs: number;
  /** CPU of the Postgres backends serving the store's connections over the measured span (flyte only). */
  readonly serverCpuMs: number | null;
  /** The run's actions read back, all succeeded (flyte), or every job counted done by the workers (bullmq). */
  readonly verified: boolean;
  /** chain: each child round trip, ms, as timed by the parent. */
  readonly latency?: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  /** hold: the worker of the parents, idle and while it held them all. */
  readonly hold?: { readonly idleRssMiB: number; readonly holdingRssMiB: number; readonly fillMs: number };
  readonly loadavg: readonly number[];
  /** The Postgres schema (flyte only) and the Redis key prefix of the sample, both removed at its end. */
  readonly schema: string | null;
  readonly prefix: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Spawns `bench/remote-raw-worker.ts` and resolves once it printed `ready`. */
async function startRawWorker(prefix: string, queue: string, concurrency: number): Promise<RawWorker> {
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      RAW_WORKER,
      '--redis',
      REDIS_TEST_URL,
      '--prefix',
      prefix,
      '--queue',
      queue,
      '--concurrency',
      String(concurrency),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (text.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the raw BullMQ worker exited (${code}) before it was ready`)));
  });
  return { child, pid: child.pid as number };
}

interface RawWorker {
  readonly child: ChildProcess;
  readonly pid: number;
}

async function stopRaw(w: RawWorker): Promise<void> {
  const exited = new Promise((resolve) => w.child.once('exit', resolve));
  w.child.kill('SIGTERM');
  await exited;
}

/** The engine floor: `addBulk` of `n` trivial jobs, timed until no job is left waiting or active. */
async function bullmq(n: number, workers: number, concurrency: number, warmup: number): Promise<SampleResult> {
  const prefix = `bench_raw_${process.pid}`;
  const name = 'raw';
  const connection = new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix });
  const procs = await Promise.all(Array.from({ length: workers }, () => startRawWorker(prefix, name, concurrency)));
  const pids = procs.map((p) => p.pid);
  try {
    const batch = async (count: number): Promise<number> => {
      const t0 = performance.now();
      await queue.addBulk(
        Array.from({ length: count }, (_, x) => ({
          name: 'double',
          data: { x },
          opts: { removeOnComplete: true, removeOnFail: false },
        })),
      );
      for (;;) {
        const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
        if (Object.values(c).every((v) => v === 0)) break;
        await sleep(5);
      }
      return performance.now() - t0;
    };
    if (warmup > 0) await batch(warmup);
    const cpu0 = cpuOf(pids);
    const wallMs = await batch(n);
    const workerCpuMs = cpuOf(pids) - cpu0;
    const failed = await queue.getFailedCount();
    const workerPeakRssMiB = pids.map((pid) => procUsage(pid).peakRssMiB);
    return {
      contender: 'bullmq',
      workers,
      n,
      wallMs,
      perSecond: (n / wallMs) * 1000,
      workerPeakRssMiB,
      workerCpuMs,
      serverCpuMs: null,
      verified: failed === 0,
      loadavg: os.loadavg(),
      schema: null,
      prefix,
    };
  } finally {
    await Promise.all(procs.map(stopRaw));
    await queue.close();
    connection.disconnect();
    await deletePrefix(prefix);
  }
}

/**
 * A flyte-ts sample: fresh workers on a fresh schema (of `FLYTE_BENCH_PG_URL`'s database) and a fresh key prefix
 * (of `FLYTE_TEST_REDIS_URL`), `flyte.init` here, `use`, then cleanup. Also the distributed contenders of
 * `npm run bench:peers`.
 */
export async function withFlyte<T>(
  workerSpecs: readonly { readonly env?: string; readonly concurrency: number }[],
  use: (ctx: FlyteCtx) => Promise<T>,
): Promise<T> {
  const store = benchStore('postgres', 1);
  const prefix = `bench_remote_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  flyte.init({ root: store.root, store: store.spec, engine, echoLogs: false });
  const workers: WorkerProcess[] = [];
  const start = async (spec: { readonly env?: string; readonly concurrency: number }): Promise<WorkerProcess> => {
    const w = await startWorker({
      modules: [TASKS],
      store: store.spec!,
      engine,
      concurrency: spec.concurrency,
      lockMs: LOCK_MS,
      extraArgs: spec.env === undefined ? [] : ['--env', spec.env],
      nodeArgs: PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`],
    });
    workers.push(w);
    return w;
  };
  try {
    // The first worker migrates the schema; the others start once it exists.
    const first = workerSpecs[0] === undefined ? [] : [await start(workerSpecs[0])];
    const rest = await Promise.all(workerSpecs.slice(1).map(start));
    const where = { schema: store.where.replace(/^schema /, ''), prefix };
    return await use({ store, prefix, where, workers: [...first, ...rest], start });
  } finally {
    await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    await flyte.shutdown();
    await store.dispose();
    await deletePrefix(prefix);
  }
}

/** What {@link withFlyte} hands its callback. */
export interface FlyteCtx {
  readonly store: ReturnType<typeof benchStore>;
  readonly prefix: string;
  /** What a result says of where it was: the schema and the prefix. */
  readonly where: { readonly schema: string; readonly prefix: string };
  readonly workers: readonly WorkerProcess[];
  readonly start: (spec: { readonly env?: string; readonly concurrency: number }) => Promise<WorkerProcess>;
}

/** True when the run recorded `count` actions, all succeeded. */
async function fullyRecorded(run: flyte.Run, count: number): Promise<boolean> {
  const actions = await run.actions();
  return actions.length === count && actions.every((a) => a.phase === 'succeeded');
}

async function flyteFanOut(n: number, workers: number, concurrency: number, warmup: number): Promise<SampleResult> {
  const specs = Array.from({ length: workers }, () => ({ concurrency }));
  return withFlyte(specs, async ({ store, where, workers: procs }) => {
    const pids = procs.map((w) => w.pid);
    if (warmup > 0) {
      const w = await flyte.run(tasks.fanOut, warmup, concurrency);
      if ((await w.outputs()) !== warmup * (warmup - 1)) throw new Error('warm-up: wrong sum');
    }
    const cpu0 = cpuOf(pids);
    const server0 = await store.serverCpu();
    const t0 = performance.now();
    const run = await flyte.run(tasks.fanOut, n, concurrency);
    const record = await run.wait();
    const wallMs = performance.now() - t0;
    const workerCpuMs = cpuOf(pids) - cpu0;
    const serverCpu = serverCpuMs(server0, await store.serverCpu()) ?? null;
    const sum = await run.outputs();
    const verified = record.phase === 'succeeded' && sum === n * (n - 1) && (await fullyRecorded(run, n + 1));
    return {
      contender: 'flyte',
      workers,
      n,
      wallMs,
      perSecond: (n / wallMs) * 1000,
      workerPeakRssMiB: pids.map((pid) => procUsage(pid).peakRssMiB),
      workerCpuMs,
      serverCpuMs: serverCpu,
      verified,
      loadavg: os.loadavg(),
      ...where,
    };
  });
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function flyteChain(n: number, concurrency: number, warmup: number): Promise<SampleResult> {
  return withFlyte([{ concurrency }], async ({ store, where, workers: procs }) => {
    const pids = procs.map((w) => w.pid);
    if (warmup > 0) await (await flyte.run(tasks.chain, Math.min(warmup, 200))).outputs();
    const cpu0 = cpuOf(pids);
    const server0 = await store.serverCpu();
    const t0 = performance.now();
    const run = await flyte.run(tasks.chain, n);
    const out = await run.outputs();
    const wallMs = performance.now() - t0;
    const workerCpuMs = cpuOf(pids) - cpu0;
    const serverCpu = serverCpuMs(server0, await store.serverCpu()) ?? null;
    const sorted = [...out.ms].sort((a, b) => a - b);
    return {
      contender: 'chain',
      workers: 1,
      n,
      wallMs,
      perSecond: (n / wallMs) * 1000,
      workerPeakRssMiB: pids.map((pid) => procUsage(pid).peakRssMiB),
      workerCpuMs,
      serverCpuMs: serverCpu,
      verified: out.sum === n * (n - 1) && out.ms.length === n && (await fullyRecorded(run, n + 1)),
      latency: {
        p50: quantile(sorted, 0.5),
        p90: quantile(sorted, 0.9),
        p99: quantile(sorted, 0.99),
        max: sorted[sorted.length - 1]!,
      },
      loadavg: os.loadavg(),
      ...where,
    };
  });
}

/**
 * One worker (of `bench_hold`) holds `n` waiting parents: their grandchildren wait in `bench_gate`'s queue,
 * which no worker takes until every one of them is enqueued and the worker's RSS is read. Then a second worker
 * takes that queue (the signal) and the run ends.
 */
async function flyteHold(n: number, concurrency: number): Promise<SampleResult> {
  return withFlyte(
    [{ env: 'bench_hold', concurrency }],
    async ({ prefix, where, workers: procs, start: startMore }) => {
      const holder = procs[0]!;
      await sleep(1_000);
      const idleRssMiB = procUsage(holder.pid).rssMiB;
      const connection = new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: null });
      const gateQueue = new Queue(queueName('bench_gate'), { connection, prefix });
      try {
        const t0 = performance.now();
        const run = await flyte.run(tasks.holdRoot, n);
        while ((await gateQueue.getWaitingCount()) < n) await sleep(20);
        const fillMs = performance.now() - t0;
        await sleep(1_000); // every parent has subscribed and parked by now; let the worker settle
        const holdingRssMiB = procUsage(holder.pid).rssMiB;
        await startMore({ env: 'bench_gate', concurrency });
        const sum = await run.outputs();
        const wallMs = performance.now() - t0;
        return {
          contender: 'hold',
          workers: 1,
          n,
          wallMs,
          perSecond: (n / wallMs) * 1000,
          workerPeakRssMiB: [procUsage(holder.pid).peakRssMiB],
          workerCpuMs: cpuOf([holder.pid]),
          serverCpuMs: null,
          verified: sum === (n * (n + 1)) / 2 && (await fullyRecorded(run, 2 * n + 1)),
          hold: { idleRssMiB, holdingRssMiB, fillMs },
          loadavg: os.loadavg(),
          ...where,
        };
      } finally {
        await gateQueue.close();
        connection.disconnect();
      }
    },
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      contender: { type: 'string' },
      workers: { type: 'string', default: '1' },
      n: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '64' },
      warmup: { type: 'string', default: '1000' },
    },
  });
  const contender = values.contender as ContenderKind;
  const n = Number(values.n);
  const workers = Number(values.workers);
  const concurrency = Number(values.concurrency);
  const warmup = Number(values.warmup);
  let result: SampleResult;
  switch (contender) {
    case 'flyte':
      result = await flyteFanOut(n, workers, concurrency, warmup);
      break;
    case 'bullmq':
      result = await bullmq(n, workers, concurrency, warmup);
      break;
    case 'chain':
      result = await flyteChain(n, concurrency, warmup);
      break;
    case 'hold':
      result = await flyteHold(n, concurrency);
      break;
    default:
      throw new RangeError(`--contender: expected one of ${CONTENDERS.join(', ')}; received ${String(contender)}`);
  }
  console.log(JSON.stringify(result));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
