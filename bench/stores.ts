/**
 * The stores a flyte scenario of the benchmark can record into, one fresh store per measured process: SQLite in
 * a temporary directory, Postgres in a fresh schema of one database, or the memory store (diagnostic only).
 * Shared by the orchestrator (`run.ts`, which checks Postgres and reads its durability settings once) and the
 * child process (`child.ts`, which opens, measures and removes one store).
 *
 * ```ts
 * const store = await benchStore('postgres', 1); // schema bench_<pid>_1 of FLYTE_BENCH_PG_URL
 * flyte.init({ root: store.root, store: store.spec, echoLogs: false });
 * // ... fan out, flyte.shutdown() ...
 * await store.dispose(); // drops the schema, deletes the directory
 * ```
 * @module
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { procCpuMs } from './proc.js';
import { hideStorePassword, PostgresStore, SqliteStore, type RunStore } from '../src/store/index.js';

/**
 * The stores the bench can measure. `sqlite` is the embedded store on its default driver; `sqlite-node` and
 * `sqlite-better-sqlite3` choose the driver (`sqlite:PATH?driver=NAME`), to compare the two side by side.
 * `postgres-async` is Postgres with `synchronous_commit=off` for the store's
 * connections only (`?options=-c synchronous_commit=off`): a commit returns before its WAL reaches the disk, as a
 * SQLite commit does with `synchronous=NORMAL`; a crash of the server (not of the client) may lose the last
 * commits. `memory` keeps no durable record. Both are diagnostics, not contenders for a target.
 */
export const STORE_KINDS = [
  'sqlite',
  'sqlite-node',
  'sqlite-better-sqlite3',
  'postgres',
  'postgres-async',
  'memory',
] as const;

/** One of {@link STORE_KINDS}. */
export type StoreKind = (typeof STORE_KINDS)[number];

/**
 * The database of the Postgres contender: `FLYTE_BENCH_PG_URL`, else `FLYTE_TEST_PG_URL`, else the local
 * default `postgres://postgres@127.0.0.1:5432/test`.
 */
