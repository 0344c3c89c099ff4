/**
 * Plain data types shared by the SDK, the controllers, the stores, the CLI and the UI.
 * @module
 */
import type { SerializedError } from './errors.js';

/** A length of time: a number of **milliseconds**, or a string with a unit: `'250ms' | '30s' | '5m' | '1h'`. */
export type Duration = number | `${number}ms` | `${number}s` | `${number}m` | `${number}h`;

/** Where an action is in its life. `succeeded`, `failed`, `aborted` and `timed_out` are terminal. */
export type ActionPhase = 'queued' | 'running' | 'succeeded' | 'failed' | 'aborted' | 'timed_out';

/** Where a run is in its life: the phase of its root action, plus `orphaned` for a run whose process died. */
export type RunPhase = ActionPhase | 'orphaned';

/** Every action phase, in the order of an action's life. */
export const ACTION_PHASES: readonly ActionPhase[] = ['queued', 'running', 'succeeded', 'failed', 'aborted', 'timed_out'];

/** Every run phase. */
export const RUN_PHASES: readonly RunPhase[] = [...ACTION_PHASES, 'orphaned'];

/** The phases after which nothing changes any more. */
export const TERMINAL_PHASES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'aborted', 'timed_out', 'orphaned']);

/** Whether a phase is terminal. */
export function isTerminal(phase: string): boolean {
  return TERMINAL_PHASES.has(phase);
}

/**
 * Whether a run in this phase can still be aborted: it has not ended, or it is `orphaned` (terminal for a
 * waiter, since nobody drives it, but not ended: aborting records it as aborted).
 */
export function isAbortable(phase: string): boolean {
  return !isTerminal(phase) || phase === 'orphaned';
}

/** The stored error of an action or a run. */
export type ActionError = SerializedError;

/** Execution mode of a run. */
export type RunMode = 'local' | 'remote';

/** One action of a run, as the store, the CLI and the UI see it. */
export interface ActionRecord {
  /** The run the action belongs to. */
  readonly runName: string;
  /** `'a0'` for the root; a deterministic hash-derived name for children. */
  readonly name: string;
  /** `null` for the root. */
  readonly parentName: string | null;
  /** Fully qualified task name, `${env}.${task}`. */
  readonly taskName: string;
  /** The name shown for the action: the task's `shortName` (its function name unless overridden). */
  readonly shortName: string;
  /** Innermost `flyte.group` (or map group) the action was created in. */
  readonly group: string | null;
  /**
   * The 0-based position of the action's item in its `flyte.map` call (`items[i]` gives `i`); `null` for an
   * action that is not a map item. Shown as `task #i` (see `displayName`).
   */
  readonly itemIndex: number | null;
  /** Where the action is in its lifecycle; see {@link ActionPhase}. */
  readonly phase: ActionPhase;
  /** Whether the outputs came from the cache instead of an execution. */
  readonly cacheHit: boolean;
  /** Number of attempts started so far. */
  readonly attempts: number;
  /** ms since the epoch. */
  readonly startedAt: number | null;
  /** When the action reached a terminal phase (ms since the epoch); `null` while it has not. */
  readonly endedAt: number | null;
  /** The error the action failed with; `null` unless it failed, timed out or was aborted. */
  readonly error: ActionError | null;
}

/** One run: the execution of a root task with its whole tree of actions. */
export interface RunRecord {
  /** The run's name, unique in its store (e.g. `brisk-otter-3f9a2c`, or the name it was given). */
  readonly name: string;
  /** Fully qualified name of the root task. */
  readonly taskName: string;
  /** Where the run is in its lifecycle; see {@link RunPhase}. */
  readonly phase: RunPhase;
  /** `'local'` when the starting process runs the actions, `'remote'` when workers do. */
  readonly mode: RunMode;
  /** When the run was recorded (ms since the epoch). */
  readonly createdAt: number;
  /** When its root action started (ms since the epoch); `null` before that. */
  readonly startedAt: number | null;
  /** When the run reached a terminal phase (ms since the epoch); `null` while it has not. */
  readonly endedAt: number | null;
  /** The root action's error when the run did not succeed; `null` otherwise. */
  readonly error: ActionError | null;
  /** Labels given when the run was started, for filtering runs. */
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Where the root task is defined, so the run can be started again (`flyte rerun`): the module URL or path
   * that defined it. `null` when it is not known.
   */
  readonly module: string | null;
  /** The process that drives the run, as `host:pid` (`null` once nobody does). */
  readonly owner: string | null;
  /**
   * Raised each time a process takes the run over (a recovery, an abort of an orphaned run): writes of a process
   * holding an older epoch are refused, so a run has one driver. `1` for a new run.
   */
  readonly epoch: number;
  /** When the driver last renewed its lease (ms since the epoch): when the run was last seen alive. */
  readonly heartbeatAt: number | null;
  /**
   * Until when the driver's lease holds. A `running` run whose lease has expired is orphaned: its driver stopped
   * renewing it (it died, or it hangs). `null` for runs recorded before leases existed.
   */
  readonly leaseExpiresAt: number | null;
  /** The run options that shape its execution, kept so a recovered run behaves like the original. */
  readonly options: RunOptionsRecord;
}

/** The run options recorded with a run. */
export interface RunOptionsRecord {
  readonly overwriteCache?: boolean;
  readonly disableRunCache?: boolean;
  readonly maxActionConcurrency?: number;
  readonly customContext?: Readonly<Record<string, string>>;
}

/** One attempt of an action. */
export interface AttemptRecord {
  /** The run the attempt belongs to. */
  readonly runName: string;
  /** The action the attempt belongs to (its `name`). */
  readonly actionName: string;
  /** 1-based. */
  readonly attempt: number;
  /** The attempt's phase: `running` until it ends, then how it ended. */
  readonly phase: ActionPhase;
  /** When the attempt started (ms since the epoch). */
  readonly startedAt: number;
  /** When the attempt ended (ms since the epoch); `null` while it runs. */
  readonly endedAt: number | null;
  /** The error the attempt failed with; `null` unless it failed. */
  readonly error: ActionError | null;
  /**
   * The process that ran the attempt, `host:pid`: a `flyte worker` for a remote run, the process that drove the
   * run for a local one. `null` where it was not recorded (runs recorded before flyte-ts recorded it).
   */
  readonly worker: string | null;
}

/** One line written by a task body, captured as the action's log. */
export interface LogLine {
  /** The run the line belongs to. */
  readonly runName: string;
  /** The action whose body wrote the line. */
  readonly actionName: string;
  /** The attempt (1-based) that wrote the line. */
  readonly attempt: number;
  /** ms since the epoch. */
  readonly at: number;
  /** The stream the line was written to. */
  readonly stream: 'stdout' | 'stderr';
  /** The text of the line, without its line break. */
  readonly line: string;
}

/** Counts of a run's actions by phase, plus cache hits. */
export interface ActionCounts {
  /** All actions of the run. */
  readonly total: number;
  /** Actions in phase `queued`. */
  readonly queued: number;
  /** Actions in phase `running`. */
  readonly running: number;
  /** Actions in phase `succeeded` (cache hits included). */
  readonly succeeded: number;
  /** Actions in phase `failed`. */
  readonly failed: number;
  /** Actions in phase `aborted`. */
  readonly aborted: number;
  /** Actions in phase `timed_out`. */
  readonly timed_out: number;
  /** Actions whose outputs came from the cache. */
  readonly cached: number;
}
