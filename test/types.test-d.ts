/**
 * Type-level tests: compiled by `npm run typecheck` (`tsc -p tsconfig.json --noEmit`), never run. Each
 * `@ts-expect-error` line is misuse the types must refuse (tsc fails if it is accepted); each `expectType` states
 * an exact inferred type. The name ends in `.test-d.ts` so the test runner's `test/*.test.ts` does not pick it up.
 */
import * as flyte from 'flyte-ts';
import { z } from 'zod';

/** `true` only when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** Compiles only when `Actual` is exactly `Expected`. */
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : [never]): void => undefined;
}

const env = new flyte.TaskEnvironment({ name: 'typetest' });

const double = env.task(async function double(x: number) {
  return x * 2;
});

const increment = env.task({ retries: 1, timeout: '5s' }, function increment(x: number): number {
  return x + 1;
});

const greet = env.task(async function greet(name: string, times: number): Promise<string> {
  return name.repeat(times);
});

const scale = env.task(async function scale(factor: number, x: number) {
  return factor * x;
});

const labelled = env.task(async function labelled(n: number, label: string) {
  return { n, label };
});

// The schema's output type is the task's parameter tuple.
const validated = env.task(
  { inputs: z.tuple([z.number(), z.string()]) },
  async function validated(n: number, s: string) {
    return `${s}${n}`;
  },
);

// @ts-expect-error the schema's output type must match the function's parameters
env.task({ inputs: z.tuple([z.string()]) }, async function mismatched(n: number) {
  return n;
});

