/**
 * Retries: `retries: N` means N + 1 attempts, with backoff between them.
 *
 * Mirrors Flyte 2's `@env.task(retries=3)`: every user error is retried, except `flyte.errors.NonRecoverableError`,
 * which fails the action at once. `flyte.ctx().attempt` is the 1-based attempt number.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'retries' });

/** Fails on its first two attempts, like a call to a flaky service. */
export const flaky = env.task({ retries: { count: 3, backoff: '20ms' } }, async function flaky(x: number) {
  const attempt = flyte.ctx()?.attempt ?? 1;
  if (attempt < 3) throw new Error(`service unavailable (attempt ${attempt})`);
  return { x, attempt };
});

/** Retrying cannot fix bad input: NonRecoverableError is not retried. */
export const validate = env.task({ retries: 3 }, async function validate(x: number) {
  if (x < 0) throw new flyte.errors.NonRecoverableError(`expected a non-negative number, received ${x}`);
  return x;
});

export const main = env.task(async function main(x: number) {
  const recovered = await flaky(x);
  let rejected = 'none';
  try {
    await validate(-x);
  } catch (err) {
    if (!(err instanceof flyte.errors.BaseRuntimeError)) throw err;
    rejected = err.code;
  }
  return { recovered, rejected };
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, 7);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
