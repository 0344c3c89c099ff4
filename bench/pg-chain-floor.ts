/**
 * The Postgres floor of one step of the distributed chain bench: the statements a remote child costs on the
 * critical path, sent one after the other by one client with nothing else around them. Per step: the parent's
 * commit of the child's record (an insert), the worker's claim (an `UPDATE … RETURNING`), the commit of the
 * child's end (an update), and the parent's read of the ended child (a `SELECT`); each statement its own
 * transaction, as in the store (`synchronous_commit` as the server has it). Prints p50 / p99 per step and the
 * server's CPU per step.
 *
 * ```sh
 * node --import tsx bench/pg-chain-floor.ts [--n 2000] [--url postgres://postgres@127.0.0.1:5432/test]
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { PG_BENCH_URL } from './stores.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '2000' }, url: { type: 'string', default: PG_BENCH_URL } },
});
const n = Number(values.n);
const schema = `bench_chain_floor_${process.pid}`;
const client = new pg.Client({ connectionString: values.url });
await client.connect();
const backendCpuMs = async (): Promise<number> => {
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const q = (name: string, text: string, params: unknown[]): Promise<pg.QueryResult> =>
  client.query({ name, text, values: params });
try {
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.query(`CREATE TABLE ${schema}.actions (run_name text, name text, phase text NOT NULL, epoch bigint NOT NULL,
    inputs text, outputs text, PRIMARY KEY (run_name, name))`);
  const steps: number[] = [];
  const cpu0 = await backendCpuMs();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const name = `a0-${i}`;
    await q('rec', `INSERT INTO ${schema}.actions VALUES ($1, $2, 'queued', 0, $3, NULL)`, ['r', name, `[${i}]`]);
    await q(
      'claim',
      `UPDATE ${schema}.actions SET phase = 'running', epoch = epoch + 1 WHERE run_name = $1 AND name = $2
       AND phase <> 'succeeded' RETURNING inputs, epoch`,
      ['r', name],
    );
    await q('end', `UPDATE ${schema}.actions SET phase = 'succeeded', outputs = $3 WHERE run_name = $1 AND name = $2`, [
      'r',
      name,
      String(2 * i),
    ]);
    await q('read', `SELECT phase, outputs FROM ${schema}.actions WHERE run_name = $1 AND name = ANY($2::text[])`, [
      'r',
      [name],
    ]);
    steps.push(performance.now() - t0);
  }
  const cpuMs = (await backendCpuMs()) - cpu0;
  steps.sort((a, b) => a - b);
  const at = (p: number): string => steps[Math.min(n - 1, Math.floor(p * n))]!.toFixed(2);
  console.log(
    `${n} steps of 4 statements (3 commits): p50 ${at(0.5)} ms, p99 ${at(0.99)} ms per step; ` +
      `Postgres CPU ${((cpuMs * 1000) / n).toFixed(0)} µs per step`,
  );
} finally {
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}
