/**
 * One measurement of `npm run bench:peers`, in a process of its own: one contender, one workload. Sets the
 * contender up in the private services it is given, runs an unmeasured warm-up of the same workload, then the
 * measured one, checks its sum (and what it recorded), tears everything down and prints one line
 * `PEERS_RESULT {json}` ({@link SampleResult}). `run.ts` starts it in interleaved rounds, with the private
 * database and Redis made for it.
 *
 * ```sh
 * node --conditions=flyte-source --import tsx bench/peers/sample.ts --peer dbos-steps --workload fanout --n 10000 \
 *   --pg-url postgres://postgres@127.0.0.1:5432/peers_x --redis-url redis://127.0.0.1:16390
 * ```
 * @module
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { integer } from '../stats.js';
import { Meter, type SpanCost } from './measure.js';
import { expectedSum, PEERS, WORKLOADS, type Peer, type PeerContext, type Workload } from './peers.js';

/** What one sample prints. */
export interface SampleResult extends SpanCost {
  readonly peer: string;
  readonly workload: Workload;
  readonly n: number;
  /** Wall time of the measured run: from the parent's start until its result is back (and recorded). */
  readonly wallMs: number;
  readonly sum: number;
  /** Peak RSS of this process, MiB (warm-up included). */
  readonly selfPeakRssMiB: number;
  /** Peak RSS of each worker process, MiB (warm-up included). */
  readonly workerPeakRssMiB: readonly number[];
  /** Facts about the durability in force that only the contender can tell. */
  readonly durabilityFacts: Readonly<Record<string, string>>;
  readonly node: string;
  readonly loadavg: readonly number[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      peer: { type: 'string' },
      workload: { type: 'string' },
      n: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string', default: '64' },
      'pg-url': { type: 'string' },
      'redis-url': { type: 'string' },
    },
  });
  const info = PEERS.find((p) => p.name === values.peer);
  if (info === undefined) {
    throw new RangeError(`--peer: expected one of ${PEERS.map((p) => p.name).join(', ')}; received ${values.peer}`);
  }
  const workload = values.workload as Workload;
  if (!WORKLOADS.includes(workload)) {
    throw new RangeError(`--workload: expected one of ${WORKLOADS.join(', ')}; received ${values.workload}`);
  }
  const n = integer('n', values.n, 1);
  const warmup = integer('warmup', values.warmup, 0);
  const ctx: PeerContext = {
    pgUrl: values['pg-url'] ?? '',
    redisUrl: values['redis-url'] ?? '',
    concurrency: integer('concurrency', values.concurrency, 1),
  };
  const module = (await import(`./${info.module}.ts`)) as { peers: Record<string, Peer> };
  const peer = module.peers[info.name];
  if (peer === undefined) throw new Error(`./${info.module}.ts: expected an export peers['${info.name}']; none`);

  const meter = await Meter.open(info, ctx);
  try {
    const result = await peer(ctx, async (session): Promise<SampleResult> => {
      // The same workload, smaller, first: the measurement is of steady-state code, not of JIT or first connections.
      if (warmup > 0) {
        const w = await session.run(workload, warmup);
        if (w !== expectedSum(warmup))
          throw new Error(`${info.name} warm-up: expected ${expectedSum(warmup)}; received ${w}`);
      }
      const before = await meter.read(session);
      const t0 = performance.now();
      const sum = await session.run(workload, n);
      const wallMs = performance.now() - t0;
      const span = meter.span(before, await meter.read(session));
      if (sum !== expectedSum(n)) {
        throw new Error(`${info.name} ${workload}: expected the sum ${expectedSum(n)}; received ${sum}`);
      }
      await session.check?.(workload, n);
      const rss = Meter.peakRssMiB(session);
      return {
        peer: info.name,
        workload,
        n,
        wallMs,
        sum,
        ...span,
        selfPeakRssMiB: rss.self,
        workerPeakRssMiB: rss.workers,
        durabilityFacts: (await session.durability?.()) ?? {},
        node: process.version,
        loadavg: os.loadavg(),
      };
    });
    process.stdout.write(`PEERS_RESULT ${JSON.stringify(result)}\n`);
  } finally {
    await meter.close();
  }
  // Everything was closed above; a client library that still holds a handle (a timer, a socket) must not keep the
  // next sample waiting.
  setTimeout(() => {
    process.stderr.write(`bench:peers: ${info.name} left handles open; exiting\n`);
    process.exit(0);
  }, 5_000).unref();
}

await main();
