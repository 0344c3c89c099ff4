/**
 * What one measured span of `npm run bench:peers` costs, read before and after it: the client's CPU (this process
 * and the contender's worker processes), the server's CPU (Postgres backends of the private database,
 * `redis-server`, `restate-server`) and the durable work done: Postgres write transactions and WAL bytes, Redis
 * commands and AOF bytes, bytes the server wrote to storage, and flyte-ts's own commit count.
 *
 * ```ts
 * const meter = await Meter.open(info, ctx);
 * const before = await meter.read(session);
 * // ... the measured span ...
 * const span = meter.span(before, await meter.read(session));
 * await meter.close();
 * ```
 * @module
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { procCpuMs, procIo, procUsage } from '../proc.js';
import type { PeerContext, PeerInfo, Session } from './peers.js';

const MiB = 1024 * 1024;

/** The counters at one moment. */
interface Reading {
  readonly ms: number;
  readonly selfCpuMs: number;
  readonly workerCpuMs: number;
  /** CPU ms so far of each server process (Postgres backends by pid, `redis-server`, `restate-server`). */
  readonly serverCpu: ReadonlyMap<number, number>;
  /** Bytes each non-Postgres server process wrote to storage so far. */
  readonly serverWriteBytes: ReadonlyMap<number, number>;
  readonly pg: { readonly xid: bigint; readonly walLsn: bigint } | undefined;
  readonly redis: { readonly commands: number; readonly aofBytes: number; readonly cpuMs: number } | undefined;
  readonly storeCommits: number | undefined;
}

/** What a measured span cost. `null` where the contender has no such thing. */
export interface SpanCost {
  /** CPU of this process and of the contender's worker processes. */
  readonly clientCpuMs: number;
  /** CPU of the servers: Postgres backends serving the private database, `redis-server`, `restate-server`. */
  readonly serverCpuMs: number | null;
  /**
   * Write transactions on the Postgres server during the span (transaction ids assigned: one per transaction that
   * wrote, each a WAL flush under `synchronous_commit=on`), less the bench's own reading. Server-wide: it counts
   * another client's writes too, so the bench runs alone.
   */
  readonly pgWriteTransactions: number | null;
  /** WAL written on the Postgres server during the span, MiB (server-wide, as above). */
  readonly pgWalMiB: number | null;
  /** Commands the private Redis processed during the span, less the bench's own readings. */
  readonly redisCommands: number | null;
  /** Bytes appended to the private Redis's AOF during the span, MiB. */
  readonly redisAofMiB: number | null;
  /** Bytes `restate-server` wrote to storage during the span (`/proc/PID/io` `write_bytes`), MiB. */
  readonly serverWriteMiB: number | null;
  /** flyte-ts local: the store's commits during the span. */
  readonly storeCommits: number | null;
}

function lsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

function info(text: string, field: string): number {
  const value = new RegExp(`^${field}:([\\d.]+)`, 'm').exec(text)?.[1];
  if (value === undefined) throw new Error(`redis INFO: expected a field ${field}; received none`);
  return Number(value);
}

/** Reads the counters of one contender's services; one per sample. */
export class Meter {
  readonly #pg: pg.Client | undefined;
  readonly #redis: Redis | undefined;

  private constructor(pgClient: pg.Client | undefined, redis: Redis | undefined) {
    this.#pg = pgClient;
    this.#redis = redis;
  }

  /** Connects to the services `info` uses (the private database, the private Redis). */
  static async open(peer: PeerInfo, ctx: PeerContext): Promise<Meter> {
    let client: pg.Client | undefined;
    if (peer.uses.includes('postgres')) {
      client = new pg.Client({ connectionString: ctx.pgUrl, application_name: 'bench-peers-meter' });
      await client.connect();
    }
    const redis = peer.uses.includes('redis') ? new Redis(ctx.redisUrl, { maxRetriesPerRequest: 1 }) : undefined;
    return new Meter(client, redis);
  }