export async function checks(): Promise<void> {
  // env.task keeps the parameter and return types.
  expectType<Promise<number>>()(double(1));
  expectType<number>()(increment(1));
  expectType<Promise<string>>()(greet('a', 2));
  expectType<Promise<string>>()(validated(1, 'x'));
  expectType<flyte.Task<[x: number], Promise<number>>>()(double);
  expectType<string>()(double.name);

  // @ts-expect-error wrong argument type
  void double('one');
  // @ts-expect-error too few arguments
  void greet('a');
  // @ts-expect-error too many arguments
  void double(1, 2);
  // @ts-expect-error the result of an async task is a promise, not a number
  const notANumber: number = double(1);
  void notANumber;

  // aio, forward, override
  expectType<Promise<number>>()(increment.aio(1));
  expectType<Promise<number>>()(double.aio(1));
  expectType<number>()(increment.forward(1));
  expectType<flyte.Task<[x: number], Promise<number>>>()(double.override({ retries: 3, timeout: '10s' }));
  // @ts-expect-error aio keeps the parameter types
  void increment.aio('1');
  // @ts-expect-error override cannot rename a task (it keeps its identity)
  double.override({ name: 'other' });

  // Options are typed.
  // @ts-expect-error a duration needs a unit the runtime knows
  env.task({ timeout: '30 seconds' }, async function badTimeout() {});
  // @ts-expect-error retries is a number or a RetryStrategy
  env.task({ retries: 'often' }, async function badRetries() {});
  // @ts-expect-error unknown cache behaviour
  env.task({ cache: 'sometimes' }, async function badCache() {});
  // @ts-expect-error a name is required
  new flyte.TaskEnvironment({});

  // flyte.map infers its element type: R | RuntimeUserError by default, R with returnExceptions: false.
  expectType<(number | flyte.errors.RuntimeUserError)[]>()(await flyte.map(double, [1, 2]));
  expectType<(number | flyte.errors.RuntimeUserError)[]>()(await flyte.map(double, [1, 2], { concurrency: 2 }));
  expectType<number[]>()(await flyte.map(double, [1, 2], { returnExceptions: false }));
  // A failure budget returns failed items as errors while it holds.
  expectType<(number | flyte.errors.RuntimeUserError)[]>()(await flyte.map(double, [1, 2], { minSuccessRatio: 0.9 }));
  expectType<(number | flyte.errors.RuntimeUserError)[]>()(await flyte.map(double, [1, 2], { maxFailures: 3, concurrency: 2 }));
  expectType<number | null>()(new flyte.errors.MapFailureBudgetExceeded('m').total);
  expectType<string[]>()(await flyte.map(greet, ['a'], [2], { returnExceptions: false }));
  expectType<{ n: number; label: string }[]>()(
    await flyte.map(labelled, [1, 2], ['a', 'b'], { returnExceptions: false, concurrency: 1 }),
  );
  expectType<(number | flyte.errors.RuntimeUserError)[]>()(await flyte.map(flyte.partial(scale, 10), [1, 2]));
  expectType<number[]>()(await flyte.map(flyte.partial(scale, 10), [1, 2], { returnExceptions: false }));
  for await (const r of flyte.map(double, [1], { returnExceptions: false })) expectType<number>()(r);
  for await (const r of flyte.map(double, [1]).asCompleted()) {
    expectType<number | flyte.errors.RuntimeUserError>()(r);
  }
  // Inside a sync task a map is also a blocking iterable of the same element type.
  expectType<(number | flyte.errors.RuntimeUserError)[]>()(Array.from(flyte.map(increment, [1])));
  // @ts-expect-error items must match the task's parameter
  flyte.map(double, ['a', 'b']);
  // @ts-expect-error the second iterable must match the second parameter
  flyte.map(greet, ['a'], ['b']);
  // @ts-expect-error a plain function is not a task
  flyte.map(async (x: number) => x, [1]);
  // @ts-expect-error concurrency is a number
  flyte.map(double, [1], { concurrency: '2' });
  // @ts-expect-error partial binds leading arguments of the right type
  flyte.partial(scale, 'ten');

  // Runs are typed by their root task.
  const run = await flyte.run(double, 1);
  expectType<flyte.Run<number>>()(run);
  expectType<number>()(await run.outputs());
  expectType<string>()(await (await flyte.run(greet, 'a', 1)).outputs());
  expectType<number>()(await (await flyte.withRunContext({ name: 'r' }).run(increment, 1)).outputs());
  // @ts-expect-error run arguments are checked against the task
  void flyte.run(double, 'one');
  // @ts-expect-error run needs every argument
  void flyte.run(greet, 'a');
  // @ts-expect-error unknown run option
  flyte.withRunContext({ maxConcurrency: 2 });

  // The other primitives.
  expectType<[number, string]>()(await flyte.gather([double(1), greet('a', 1)]));
  expectType<[number | Error, string | Error]>()(
    await flyte.gather([double(1), greet('a', 1)], { returnExceptions: true }),
  );
  for await (const v of flyte.asCompleted([double(1), double(2)])) expectType<number>()(v);
  expectType<Promise<number>>()(new flyte.Semaphore(2).run(() => double(1)));
  expectType<Promise<number>>()(flyte.group('g', () => double(1)));
  expectType<flyte.TaskContext | undefined>()(flyte.ctx());
  // @ts-expect-error ctx() is undefined outside a task
  void flyte.ctx().runName;
  // @ts-expect-error custom context values are strings
  flyte.customContext({ n: 1 }, () => 0);
}

// A parameter typed by its default value keeps that type (the task is generic over the whole function).
const withDefault = env.task(async function withDefault(a: number, b = 1) {
  return a + b;
});
const withDefaultAndOptions = env.task({ retries: 1 }, async function withDefaultAndOptions(a: number, b = 'x') {
  return `${a}${b}`;
});
export function defaultParameters(): void {
  expectType<Promise<number>>()(withDefault(1));
  expectType<Promise<number>>()(withDefault(1, 2));
  expectType<Promise<string>>()(withDefaultAndOptions(1, 'y'));
  // @ts-expect-error b is a number
  void withDefault(1, 'two');
  // @ts-expect-error b is a string
  void withDefaultAndOptions(1, 2);
}
