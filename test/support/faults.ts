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
import { tempDir } from './cli.js';

/** One logged execution event. */
export interface Execution {
  readonly event: 'start' | 'end';
  readonly pid: number;
  readonly key: string;
  /** When it was logged, in ms since the epoch (`undefined` in a line without a time). */
  readonly at: number | undefined;
}

/** A fresh log file path for one test (pass it to the workers as `FLYTE_FAULT_LOG`). */
export function executionLogPath(): string {
  return join(tempDir('flyte-faults-'), 'executions.log');
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
        (event === 'start' || event === 'end') && pid !== undefined && key !== undefined,
        `an execution log line is "<start|end> <pid> <key> [<at>]"; received ${JSON.stringify(line)}`,
      );
      return { event, pid: Number(pid), key, at: at === undefined ? undefined : Number(at) };
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
      throw new Error(`the execution log did not reach the awaited state in ${timeoutMs} ms (${executions.length} lines)`);
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
