/**
 * The functions every benchmark scenario runs, once as plain functions (the baselines) and once as flyte tasks.
 *
 * Tasks are defined at module top level and exported, as flyte-ts requires. The child function is trivial on
 * purpose: the benchmark measures what flyte-ts adds around a function call, not the function.
 * @module
 */
import pMap from 'p-map';
import * as flyte from 'flyte-ts';

/** The work of one child: as small as an async function can be, so the overhead is what shows. */
export async function double(x: number): Promise<number> {
  return x * 2;
}

/** The items of a fan-out of `n` children. */
export function items(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** What every scenario returns, so each one can be checked against the same expected value. */
export function sum(values: readonly unknown[]): number {
  let total = 0;
  for (const v of values) {
    if (typeof v !== 'number') throw new TypeError(`expected a number; received ${String(v)}`);
    total += v;
  }
  return total;
}

/** The sum every scenario must return for `n` children: 2 × (0 + 1 + ... + n-1). */
export function expectedSum(n: number): number {
  return n * (n - 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Raw baselines: the same function, no flyte-ts.
// ---------------------------------------------------------------------------------------------------------------

/** `Promise.all` over direct calls. */
export async function rawPromiseAll(n: number): Promise<number> {
  return sum(await Promise.all(items(n).map((x) => double(x))));
}

/** p-map with a concurrency limit (`Infinity` for none). */
export async function rawPMap(n: number, concurrency: number): Promise<number> {
  return sum(await pMap(items(n), double, { concurrency }));
}

// ---------------------------------------------------------------------------------------------------------------
// flyte-ts: the same function as a task, fanned out from a root task.
// ---------------------------------------------------------------------------------------------------------------

const env = new flyte.TaskEnvironment({ name: 'bench' });

/** The child task: `double` itself. */
export const doubleTask = env.task(double);

/** Root task: `Promise.all` of direct task calls. */
export const fanOutPromiseAll = env.task(async function fanOutPromiseAll(n: number): Promise<number> {
  return sum(await Promise.all(items(n).map((x) => doubleTask(x))));
});

/** Root task: `flyte.map` with a concurrency limit (0 = unbounded). */
export const fanOutMap = env.task(async function fanOutMap(n: number, concurrency: number): Promise<number> {
  return sum(await flyte.map(doubleTask, items(n), { concurrency }));
});

/** Root task: `n` children awaited one after the other (a sequential chain). */
export const chain = env.task(async function chain(n: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < n; i++) total += await doubleTask(i);
  return total;
});
