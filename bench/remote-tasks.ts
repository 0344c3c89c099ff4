/**
 * The tasks of `npm run bench:remote`, run by `flyte worker` processes (`--module bench/remote-tasks.ts`).
 *
 * - `bench_remote`: the fan-out (throughput) and the sequential chain (latency).
 * - `bench_hold` / `bench_gate`: the memory bench. A root fans out parents that each await one grandchild of
 *   another environment, whose queue no worker takes until the bench says so: the worker of `bench_hold` then
 *   holds every parent, waiting.
 * @module
 */
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'bench_remote' });

/** The trivial child: what one remote action costs beyond a function call. */
export const child = env.task(async function child(x: number): Promise<number> {
  return x * 2;
});

/** The parent of the throughput bench: `flyte.map` over `n` items at `concurrency`; the sum of the results. */
export const fanOut = env.task(async function fanOut(n: number, concurrency: number): Promise<number> {
  const items = Array.from({ length: n }, (_, i) => i);
  const results = await flyte.map(child, items, { concurrency, returnExceptions: false });
  let total = 0;
  for (const r of results) total += r;
  return total;
});

/** The parent of the latency bench: `n` children awaited one after the other, each await timed here (ms). */
export const chain = env.task(async function chain(n: number): Promise<{ sum: number; ms: number[] }> {
  const ms: number[] = [];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    sum += await child(i);
    ms.push(performance.now() - t0);
  }
  return { sum, ms };
});

const hold = new flyte.TaskEnvironment({ name: 'bench_hold' });
const gateEnv = new flyte.TaskEnvironment({ name: 'bench_gate' });

/** The grandchild: runs only once a worker takes `bench_gate`'s queue (the signal). */
export const gate = gateEnv.task(async function gate(i: number): Promise<number> {
  return i;
});

/** A parent that waits on its one grandchild. */
export const waiter = hold.task(async function waiter(i: number): Promise<number> {
  return (await gate(i)) + 1;
});

/** The root of the memory bench: `n` waiting parents at once. */
export const holdRoot = hold.task(async function holdRoot(n: number): Promise<number> {
  const items = Array.from({ length: n }, (_, i) => i);
  const results = await flyte.map(waiter, items, { concurrency: 0, returnExceptions: false });
  let total = 0;
  for (const r of results) total += r;
  return total;
});
