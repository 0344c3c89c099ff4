/** Tasks of bench/sync.ts, in their own module: pool threads import it to run them. */
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'bench_sync' });

/** Spins for `ms` milliseconds of CPU. */
export const busy = env.task(function busy(ms: number) {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) n++;
  return n > 0;
});

export const fanOut = env.task(function fanOut(items: number, ms: number, concurrency: number) {
  return Array.from(flyte.map(busy, Array.from({ length: items }, () => ms), { concurrency })).length;
});

export const trivialSync = env.task(function trivialSync(x: number) {
  return x;
});

export const trivialAsync = env.task(async function trivialAsync(x: number) {
  return x;
});

export const syncCalls = env.task(function syncCalls(n: number) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += trivialSync(i);
  return sum;
});

export const asyncCalls = env.task(async function asyncCalls(n: number) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += await trivialAsync(i);
  return sum;
});
