/**
 * Where the time of one big Postgres group commit goes: the same 100 000 action rows (shaped like the fan-out's)
 * upserted into a fresh schema of the store's own tables, in several statement shapes, each in one transaction.
 * For each it reports the time the driver blocks the event loop serializing the parameters ("client sync") and
 * the whole round trip ("total"); the difference is the server's work and the transfer.
 *
 * ```sh
 * node --conditions=flyte-source --import tsx bench/pg-upsert.ts            # n = 100 000, 3 rounds
 * node --conditions=flyte-source --import tsx bench/pg-upsert.ts --n 10000 --rounds 1
 * ```
 *
 * The shapes:
 * - `arrays` — the shape `PostgresStore` sends today: 16 text arrays, `unnest(…) WITH ORDINALITY … ORDER BY ord`,
 *   `ON CONFLICT (run_name, name) DO UPDATE … WHERE` an epoch guard;
 * - `arrays-unordered` — the same without `ORDER BY ord` (unnest already yields in order);
 * - `arrays-10k`, `arrays-1k` — the `arrays` statement for 10 000 (1 000) rows at a time, in one transaction;
 * - `json`, `json-10k` — one `json` parameter (`JSON.stringify` of the rows), `json_to_recordset`, same
 *   ordering and guard; for all rows at once, or 10 000 at a time.
 * @module
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { PostgresStore } from '../src/store/index.js';
import { PG_BENCH_URL, postgresSettings } from './stores.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } },
});
const n = Number(values.n);
const rounds = Number(values.rounds);
if (!Number.isInteger(n) || n < 1) throw new RangeError(`--n: expected a positive integer; received ${values.n}`);
if (!Number.isInteger(rounds) || rounds < 1) {
  throw new RangeError(`--rounds: expected a positive integer; received ${values.rounds}`);
}

const COLUMNS = [
  ['run_name', 'text'],
  ['name', 'text'],
  ['parent_name', 'text'],
  ['task_name', 'text'],
  ['short_name', 'text'],
  ['grp', 'text'],
  ['phase', 'text'],
  ['cache_hit', 'boolean'],
  ['attempts', 'integer'],
  ['started_at', 'bigint'],
  ['ended_at', 'bigint'],
  ['error', 'text'],
  ['epoch', 'bigint'],
  ['inputs_hash', 'text'],
  ['inputs', 'text'],
  ['outputs', 'text'],
] as const;

type Row = (string | number | boolean | null)[];

/** `n` succeeded children of one root, as the fan-out writes them (hashed names, small inputs and outputs). */
function rows(runName: string): Row[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => [
    runName,
    `a${createHash('sha256').update(`${runName}/${i}`).digest('hex').slice(0, 16)}`,
    'a0',
    'bench.double',
    'double',
    'bench.double_map',
    'succeeded',
    false,
    1,
    now,
    now + 1,
    null,
    1,
    createHash('sha256').update(String(i)).digest('hex'),
    `[[1],${i}]`,
    `[${2 * i}]`,
  ]);
}

// Every row is new (a fresh run per shape and round), so the update never runs: the clause is here for the
// arbiter-index check it costs, as in the store's statement (whose full SET list and terminal guard it leaves out).
const GUARD = `ON CONFLICT (run_name, name) DO UPDATE SET phase = excluded.phase, epoch = excluded.epoch
  WHERE a.epoch <= excluded.epoch`;

const names = COLUMNS.map(([c]) => c).join(', ');
const picked = COLUMNS.map(([c]) => `u.${c}`).join(', ');

function arraysSql(table: string, ordered: boolean): string {
  const params = COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
  return `INSERT INTO ${table} AS a (${names}) SELECT ${picked}
    FROM unnest(${params}) WITH ORDINALITY AS u(${names}, ord) ${ordered ? 'ORDER BY u.ord' : ''} ${GUARD}`;
}

function jsonSql(table: string): string {
  const record = COLUMNS.map(([c, type]) => `${c} ${type}`).join(', ');
  return `INSERT INTO ${table} AS a (${names}) SELECT ${picked}
    FROM ROWS FROM (json_to_recordset($1::json) AS (${record})) WITH ORDINALITY AS u(${names}, ord)
    ORDER BY u.ord ${GUARD}`;
}

