/**
 * `npm run bench:remote`: distributed mode on this machine, `flyte worker` processes on Redis (BullMQ) and
 * Postgres, side by side with raw BullMQ (a plain `Queue` + `Worker`, the engine floor). Every sample runs in a
 * fresh process (`bench/remote-sample.ts`) with fresh workers, a fresh schema and key prefix; contenders are
 * interleaved in rounds and medians reported. Prints Markdown tables and writes `bench/results/remote-latest.json`.
 *
 * ```sh
 * npm run bench:remote                                     # everything, 3 rounds
 * npm run bench:remote -- --n 5000 --rounds 1              # quicker
 * npm run bench:remote -- --only bullmq-1w,flyte-1w        # some contenders
 * ```
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ContenderKind, SampleResult } from './remote-sample.js';
import { integer, median } from './stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SAMPLE = path.join(HERE, 'remote-sample.ts');

/** Goals of issue 11. */
const TARGET_RATIO = 0.7;
const TARGET_P50_MS = 3;

interface Contender {
  readonly key: string;
  readonly kind: ContenderKind;
  readonly workers: number;
  /** What it is compared with (throughput). */
  readonly vs?: string;
}

const ALL: readonly Contender[] = [
  { key: 'bullmq-1w', kind: 'bullmq', workers: 1 },
  { key: 'flyte-1w', kind: 'flyte', workers: 1, vs: 'bullmq-1w' },
  { key: 'bullmq-2w', kind: 'bullmq', workers: 2 },
  { key: 'flyte-2w', kind: 'flyte', workers: 2, vs: 'bullmq-2w' },
  { key: 'chain', kind: 'chain', workers: 1 },
  { key: 'hold', kind: 'hold', workers: 1 },
];

const HELP = `Usage: npm run bench:remote -- [options]

  --n N              children of the fan-out, jobs of raw BullMQ (default 20000)
  --chain N          children of the sequential chain (default 2000)
  --hold N           waiting parents of the memory bench (default 10000)
  --rounds R         interleaved rounds; every contender once per round (default 3)
  --concurrency C    worker concurrency and flyte.map concurrency (default 64)
  --warmup W         children (jobs) of the unmeasured warm-up in each sample (default 1000)
  --only LIST        comma-separated contenders: ${ALL.map((c) => c.key).join(', ')}
  --out FILE         where to write the JSON results (default bench/results/remote-latest.json)
  --help             this text`;