  /** The counters now. */
  async read(session: Session): Promise<Reading> {
    const serverCpu = new Map<number, number>();
    const serverWriteBytes = new Map<number, number>();
    let pgReading: Reading['pg'];
    if (this.#pg !== undefined) {
      const res = await this.#pg.query<{ xid: string; lsn: string; pids: number[] }>(
        `SELECT pg_current_xact_id()::text AS xid, pg_current_wal_lsn()::text AS lsn,
                ARRAY(SELECT pid FROM pg_stat_activity
                       WHERE datname = current_database() AND pid <> pg_backend_pid()) AS pids`,
      );
      const row = res.rows[0]!;
      pgReading = { xid: BigInt(row.xid), walLsn: lsn(row.lsn) };
      for (const pid of row.pids) {
        try {
          serverCpu.set(pid, procCpuMs(pid));
        } catch {
          // A backend that ended between the query and now used nothing more that this span can count.
        }
      }
    }
    let redisReading: Reading['redis'];
    if (this.#redis !== undefined) {
      const text = await this.#redis.info();
      redisReading = {
        commands: info(text, 'total_commands_processed'),
        aofBytes: info(text, 'aof_current_size'),
        cpuMs: (info(text, 'used_cpu_user') + info(text, 'used_cpu_sys')) * 1000,
      };
    }
    for (const pid of session.serverPids) {
      serverCpu.set(pid, procCpuMs(pid));
      serverWriteBytes.set(pid, procIo(pid).writeBytes);
    }
    const self = process.cpuUsage();
    return {
      ms: performance.now(),
      selfCpuMs: (self.user + self.system) / 1000,
      workerCpuMs: session.workerPids.reduce((sum, pid) => sum + procCpuMs(pid), 0),
      serverCpu,
      serverWriteBytes,
      pg: pgReading,
      redis: redisReading,
      storeCommits: session.storeCommits?.(),
    };
  }

  /** What happened between two readings. */
  span(a: Reading, b: Reading): SpanCost {
    let server: number | null = null;
    for (const [pid, ms] of b.serverCpu) server = (server ?? 0) + ms - (a.serverCpu.get(pid) ?? 0);
    if (a.redis !== undefined && b.redis !== undefined) server = (server ?? 0) + b.redis.cpuMs - a.redis.cpuMs;
    let written: number | null = null;
    for (const [pid, bytes] of b.serverWriteBytes)
      written = (written ?? 0) + bytes - (a.serverWriteBytes.get(pid) ?? 0);
    const both = <T>(x: T | undefined, y: T | undefined): [T, T] | undefined =>
      x === undefined || y === undefined ? undefined : [x, y];
    const pgs = both(a.pg, b.pg);
    const redis = both(a.redis, b.redis);
    return {
      clientCpuMs: b.selfCpuMs - a.selfCpuMs + b.workerCpuMs - a.workerCpuMs,
      serverCpuMs: server,
      // The second reading's transaction has its own id: the ones in between are (b − a − 1).
      pgWriteTransactions: pgs === undefined ? null : Number(pgs[1].xid - pgs[0].xid - 1n),
      pgWalMiB: pgs === undefined ? null : Number(pgs[1].walLsn - pgs[0].walLsn) / MiB,
      // INFO itself is a command: the first reading's is counted in the second's total.
      redisCommands: redis === undefined ? null : redis[1].commands - redis[0].commands - 1,
      redisAofMiB: redis === undefined ? null : (redis[1].aofBytes - redis[0].aofBytes) / MiB,
      serverWriteMiB: written === null ? null : written / MiB,
      storeCommits:
        a.storeCommits === undefined || b.storeCommits === undefined ? null : b.storeCommits - a.storeCommits,
    };
  }

  /** Peak RSS of this process and of each worker process, MiB (workers: `VmHWM`, warm-up included). */
  static peakRssMiB(session: Session): { readonly self: number; readonly workers: readonly number[] } {
    return {
      self: (process.resourceUsage().maxRSS * 1024) / MiB,
      workers: session.workerPids.map((pid) => procUsage(pid).peakRssMiB),
    };
  }

  async close(): Promise<void> {
    await this.#pg?.end();
    this.#redis?.disconnect();
  }
}
