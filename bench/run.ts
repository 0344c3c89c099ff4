/**
 * `npm run bench`: a 100 000-child async fan-out in one local run, fully recorded in SQLite, side by side with
 * raw `Promise.all` and p-map over the same function. Each measurement runs in a fresh child process (so peak
 * memory is per scenario), each scenario is repeated and its median reported. Prints a Markdown table and writes
 * `bench/results/latest.json`.
 *
 * ```sh
 * npm run bench                                  # every scenario, n = 100 000, 3 runs each
 * npm run bench -- --n 10000 --runs 1            # quicker
 * npm run bench -- --only flyte-map              # flyte-map-0 and flyte-map-64, with their baselines
 * npm run bench -- --only flyte-map-0 --cpu-prof # a .cpuprofile per measured fan-out in bench/results/profiles/
 * ```
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildResult } from './child.js';
import { scenarios, select, type Scenario } from './scenarios.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(HERE, 'child.ts');
const RESULTS = path.join(HERE, 'results');

/** The targets of issue 2 ("Done when"). */
const TARGET_US_PER_ACTION = 20;
const TARGET_PEAK_MIB = 1024;

const HELP = `Usage: npm run bench -- [options]

  --n N              children in the fan-out (default 100000)
  --runs R           fresh processes per scenario; the median is reported (default 3)
  --only LIST        comma-separated scenario names or prefixes (baselines are added); e.g. flyte-map,p-map
  --concurrency C    concurrency of p-map and of the bounded flyte.map (default 64)
  --warmup W         children of an unmeasured fan-out run first in each process (default 1000)
  --store S          sqlite (default) or memory (diagnostic only: not a durable record)
  --cpu-prof         write a V8 CPU profile of each measured fan-out to bench/results/profiles/
                     (summarize with: node --import tsx bench/profile-summary.ts FILE...)
  --out FILE         where to write the JSON results (default bench/results/latest.json)
  --help             this text

Scenarios: ${scenarios(64)
  .map((s) => s.name)
  .join(', ')}`;

interface Options {
  readonly n: number;
  readonly runs: number;
  readonly only: string | undefined;
  readonly concurrency: number;
  readonly warmup: number;
  readonly store: string;
  readonly cpuProf: boolean;
  readonly out: string;
}

function integer(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`--${name}: expected an integer >= ${min}; received ${JSON.stringify(text)}`);
  }
  return value;
}

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '100000' },
      runs: { type: 'string', default: '3' },
      only: { type: 'string' },
      concurrency: { type: 'string', default: '64' },
      warmup: { type: 'string', default: '1000' },
      store: { type: 'string', default: 'sqlite' },
      'cpu-prof': { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(RESULTS, 'latest.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  if (values.store !== 'sqlite' && values.store !== 'memory') {
    throw new RangeError(`--store: expected sqlite or memory; received ${JSON.stringify(values.store)}`);
  }
  return {
    n: integer('n', values.n, 1),
    runs: integer('runs', values.runs, 1),
    only: values.only,
    concurrency: integer('concurrency', values.concurrency, 1),
    warmup: integer('warmup', values.warmup, 0),
    store: values.store,
    cpuProf: values['cpu-prof'],
    out: path.resolve(values.out),
  };
}