function runSample(c: Contender, args: Record<string, number>): Promise<SampleResult> {
  const argv = [
    ...process.execArgv,
    SAMPLE,
    '--contender',
    c.kind,
    '--workers',
    String(c.workers),
    ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)]),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${c.key}: the sample exited ${code}:\n${out}`));
      try {
        resolve(JSON.parse(line) as SampleResult);
      } catch {
        reject(new Error(`${c.key}: no result line:\n${out}`));
      }
    });
  });
}

const int = (x: number): string => Math.round(x).toLocaleString('en-US').replace(/,/g, ' ');
const fix = (x: number, d = 1): string => x.toFixed(d);

/** The title, the header and the alignment row of a Markdown table: the first column left, the others right. */
function tableHead(title: string, columns: readonly string[]): string[] {
  return [title, '', `| ${columns.join(' | ')} |`, `| --- |${' --: |'.repeat(columns.length - 1)}`];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '20000' },
      chain: { type: 'string', default: '2000' },
      hold: { type: 'string', default: '10000' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '64' },
      warmup: { type: 'string', default: '1000' },
      only: { type: 'string' },
      out: { type: 'string', default: path.join(HERE, 'results', 'remote-latest.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return console.log(HELP);
  const n = integer('n', values.n, 1);
  const chainN = integer('chain', values.chain, 1);
  const holdN = integer('hold', values.hold, 1);
  const rounds = integer('rounds', values.rounds, 1);
  const concurrency = integer('concurrency', values.concurrency, 1);
  const warmup = integer('warmup', values.warmup, 0);
  const only = values.only?.split(',').map((s) => s.trim());
  const chosen = only === undefined ? ALL : ALL.filter((c) => only.includes(c.key));
  if (chosen.length === 0) throw new RangeError(`--only: none of ${ALL.map((c) => c.key).join(', ')}`);

  const startedAt = new Date();
  const loadStart = os.loadavg();
  console.error(`bench:remote ${startedAt.toISOString()} load ${loadStart.map((l) => l.toFixed(2)).join(' ')}`);
  const samples = new Map<string, SampleResult[]>(chosen.map((c) => [c.key, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const c of chosen) {
      const sizeOf = c.kind === 'chain' ? chainN : c.kind === 'hold' ? holdN : n;
      const r = await runSample(c, { n: sizeOf, concurrency, warmup });
      if (!r.verified) throw new Error(`${c.key}: round ${round}: the result was not verified: ${JSON.stringify(r)}`);
      samples.get(c.key)!.push(r);
      console.error(
        `round ${round} ${c.key}: ${int(r.wallMs)} ms, ${int(r.perSecond)}/s` +
          (r.latency ? `, p50 ${fix(r.latency.p50, 2)} ms p99 ${fix(r.latency.p99, 2)} ms` : '') +
          (r.hold ? `, idle ${fix(r.hold.idleRssMiB, 0)} → holding ${fix(r.hold.holdingRssMiB, 0)} MiB` : '') +
          `, load ${r.loadavg[0]!.toFixed(2)}`,
      );
    }
  }
  const loadEnd = os.loadavg();

  const wall = (key: string): number => median(samples.get(key)!.map((s) => s.wallMs));
  const lines: string[] = [];
  const throughput = chosen.filter((c) => c.kind === 'flyte' || c.kind === 'bullmq');
  if (throughput.length > 0) {
    lines.push(
      ...tableHead(
        `Throughput: a fan-out of ${int(n)} trivial children (\`flyte.map\`, concurrency ${concurrency}) / ${int(n)} raw BullMQ jobs (\`addBulk\`); worker concurrency ${concurrency}; ${rounds} rounds`,
        [
          'contender',
          'workers',
          'wall ms, median (min–max)',
          'per second',
          'vs raw BullMQ',
          'worker CPU ms',
          'Postgres CPU ms',
          'peak RSS per worker MiB',
        ],
      ),
    );
    for (const c of throughput) {
      const ss = samples.get(c.key)!;
      const w = ss.map((s) => s.wallMs);
      const vs = c.vs !== undefined && samples.has(c.vs) ? `${fix((wall(c.vs) / wall(c.key)) * 100, 0)} %` : '–';
      const server = ss.every((s) => s.serverCpuMs !== null) ? int(median(ss.map((s) => s.serverCpuMs!))) : '–';
      lines.push(
        `| \`${c.key}\` | ${c.workers} | ${int(median(w))} (${int(Math.min(...w))}–${int(Math.max(...w))}) | ${int((n / median(w)) * 1000)} | ${vs} | ${int(median(ss.map((s) => s.workerCpuMs)))} | ${server} | ${fix(median(ss.map((s) => Math.max(...s.workerPeakRssMiB))), 0)} |`,
      );
    }
    lines.push('');
  }
  const chain = samples.get('chain');
  if (chain !== undefined) {
    lines.push(
      ...tableHead(
        `Latency: a parent awaits ${int(chainN)} children one after the other, each await timed in the parent; 1 worker; ${rounds} rounds`,
        [
          'sample',
          'p50 ms',
          'p90 ms',
          'p99 ms',
          'max ms',
          'wall ms',
          'worker CPU µs per child',
          'Postgres CPU µs per child',
        ],
      ),
    );
    chain.forEach((s, i) => {
      const l = s.latency!;
      lines.push(
        `| round ${i + 1} | ${fix(l.p50, 2)} | ${fix(l.p90, 2)} | ${fix(l.p99, 2)} | ${fix(l.max, 1)} | ${int(s.wallMs)} | ${int((s.workerCpuMs * 1000) / chainN)} | ${s.serverCpuMs === null ? '–' : int((s.serverCpuMs * 1000) / chainN)} |`,
      );
    });
    const m = (f: (s: SampleResult) => number): number => median(chain.map(f));
    const q = (key: 'p50' | 'p90' | 'p99' | 'max', digits: number): string =>
      fix(
        m((s) => s.latency![key]),
        digits,
      );
    const [p50, p90, p99, max] = [q('p50', 2), q('p90', 2), q('p99', 2), q('max', 1)];
    const cpu = int((m((s) => s.workerCpuMs) * 1000) / chainN);
    const server = int((m((s) => s.serverCpuMs ?? 0) * 1000) / chainN);
    lines.push(
      `| **median** | **${p50}** | ${p90} | **${p99}** | ${max} | ${int(m((s) => s.wallMs))} | ${cpu} | ${server} |`,
      '',
    );
  }
  const hold = samples.get('hold');
  if (hold !== undefined) {
    lines.push(
      ...tableHead(
        `Memory: one worker holds ${int(holdN)} waiting parents (each awaits one grandchild queued on an environment no worker takes yet); ${rounds} rounds`,
        [
          'sample',
          'idle RSS MiB',
          'RSS holding all MiB',
          'added KiB per waiting parent',
          'peak RSS MiB (whole run)',
          'ms until all held',
        ],
      ),
    );
    hold.forEach((s, i) => {
      const h = s.hold!;
      lines.push(
        `| round ${i + 1} | ${fix(h.idleRssMiB, 0)} | ${fix(h.holdingRssMiB, 0)} | ${fix(((h.holdingRssMiB - h.idleRssMiB) * 1024) / holdN, 1)} | ${fix(s.workerPeakRssMiB[0]!, 0)} | ${int(h.fillMs)} |`,
      );
    });
    lines.push('');
  }
  const goals: string[] = [];
  for (const c of throughput.filter((t) => t.vs !== undefined && samples.has(t.vs))) {
    const ratio = wall(c.vs!) / wall(c.key);
    goals.push(
      `${c.key}: ${fix(ratio * 100, 0)} % of raw BullMQ (goal ≥ ${TARGET_RATIO * 100} %): ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'}`,
    );
  }
  if (chain !== undefined) {
    const p50 = median(chain.map((s) => s.latency!.p50));
    goals.push(`chain p50 ${fix(p50, 2)} ms (goal ≤ ${TARGET_P50_MS} ms): ${p50 <= TARGET_P50_MS ? 'met' : 'NOT met'}`);
  }
  lines.push(
    `Load average ${loadStart.map((l) => l.toFixed(2)).join(' / ')} at the start, ${loadEnd.map((l) => l.toFixed(2)).join(' / ')} at the end.`,
    '',
    ...goals.map((g) => `- ${g}`),
  );
  console.log(lines.join('\n'));

  mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
  writeFileSync(
    path.resolve(values.out),
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        endedAt: new Date().toISOString(),
        machine: {
          cpus: os.cpus().length,
          model: os.cpus()[0]?.model,
          memGiB: os.totalmem() / 2 ** 30,
          node: process.version,
        },
        loadStart,
        loadEnd,
        options: { n, chain: chainN, hold: holdN, rounds, concurrency, warmup },
        samples: Object.fromEntries(samples),
      },
      null,
      2,
    ),
  );
}

await main();