export const PG_BENCH_URL =
  process.env['FLYTE_BENCH_PG_URL'] ?? process.env['FLYTE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The added µs per action each durable store must stay under (issue 2 for SQLite, issue 10 for Postgres). */
export const TARGET_ADDED_US: Readonly<Partial<Record<StoreKind, number>>> = {
  sqlite: 20,
  'sqlite-node': 20,
  'sqlite-better-sqlite3': 20,
  postgres: 40,
};

/**
 * Parses `--stores`: comma-separated store kinds, each once, in the order given.
 *
 * @throws RangeError when the list is empty or names something other than {@link STORE_KINDS}.
 */
export function parseStores(text: string): StoreKind[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = names.filter((s) => !(STORE_KINDS as readonly string[]).includes(s));
  if (names.length === 0 || unknown.length > 0) {
    throw new RangeError(
      `--stores: expected a comma-separated list of ${STORE_KINDS.join(', ')}; received ${JSON.stringify(text)}`,
    );
  }
  return [...new Set(names as StoreKind[])];
}

/** What a store committed so far, read from its counters (`stats`). */
export interface StoreCounters {
  /** Transactions that committed buffered writes. */
  readonly commits: number;
  /** Rows those transactions wrote (after coalescing: a row written twice counts twice). */
  readonly rowsWritten: number;
  /** Rows buffered and not yet committed. */
  readonly pendingWrites: number;
  /** Statements sent inside commit transactions (`BEGIN` and `COMMIT` included); Postgres only. */
  readonly commitStatements: number | undefined;
}

/** The counters of a SQLite or Postgres store; `undefined` for the memory store, which has none. */
export function storeCounters(store: RunStore): StoreCounters | undefined {
  if (!(store instanceof PostgresStore || store instanceof SqliteStore)) return undefined;
  const s = store.stats;
  return {
    commits: s.commits,
    rowsWritten: s.rowsWritten,
    pendingWrites: store.pendingWrites,
    commitStatements: 'commitStatements' in s ? s.commitStatements : undefined,
  };
}

/** One fresh store for one measured process. */
export interface BenchStore {
  readonly kind: StoreKind;
  /** The local state directory for `flyte.init({ root })` (a fresh temporary directory). */
  readonly root: string;
  /** The `store` setting for `flyte.init`; `undefined` is the default, SQLite at `${root}/flyte.db`. */
  readonly spec: string | undefined;
  /** Where the records are, for messages: a path or a schema. */
  readonly where: string;
  /** The size of what was recorded, in MiB (SQLite: the database and its WAL; Postgres: the schema's relations). */
  size(): Promise<number | undefined>;
  /**
   * Postgres on this machine: the CPU time so far of each server process serving this store's connections (by
   * backend pid, in ms, from `/proc/PID/stat`), found by their `application_name`. `undefined` for SQLite and
   * memory, whose writes run in the measured process, and when the server's processes cannot be read.
   */
  serverCpu(): Promise<ReadonlyMap<number, number> | undefined>;
  /** Removes the store: drops the Postgres schema, deletes the directory. */
  dispose(): Promise<void>;
}

const MiB = 1024 * 1024;

/**
 * A fresh store of `kind`: for Postgres the schema `bench_<pid>_<sample>` of {@link PG_BENCH_URL} (created by the
 * store's migrations when flyte starts; {@link BenchStore.dispose} drops it).
 */
export function benchStore(kind: StoreKind, sample: number): BenchStore {
  const root = mkdtempSync(path.join(os.tmpdir(), 'flyte-bench-'));
  const removeRoot = (): void => rmSync(root, { recursive: true, force: true });
  switch (kind) {
    case 'memory':
      return {
        kind,
        root,
        spec: 'memory:',
        where: 'memory',
        size: async () => undefined,
        serverCpu: async () => undefined,
        dispose: async () => removeRoot(),
      };
    case 'sqlite':
    case 'sqlite-node':
    case 'sqlite-better-sqlite3':
      return {
        kind,
        root,
        spec: kind === 'sqlite' ? undefined : `sqlite:${path.join(root, 'flyte.db')}?driver=${kind.slice(7)}`,
        where: path.join(root, 'flyte.db'),
        size: async () => sqliteMiB(root),
        serverCpu: async () => undefined,
        dispose: async () => removeRoot(),
      };
    case 'postgres':
    case 'postgres-async': {
      const schema = `bench_${process.pid}_${sample}`;
      const url = new URL(PG_BENCH_URL);
      url.searchParams.set('schema', schema);
      if (kind === 'postgres-async') url.searchParams.set('options', '-c synchronous_commit=off');
      // Names this store's connections in pg_stat_activity, to find the server processes that serve them.
      url.searchParams.set('application_name', schema);
      return {
        kind,
        root,
        spec: url.toString(),
        where: `schema ${schema}`,
        size: async () => schemaMiB(schema),
        serverCpu: async () => backendCpu(schema),
        dispose: async () => {
          removeRoot();
          await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
        },
      };
    }
  }
}

function sqliteMiB(root: string): number {
  let bytes = 0;
  for (const file of ['flyte.db', 'flyte.db-wal']) {
    try {
      bytes += statSync(path.join(root, file)).size;
    } catch {
      // No WAL file once it was checkpointed away: nothing to add.
    }
  }
  return bytes / MiB;
}

async function schemaMiB(schema: string): Promise<number> {
  const res = await withClient((c) =>
    c.query<{ bytes: string | null }>(
      `SELECT sum(pg_total_relation_size(c.oid))::text AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema],
    ),
  );
  return Number(res.rows[0]?.bytes ?? 0) / MiB;
}

async function backendCpu(applicationName: string): Promise<ReadonlyMap<number, number> | undefined> {
  const res = await withClient((c) =>
    c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName]),
  );
  const cpu = new Map<number, number>();
  for (const { pid } of res.rows) {
    try {
      cpu.set(pid, procCpuMs(pid));
    } catch {
      return undefined; // Postgres runs elsewhere (or as a user we cannot read): no server CPU figure.
    }
  }
  return cpu;
}

/** CPU ms of the server processes between two {@link BenchStore.serverCpu} readings (new processes from 0). */
export function serverCpuMs(
  before: ReadonlyMap<number, number> | undefined,
  after: ReadonlyMap<number, number> | undefined,
): number | undefined {
  if (before === undefined || after === undefined) return undefined;
  let ms = 0;
  for (const [pid, total] of after) ms += total - (before.get(pid) ?? 0);
  return ms;
}

/** Runs `use` on a connection of its own to {@link PG_BENCH_URL}, and closes it. */
async function withClient<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_BENCH_URL, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** The server settings that decide what a Postgres commit costs, as `SHOW` reports them. */
export interface PostgresSettings {
  readonly server_version: string;
  readonly synchronous_commit: string;
  readonly fsync: string;
  readonly wal_sync_method: string;
  readonly full_page_writes: string;
  readonly shared_buffers: string;
  /** `127.0.0.1:5432`, or the host of the URL: where the round trips go. */
  readonly host: string;
}

/**
 * Connects to {@link PG_BENCH_URL} and reads its durability settings.
 *
 * @throws Error "Postgres is not reachable at URL (reason); set FLYTE_BENCH_PG_URL" when it does not answer.
 */
export async function postgresSettings(): Promise<PostgresSettings> {
  const names = [
    'server_version',
    'synchronous_commit',
    'fsync',
    'wal_sync_method',
    'full_page_writes',
    'shared_buffers',
  ];
  try {
    return await withClient(async (c) => {
      const values: Record<string, string> = {};
      for (const name of names) {
        const res = await c.query<Record<string, string>>(`SHOW ${name}`);
        values[name] = String(res.rows[0]?.[name]);
      }
      const url = new URL(PG_BENCH_URL);
      return { ...values, host: `${url.hostname}:${url.port || '5432'}` } as unknown as PostgresSettings;
    });
  } catch (e) {
    throw new Error(
      `Postgres is not reachable at ${hideStorePassword(PG_BENCH_URL)} (${e instanceof Error ? e.message : String(e)}); ` +
        'set FLYTE_BENCH_PG_URL, or leave postgres out of --stores',
      { cause: e },
    );
  }
}
