/**
 * The benchmark's scenarios: what each one runs and which raw baseline its added cost is measured against.
 * Shared by the orchestrator (`run.ts`) and the per-scenario child process (`child.ts`).
 * @module
 */

/** One measured way of fanning out `n` children. */
export interface Scenario {
  /** Name used in `--only` and in the results, e.g. `flyte-map-64`. */
  readonly name: string;
  /** `raw`: plain functions, no flyte-ts. `flyte`: one local run, every child a recorded action. */
  readonly kind: 'raw' | 'flyte';
  /** The raw scenario this one is compared with (added cost per action), for `flyte` scenarios. */
  readonly baseline: string | undefined;
  /** Concurrency limit for map-like scenarios (`0` = unbounded for flyte.map; p-map uses `Infinity`). */
  readonly concurrency: number | undefined;
  /** What runs, in one line. */
  readonly description: string;
  /**
   * The run is traced: the child process registers an OpenTelemetry tracer provider (the SDK's, with an
   * AsyncLocalStorage context manager and a span processor that only counts the spans) before it runs.
   */
  readonly traced?: true;
  /** Run only when `--only` names it (or a prefix of it), never by default. */
  readonly optIn?: true;
}

/** Every scenario, baselines first, for a map concurrency of `concurrency`. */
export function scenarios(concurrency: number): Scenario[] {
  return [
    {
      name: 'promise-all',
      kind: 'raw',
      baseline: undefined,
      concurrency: undefined,
      description: 'raw Promise.all(items.map(double)), no flyte-ts',
    },
    {
      name: `p-map-${concurrency}`,
      kind: 'raw',
      baseline: undefined,
      concurrency,
      description: `raw pMap(items, double, { concurrency: ${concurrency} }), no flyte-ts`,
    },
    {
      name: 'flyte-promise-all',
      kind: 'flyte',
      baseline: 'promise-all',
      concurrency: undefined,
      description: 'root task: Promise.all(items.map((x) => doubleTask(x)))',
    },
    {
      name: 'flyte-map-0',
      kind: 'flyte',
      baseline: 'promise-all',
      concurrency: 0,
      description: 'root task: flyte.map(doubleTask, items, { concurrency: 0 })',
    },
    {
      name: `flyte-map-${concurrency}`,
      kind: 'flyte',
      baseline: `p-map-${concurrency}`,
      concurrency,
      description: `root task: flyte.map(doubleTask, items, { concurrency: ${concurrency} })`,
    },
    {
      name: 'flyte-map-0-traced',
      kind: 'flyte',
      baseline: 'promise-all',
      concurrency: 0,
      description: 'flyte-map-0 with an OpenTelemetry tracer provider registered: a span per action',
      traced: true,
      optIn: true,
    },
  ];
}

/**
 * The scenarios selected by `--only` (comma-separated names or name prefixes: `flyte-map` selects
 * `flyte-map-0` and `flyte-map-64`), plus the baselines they are compared with.
 */
export function select(all: readonly Scenario[], only: string | undefined): Scenario[] {
  if (only === undefined || only === '') return all.filter((s) => s.optIn !== true);
  const wanted = only
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const matches = (s: Scenario): boolean => wanted.some((w) => s.name === w || s.name.startsWith(`${w}-`));
  const unknown = wanted.filter((w) => !all.some((s) => s.name === w || s.name.startsWith(`${w}-`)));
  if (unknown.length > 0) {
    throw new RangeError(
      `--only: expected scenario names or prefixes among ${all.map((s) => s.name).join(', ')}; received ${unknown.join(', ')}`,
    );
  }
  const chosen = new Set(all.filter(matches).map((s) => s.name));
  // `--only flyte-map` is every flyte.map scenario run by default; an opt-in one is run when it is named.
  for (const s of all) if (s.optIn === true && !wanted.some((w) => s.name === w)) chosen.delete(s.name);
  for (const s of all) if (chosen.has(s.name) && s.baseline !== undefined) chosen.add(s.baseline);
  return all.filter((s) => chosen.has(s.name));
}