/** Runs one scenario in a fresh node process with this process's flags (`--conditions`, `--import tsx`). */
function runChild(scenario: Scenario, o: Options, round: number): Promise<ChildResult> {
  const args = [
    ...process.execArgv,
    CHILD,
    '--scenario',
    scenario.name,
    '--n',
    String(o.n),
    '--concurrency',
    String(o.concurrency),
    '--warmup',
    String(o.warmup),
    '--store',
    o.store,
    ...(o.cpuProf ? ['--profile', path.join(RESULTS, 'profiles', `${scenario.name}-${round}.cpuprofile`)] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
      if (code !== 0 || line === undefined) {
        reject(
          new Error(`${scenario.name}: child exited with ${signal ?? `code ${String(code)}`}; stdout:\n${stdout}`),
        );
        return;
      }
      resolve(JSON.parse(line.slice('BENCH_RESULT '.length)) as ChildResult);
    });
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The median of each measurement of one scenario, and its comparison with its baseline. */
interface Summary {
  readonly scenario: Scenario;
  readonly runs: readonly ChildResult[];
  readonly ms: number;
  readonly cpuMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly usPerAction: number;
  readonly maxRssMiB: number;
  readonly peakHeapUsedMiB: number;
  readonly startRssMiB: number;
  /** (median ms − baseline median ms) / n, in µs. */
  readonly addedUsPerAction: number | undefined;
  /** median ms / baseline median ms. */
  readonly ratio: number | undefined;
  /** Every run recorded n + 1 actions, all succeeded. */
  readonly fullyRecorded: boolean | undefined;
}

function summarize(
  scenario: Scenario,
  runs: readonly ChildResult[],
  n: number,
  baseline: Summary | undefined,
): Summary {
  const ms = median(runs.map((r) => r.ms));
  const recorded = runs.map((r) => r.run).filter((r) => r !== undefined);
  return {
    scenario,
    runs,
    ms,
    cpuMs: median(runs.map((r) => r.cpuMs)),
    minMs: Math.min(...runs.map((r) => r.ms)),
    maxMs: Math.max(...runs.map((r) => r.ms)),
    usPerAction: (ms * 1000) / n,
    maxRssMiB: median(runs.map((r) => r.maxRssMiB)),
    peakHeapUsedMiB: median(runs.map((r) => r.peakHeapUsedMiB)),
    startRssMiB: median(runs.map((r) => r.startRssMiB)),
    addedUsPerAction: baseline === undefined ? undefined : ((ms - baseline.ms) * 1000) / n,
    ratio: baseline === undefined ? undefined : ms / baseline.ms,
    fullyRecorded:
      scenario.kind === 'raw'
        ? undefined
        : recorded.length === runs.length &&
          recorded.every((r) => r.actions === n + 1 && r.succeeded === n + 1 && r.phase === 'succeeded'),
  };
}

const fixed = (v: number | undefined, digits = 1): string => (v === undefined ? '–' : v.toFixed(digits));

/** `yes, 3/3 runs` or the first run that did not record n + 1 succeeded actions. */
function recordedCell(s: Summary): string {
  if (s.fullyRecorded === true) return `yes, ${s.runs.length}/${s.runs.length} runs`;
  const bad = s.runs.find(
    (r) => r.run === undefined || r.run.succeeded !== r.run.actions || r.run.phase !== 'succeeded',
  );
  return `NO: ${bad?.run?.succeeded ?? 0} succeeded of ${bad?.run?.actions ?? 0}`;
}

function table(summaries: readonly Summary[], n: number): string {
  const header = [
    'scenario',
    'vs',
    'wall ms, median (min–max)',
    'CPU ms',
    'µs/action',
    'added µs/action',
    '× baseline',
    'peak RSS MiB',
    'peak heap MiB',
    `recorded ${n + 1}, all succeeded`,
  ];
  const rows = summaries.map((s) => [
    s.scenario.name,
    s.scenario.baseline ?? '–',
    `${fixed(s.ms, 0)} (${fixed(s.minMs, 0)}–${fixed(s.maxMs, 0)})`,
    fixed(s.cpuMs, 0),
    fixed(s.usPerAction, 2),
    fixed(s.addedUsPerAction, 2),
    s.ratio === undefined ? '–' : `${s.ratio.toFixed(0)}×`,
    fixed(s.maxRssMiB, 0),
    fixed(s.peakHeapUsedMiB, 0),
    s.fullyRecorded === undefined ? '–' : recordedCell(s),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tmpdir: os.tmpdir(),
    loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

async function main(): Promise<void> {
  const o = parseOptions();
  if (o === undefined) return;
  const chosen = select(scenarios(o.concurrency), o.only);
  const loadAtStart = os.loadavg().map((l) => Number(l.toFixed(2)));
  const results = new Map<string, ChildResult[]>(chosen.map((s) => [s.name, []]));
  console.log(
    `flyte-ts bench: n = ${o.n}, ${o.runs} run(s) per scenario, store ${o.store}, warm-up ${o.warmup}, ` +
      `${os.cpus().length} cores, Node ${process.version}, load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
  );
  // Rounds rather than all runs of one scenario in a row: drift of the machine spreads over every scenario.
  for (let round = 1; round <= o.runs; round++) {
    for (const s of chosen) {
      const r = await runChild(s, o, round);
      (results.get(s.name) as ChildResult[]).push(r);
      const rec =
        r.run === undefined
          ? ''
          : `, ${r.run.succeeded}/${r.run.actions} actions succeeded` +
            (r.run.commits === undefined ? '' : `, ${r.run.commits} commits`);
      console.log(
        `  round ${round}/${o.runs} ${s.name.padEnd(18)} ${r.ms.toFixed(0).padStart(7)} ms (CPU ${r.cpuMs.toFixed(0)} ms), ` +
          `peak RSS ${r.maxRssMiB.toFixed(0)} MiB${rec}`,
      );
    }
  }
  const summaries: Summary[] = [];
  for (const s of chosen) {
    const baseline = summaries.find((b) => b.scenario.name === s.baseline);
    summaries.push(summarize(s, results.get(s.name) as ChildResult[], o.n, baseline));
  }
  console.log(`\n${table(summaries, o.n)}\n`);

  const flyteRuns = summaries.filter((s) => s.scenario.kind === 'flyte');
  const worstAdded = Math.max(...flyteRuns.map((s) => s.addedUsPerAction ?? 0));
  const worstRss = Math.max(...summaries.map((s) => s.maxRssMiB));
  const allRecorded = flyteRuns.every((s) => s.fullyRecorded === true);
  if (flyteRuns.length > 0) {
    console.log(
      `target ≤ ${TARGET_US_PER_ACTION} µs added per action: ${worstAdded <= TARGET_US_PER_ACTION ? 'met' : 'MISSED'} ` +
        `(worst ${worstAdded.toFixed(1)} µs); peak < ${TARGET_PEAK_MIB} MiB: ` +
        `${worstRss < TARGET_PEAK_MIB ? 'met' : 'MISSED'} (worst ${worstRss.toFixed(0)} MiB); ` +
        `fully recorded: ${allRecorded ? 'yes' : 'NO'}`,
    );
  }

  const report = {
    date: new Date().toISOString(),
    machine: { ...machine(), loadAverageAtStart: loadAtStart },
    options: { ...o, out: undefined },
    targets: { usPerAction: TARGET_US_PER_ACTION, peakMiB: TARGET_PEAK_MIB },
    verdict: { worstAddedUsPerAction: worstAdded, worstPeakRssMiB: worstRss, fullyRecorded: allRecorded },
    scenarios: summaries.map((s) => ({
      name: s.scenario.name,
      kind: s.scenario.kind,
      description: s.scenario.description,
      baseline: s.scenario.baseline ?? null,
      medianMs: s.ms,
      medianCpuMs: s.cpuMs,
      usPerAction: s.usPerAction,
      addedUsPerAction: s.addedUsPerAction ?? null,
      ratio: s.ratio ?? null,
      peakRssMiB: s.maxRssMiB,
      peakHeapUsedMiB: s.peakHeapUsedMiB,
      startRssMiB: s.startRssMiB,
      fullyRecorded: s.fullyRecorded ?? null,
      runs: s.runs,
    })),
  };
  mkdirSync(path.dirname(o.out), { recursive: true });
  writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${path.relative(process.cwd(), o.out)}`);
  if (flyteRuns.length > 0 && !allRecorded) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  // A bad option is the user's mistake, not a crash: say what was expected, without a stack.
  if (!(err instanceof RangeError || (err instanceof TypeError && 'code' in err))) throw err;
  console.error(`bench: ${err.message}\n\n${HELP}`);
  process.exitCode = 2;
}