function columnsOf(batch: readonly Row[]): unknown[][] {
  const cols: unknown[][] = COLUMNS.map(() => []);
  for (const r of batch) r.forEach((v, i) => cols[i]?.push(v));
  return cols;
}

function objectsOf(batch: readonly Row[]): string {
  return JSON.stringify(batch.map((r) => Object.fromEntries(COLUMNS.map(([c], i) => [c, r[i]]))));
}

interface Timing {
  /** Time inside `client.query(...)` calls before they return their promise: the driver serializing. */
  syncMs: number;
  /** Time building the parameters in JS (columns or JSON), before the driver sees them. */
  buildMs: number;
  totalMs: number;
}

/** One transaction of `statements`, timed. */
async function timed(
  client: pg.Client,
  statements: readonly { sql: string; params: () => unknown[] }[],
): Promise<Timing> {
  const t: Timing = { syncMs: 0, buildMs: 0, totalMs: 0 };
  const t0 = performance.now();
  await client.query('BEGIN');
  try {
    for (const s of statements) {
      const b0 = performance.now();
      const params = s.params();
      const q0 = performance.now();
      t.buildMs += q0 - b0;
      const pending = client.query(s.sql, params);
      t.syncMs += performance.now() - q0;
      await pending;
    }
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  }
  await client.query('COMMIT');
  t.totalMs = performance.now() - t0;
  return t;
}

const schema = `bench_upsert_${process.pid}`;
const url = new URL(PG_BENCH_URL);
url.searchParams.set('schema', schema);
const settings = await postgresSettings();
// The store's migrations make the tables, exactly as a bench sample has them.
await (await PostgresStore.open(url.toString())).close();
const client = new pg.Client({ connectionString: PG_BENCH_URL });
await client.connect();
const table = `"${schema}".actions`;
try {
  console.log(
    `pg-upsert: ${n} action rows per commit, ${rounds} round(s), Postgres ${settings.server_version}, ` +
      `synchronous_commit=${settings.synchronous_commit}, fsync=${settings.fsync}`,
  );
  /** `make` over slices of `size` rows, one statement each. */
  const chunked =
    (size: number, make: (part: Row[]) => { sql: string; params: () => unknown[] }) =>
    (batch: Row[]): { sql: string; params: () => unknown[] }[] =>
      Array.from({ length: Math.ceil(batch.length / size) }, (_, k) => make(batch.slice(k * size, (k + 1) * size)));
  const arrays = (part: Row[]): { sql: string; params: () => unknown[] } => ({
    sql: arraysSql(table, true),
    params: () => columnsOf(part),
  });
  const json = (part: Row[]): { sql: string; params: () => unknown[] } => ({
    sql: jsonSql(table),
    params: () => [objectsOf(part)],
  });
  const shapes: Record<string, (batch: Row[]) => { sql: string; params: () => unknown[] }[]> = {
    arrays: chunked(n, arrays),
    'arrays-unordered': (batch) => [{ sql: arraysSql(table, false), params: () => columnsOf(batch) }],
    'arrays-10k': chunked(10_000, arrays),
    'arrays-1k': chunked(1_000, arrays),
    json: chunked(n, json),
    'json-10k': chunked(10_000, json),
  };
  const results = new Map<string, Timing[]>(Object.keys(shapes).map((k) => [k, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const [shape, statements] of Object.entries(shapes)) {
      const batch = rows(`run-${shape}-${round}`);
      const t = await timed(client, statements(batch));
      results.get(shape)?.push(t);
      console.log(
        `  round ${round} ${shape.padEnd(17)} total ${t.totalMs.toFixed(0).padStart(6)} ms, ` +
          `build ${t.buildMs.toFixed(0)} ms, client sync ${t.syncMs.toFixed(0)} ms`,
      );
    }
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
  console.log('\n| shape | total ms | build ms | client sync ms | rest (server + transfer) ms | µs per row |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [shape, ts] of results) {
    const total = med(ts.map((t) => t.totalMs));
    const build = med(ts.map((t) => t.buildMs));
    const sync = med(ts.map((t) => t.syncMs));
    console.log(
      `| \`${shape}\` | ${total.toFixed(0)} | ${build.toFixed(0)} | ${sync.toFixed(0)} | ` +
        `${(total - build - sync).toFixed(0)} | ${((total * 1000) / n).toFixed(1)} |`,
    );
  }
} finally {
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}
