/**
 * The fault suite's measures (test/faults/): the executions the tasks logged (test/fixtures/faults/executions.ts),
 * and an audit of a run's records, so that every case can check 0 lost actions, 0 duplicated completions and 0
 * re-executions of children recorded as succeeded.
 * @module
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as flyte from '../../src/index.js';
import type { Redis } from 'ioredis';
import { tempDir } from './cli.js';

/** One logged execution event. */
export interface Execution {
  readonly event: 'start' | 'end';
  readonly pid: number;
  readonly key: string;
  /** When it was written, in ms since the epoch. */
  readonly at: number;
}

/** A fresh log file path for one test (pass it to the workers as `FLYTE_FAULT_LOG`). */
export function executionLogPath(): string {
  return join(tempDir('flyte-faults-'), 'executions.log');
}

/** The key {@link actionKey} (test/fixtures/faults/executions.ts) logs for `action` of `run`. */
export function keyOf(action: { readonly runName: string; readonly name: string }): string {
  return `${action.runName}/${action.name}`;
}

/** Every event logged so far, in the order written (an absent file: none). */
export function readExecutions(file: string): Execution[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [event, pid, key, at] = line.split(' ');
      assert.ok(
        (event === 'start' || event === 'end') && pid !== undefined && key !== undefined && at !== undefined,
        `an execution log line is "<start|end> <pid> <key> <ms>"; received ${JSON.stringify(line)}`,
      );
      return { event, pid: Number(pid), key, at: Number(at) };
    });
}

/** How many times each key logged `event`. */
export function countsOf(executions: readonly Execution[], event: Execution['event']): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of executions) if (e.event === event) counts.set(e.key, (counts.get(e.key) ?? 0) + 1);
  return counts;
}

/** The keys that logged `event` more than once, with their counts. */
export function repeated(executions: readonly Execution[], event: Execution['event']): [string, number][] {
  return [...countsOf(executions, event)].filter(([, n]) => n > 1);
}

/** Resolves once `predicate` holds of the log (polled every 20 ms), or rejects after `timeoutMs`. */
export async function untilLogged(
  file: string,
  predicate: (executions: readonly Execution[]) => boolean,
  timeoutMs = 60_000,
): Promise<Execution[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const executions = readExecutions(file);
    if (predicate(executions)) return executions;
    if (Date.now() > deadline) {
      throw new Error(
        `the execution log did not reach the awaited state in ${timeoutMs} ms (${executions.length} lines)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What {@link auditRun} found in a run's records. */
export interface RunAudit {
  readonly actions: readonly flyte.ActionRecord[];
  /** Action count per phase. */
  readonly phases: Readonly<Record<string, number>>;
  /** The names of the actions recorded as succeeded. */
  readonly succeeded: ReadonlySet<string>;
}

/**
 * Reads every action of `run` and checks that none was lost: each one is terminal, and each has at most one
 * attempt that ended per recorded attempt number (no duplicated completion).
 */
export async function auditRun(run: flyte.Run): Promise<RunAudit> {
  const actions = await run.actions();
  const phases: Record<string, number> = {};
  for (const a of actions) phases[a.phase] = (phases[a.phase] ?? 0) + 1;
  const open = actions.filter((a) => !['succeeded', 'failed', 'aborted', 'timed_out'].includes(a.phase));
  assert.deepEqual(
    open.map((a) => `${a.name} ${a.phase}`),
    [],
    'every action of the run is recorded as ended (none lost)',
  );
  return { actions, phases, succeeded: new Set(actions.filter((a) => a.phase === 'succeeded').map((a) => a.name)) };
}

/**
 * `CLIENT KILL TYPE pubsub`, restricted to the subscriber connections of the engines of key prefix `prefix`
 * (named `flyte-<prefix>-sub`), so that other tests sharing the Redis keep theirs. Resolves to how many it killed.
 */
export async function killSubscribers(redis: Redis, prefix: string): Promise<number> {
  const list = (await redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
  const ids = list
    .split('\n')
    .map((line) => Object.fromEntries(line.split(' ').map((field) => field.split('=', 2))) as Record<string, string>)
    .filter((client) => client['name'] === `flyte-${prefix}-sub` && client['id'] !== undefined)
    .map((client) => client['id'] as string);
  let killed = 0;
  for (const id of ids) killed += Number(await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub', 'ID', id));
  return killed;
}

/**
 * How long a parent took to learn of each child's end, from the records of a chain (children awaited one after
 * another): each child's `endedAt` to the next child's `startedAt`, in creation order. It includes the parent's
 * next call and the next child's dispatch, so it bounds the wake-up from above.
 */
export function chainGaps(children: readonly flyte.ActionRecord[]): number[] {
  const gaps: number[] = [];
  for (let i = 1; i < children.length; i++) {
    const ended = children[i - 1]?.endedAt;
    const started = children[i]?.startedAt;
    assert.ok(typeof ended === 'number' && typeof started === 'number', 'every child of the chain has its times');
    gaps.push(started - ended);
  }
  return gaps;
}

/** The `q`-quantile (0..1) of `values` (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

/**
 * The keys that started again after they had logged an end: a body that returned, and then ran again (for a
 * child whose success was recorded, a re-execution the records should have prevented). With their pids, in order.
 */
export function startedAfterEnd(executions: readonly Execution[]): [string, number[]][] {
  const ended = new Set<string>();
  const again = new Map<string, number[]>();
  for (const e of executions) {
    if (e.event === 'end') ended.add(e.key);
    else if (ended.has(e.key)) again.set(e.key, [...(again.get(e.key) ?? []), e.pid]);
  }
  return [...again];
}
