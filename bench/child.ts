/**
 * Runs one scenario once, in a fresh process, and prints its measurements as one JSON line prefixed with
 * `BENCH_RESULT ` on stdout. Started by `run.ts`; can be run by hand to profile one scenario:
 *
 * ```sh
 * node --conditions=flyte-source --import tsx bench/child.ts --scenario flyte-map-0 --n 100000 --profile /tmp/map0.cpuprofile
 * node --conditions=flyte-source --import tsx bench/child.ts --scenario flyte-map-0 --store postgres --n 100000
 * node --import tsx bench/profile-summary.ts /tmp/map0.cpuprofile
 * ```
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as flyte from 'flyte-ts';
import { runtime } from '../src/internal/runtime.js';
import { timePostgresQueries, type PostgresTiming, type StatementTiming } from './pg-timing.js';
import { scenarios, type Scenario } from './scenarios.js';
import {
  benchStore,
  parseStores,
  serverCpuMs,
  storeCounters,
  type BenchStore,
  type StoreCounters,
  type StoreKind,
} from './stores.js';
import { expectedSum, fanOutMap, fanOutPromiseAll, rawPMap, rawPromiseAll } from './tasks.js';
import { traceActions, type SpanCounter } from './tracing.js';

/** What one child reports. Sizes in MiB, times in ms. */
export interface ChildResult {
  readonly scenario: string;
  /** The store the flyte scenario recorded into; `undefined` for raw scenarios. */
  readonly store: StoreKind | undefined;
  readonly n: number;
  /** Wall time of the fan-out; for flyte scenarios from `flyte.run` until `run.wait()` resolved (records committed). */
  readonly ms: number;
  /** CPU time (user + system, all threads of the process: GC helpers too) over the same span. */
  readonly cpuMs: number;
  /**
   * Postgres on this machine: CPU time of the server processes serving the store's connections over the same
   * span (processes that ended during it are not counted); `undefined` for other stores.
   */
  readonly serverCpuMs: number | undefined;
  /** RSS high-water mark of the whole process (`process.resourceUsage().maxRSS`). */
  readonly maxRssMiB: number;
  /** RSS just before the measured fan-out (node, tsx and the modules loaded, warm-up done). */
  readonly startRssMiB: number;
  /** Highest `heapUsed` seen by a 5 ms sampler and at the end of the fan-out (a lower bound of the true peak). */
  readonly peakHeapUsedMiB: number;
  /** `heapTotal` at the same moment: the heap V8 had reserved. */
  readonly peakHeapTotalMiB: number;
  /** For flyte scenarios: the run, the recorded actions by phase, and how long reading them back took. */
  readonly run?: {
    readonly name: string;
    readonly phase: string;
    readonly actions: number;
    readonly succeeded: number;
    readonly readBackMs: number;
    /** Size of the records after the run (SQLite file and WAL, or the Postgres schema's relations). */
    readonly storeMiB: number | undefined;
    /**
     * The store's counters over the measured span (commits, rows committed, statements), and the rows still
     * pending when `run.wait()` resolved; `undefined` on the memory store.
     */
    readonly committed: StoreCounters | undefined;
  };
  /** With `--pg-timing`: the Postgres statements of the measured span, by kind (see `pg-timing.ts`). */
  readonly pgTiming?: readonly StatementTiming[];
  /** For a traced scenario: the spans ended during the measured span (n + 1 expected: every action's). */
  readonly spans?: number;
}

const MiB = 1024 * 1024;

interface ChildOptions {
  readonly scenario: Scenario;
  readonly n: number;
  readonly warmup: number;
  readonly store: StoreKind;
  /** Which sample of the scenario this process is: names the Postgres schema `bench_<pid>_<sample>`. */
  readonly sample: number;
  readonly keep: boolean;
  /** Time every Postgres statement of the measured span. */
  readonly pgTiming: boolean;
  /** Where to write a V8 CPU profile of the measured fan-out only (not start-up, warm-up or read-back). */
  readonly profile: string | undefined;
}

