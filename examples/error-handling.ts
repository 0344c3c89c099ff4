/**
 * Keeping a fan-out going when some items fail.
 *
 * Mirrors Flyte 2's `asyncio.gather(..., return_exceptions=True)` and `flyte.map`'s `return_exceptions=True`
 * (the default): a failed child reaches the parent as a `flyte.errors.RuntimeUserError` whose `code` is the
 * original error's class name, and the other children go on.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'error_handling' });

export class ValueError extends Error {}

export const checkItem = env.task(async function checkItem(x: number) {
  if (x % 3 === 0) throw new ValueError(`${x} is a multiple of 3`);
  return x * 10;
});

/** An item's result, or the code of its error: a child's failure is a RuntimeUserError named after the original. */
function show(result: number | Error): number | string {
  if (result instanceof flyte.errors.RuntimeUserError) return `error:${result.code}`;
  if (result instanceof Error) throw result; // not a failure of a child action: let it fail the task
  return result;
}

export const main = env.task(async function main(items: number[]) {
  // Promise.allSettled: each call settles on its own.
  const settled = await Promise.allSettled(items.map((x) => checkItem(x)));
  const viaAllSettled = settled.map((s) => (s.status === 'fulfilled' ? s.value : show(s.reason as Error)));

  // flyte.map returns errors in place by default (returnExceptions: true).
  const viaMap = (await flyte.map(checkItem, items)).map(show);

  // flyte.gather with returnExceptions, the asyncio.gather(..., return_exceptions=True) analog.
  const calls = items.map((x) => checkItem(x));
  const viaGather = (await flyte.gather(calls, { returnExceptions: true })).map(show);

  return { viaAllSettled, viaMap, viaGather };
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, [1, 2, 3, 4, 5, 6]);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