function parse(): ChildOptions {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      n: { type: 'string', default: '100000' },
      concurrency: { type: 'string', default: '64' },
      warmup: { type: 'string', default: '1000' },
      store: { type: 'string', default: 'sqlite' },
      sample: { type: 'string', default: '1' },
      keep: { type: 'boolean', default: false },
      'pg-timing': { type: 'boolean', default: false },
      profile: { type: 'string' },
    },
  });
  const concurrency = Number(values.concurrency);
  const scenario = scenarios(concurrency).find((s) => s.name === values.scenario);
  if (scenario === undefined) {
    throw new RangeError(
      `--scenario: expected one of ${scenarios(concurrency)
        .map((s) => s.name)
        .join(', ')}; received ${String(values.scenario)}`,
    );
  }
  const n = Number(values.n);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--n: expected a positive integer; received ${values.n}`);
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new RangeError(`--warmup: expected a non-negative integer; received ${values.warmup}`);
  }
  const stores = parseStores(values.store);
  if (stores.length !== 1) throw new RangeError(`--store: expected one store; received ${values.store}`);
  const sample = Number(values.sample);
  if (!Number.isInteger(sample) || sample < 1) {
    throw new RangeError(`--sample: expected a positive integer; received ${values.sample}`);
  }
  return {
    scenario,
    n,
    warmup,
    store: stores[0] as StoreKind,
    sample,
    keep: values.keep,
    pgTiming: values['pg-timing'],
    profile: values.profile,
  };
}

/** Samples the heap every 5 ms (whenever the event loop gets a turn). */
class HeapSampler {
  used = 0;
  total = 0;
  readonly #timer = setInterval(() => this.sample(), 5);

  sample(): void {
    const m = process.memoryUsage();
    if (m.heapUsed > this.used) {
      this.used = m.heapUsed;
      this.total = m.heapTotal;
    }
  }

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}

async function startProfiler(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return session;
}

async function stopProfiler(session: Session, file: string): Promise<void> {
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(profile));
  process.stderr.write(`CPU profile of the measured fan-out: ${file}\n`);
}

/** Starts the fan-out of `n` children for the scenario; for flyte scenarios, resolves with the finished run. */
async function fanOut(scenario: Scenario, n: number): Promise<{ value: unknown; run?: flyte.Run }> {
  const c = scenario.concurrency ?? 0;
  switch (scenario.name) {
    case 'promise-all':
      return { value: await rawPromiseAll(n) };
    case `p-map-${c}`:
      return { value: await rawPMap(n, c === 0 ? Infinity : c) };
    case 'flyte-promise-all': {
      const run = await flyte.run(fanOutPromiseAll, n);
      await run.wait();
      return { value: undefined, run };
    }
    default: {
      const run = await flyte.run(fanOutMap, n, c);
      await run.wait();
      return { value: undefined, run };
    }
  }
}

/** The measured run's records, read back through the public API. */
async function readBack(
  run: flyte.Run,
  store: BenchStore,
  committed: StoreCounters | undefined,
): Promise<NonNullable<ChildResult['run']>> {
  const t0 = performance.now();
  const stored = await flyte.getRun(run.name);
  // Streamed a page at a time, so that the read-back of a million actions does not hold them all.
  let count = 0;
  let succeeded = 0;
  for await (const a of stored.actions()) {
    count++;
    if (a.phase === 'succeeded') succeeded++;
  }
  const readBackMs = performance.now() - t0;
  return {
    name: run.name,
    phase: stored.phase,
    actions: count,
    succeeded,
    readBackMs,
    storeMiB: await store.size(),
    committed,
  };
}

/** `after − before` of each counter; the pending rows are `after`'s. */
function spanOf(before: StoreCounters | undefined, after: StoreCounters | undefined): StoreCounters | undefined {
  if (before === undefined || after === undefined) return undefined;
  return {
    commits: after.commits - before.commits,
    rowsWritten: after.rowsWritten - before.rowsWritten,
    pendingWrites: after.pendingWrites,
    commitStatements:
      after.commitStatements === undefined || before.commitStatements === undefined
        ? undefined
        : after.commitStatements - before.commitStatements,
  };
}

async function main(): Promise<void> {
  const { scenario, n, warmup, store: kind, sample, keep, pgTiming, profile } = parse();
  const timing: PostgresTiming | undefined = pgTiming ? timePostgresQueries() : undefined;
  const store = scenario.kind === 'flyte' ? benchStore(kind, sample) : undefined;
  const spans: SpanCounter | undefined = scenario.traced === true ? traceActions() : undefined;
  if (store !== undefined) {
    flyte.init({ root: store.root, ...(store.spec === undefined ? {} : { store: store.spec }), echoLogs: false });
  }
  try {
    // A small fan-out first, so the measurement is of steady-state code (JIT, store open), not of start-up.
    if (warmup > 0) {
      const w = await fanOut(scenario, warmup);
      if (w.run !== undefined) await w.run.outputs();
    }
    const profiler = profile === undefined ? undefined : await startProfiler();
    const startRss = process.memoryUsage().rss;
    const sampler = new HeapSampler();
    const runStore = store === undefined ? undefined : runtime().store;
    const before = runStore === undefined ? undefined : storeCounters(runStore);
    const server0 = await store?.serverCpu();
    timing?.take(); // after the query above: only the measured span's statements
    const spans0 = spans?.ended ?? 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { value, run } = await fanOut(scenario, n);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const committed = spanOf(before, runStore === undefined ? undefined : storeCounters(runStore));
    const statements = timing?.take();
    const serverCpu = serverCpuMs(server0, await store?.serverCpu());
    sampler.stop();
    if (profiler !== undefined) await stopProfiler(profiler, profile as string);
    const maxRssMiB = (process.resourceUsage().maxRSS * 1024) / MiB;

    const traced = spans === undefined ? undefined : spans.ended - spans0;
    if (traced !== undefined && traced !== n + 1) {
      throw new Error(`${scenario.name}: expected ${n + 1} spans, one per action; received ${traced}`);
    }
    const output = run === undefined ? value : await run.outputs();
    if (output !== expectedSum(n)) {
      throw new Error(`${scenario.name}: expected the sum ${expectedSum(n)}; received ${String(output)}`);
    }
    const result: ChildResult = {
      scenario: scenario.name,
      store: store?.kind,
      n,
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      serverCpuMs: serverCpu,
      maxRssMiB,
      startRssMiB: startRss / MiB,
      peakHeapUsedMiB: sampler.used / MiB,
      peakHeapTotalMiB: sampler.total / MiB,
      ...(run === undefined || store === undefined ? {} : { run: await readBack(run, store, committed) }),
      ...(statements === undefined ? {} : { pgTiming: statements }),
      ...(traced === undefined ? {} : { spans: traced }),
    };
    process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
  } finally {
    if (store !== undefined) {
      await flyte.shutdown();
      if (keep) process.stderr.write(`kept the store of ${scenario.name} in ${store.where} (and ${store.root})\n`);
      else await store.dispose();
    }
  }
}

await main();
