/**
 * The messages between the main thread and a pool thread running a sync body (see `thread-pool.ts`).
 *
 * - main → thread, on the worker: {@link RunMessage}, a body to run;
 * - thread → main, on the worker: a {@link WorkerRequest} the body blocks on (`Atomics.wait`) until its
 *   {@link Reply}, or a {@link WorkerNotice} it does not wait for;
 * - main → thread, on the thread's port: the {@link Reply} to the pending request, read with
 *   `receiveMessageOnPort` once the thread is woken.
 *
 * Values travel encoded with the value codec (strings); errors as {@link SerializedError}s; tasks as
 * {@link TaskRef}s.
 * @module
 */
import type { SerializedError } from '../errors.js';
import type { BudgetOptions } from './failure-budget.js';
import type { TaskRef } from './task-ref.js';

/** A sync body to run: where its task is defined, its encoded arguments, and what `flyte.ctx()` shows. */
export interface PoolJob {
  readonly module: string;
  readonly taskName: string;
  readonly shortName: string;
  /** Arguments, encoded with the value codec (never offloaded). */
  readonly args: string;
  readonly runName: string;
  readonly actionName: string;
  readonly attempt: number;
  readonly mode: 'local' | 'remote';
  readonly customContext: Readonly<Record<string, string>>;
}

/** Main → thread: run a job. */
export interface RunMessage {
  readonly type: 'run';
  readonly job: PoolJob;
}

/** A child action called from the body (blocking). Answered with a {@link ValueReply}. */
export interface CallRequest {
  readonly type: 'call';
  readonly task: TaskRef;
  /** The argument tuple, encoded. */
  readonly args: string;
  readonly group: string | null;
  readonly customContext: Readonly<Record<string, string>>;
}

/** The start of a recorded step. Answered with a {@link StepStartedReply} or a {@link StepReplayedReply}. */
export interface StepRequest {
  readonly type: 'step';
  readonly kind: 'trace' | 'durable';
  readonly name: string;
  readonly args: string;
  readonly group: string | null;
}

/** How a sync map runs its items on the main thread. */
export interface MapSettings {
  readonly task: TaskRef;
  /** The arguments bound with `flyte.partial`, encoded. */
  readonly bound: string;
  readonly concurrency: number;
  readonly returnExceptions: boolean;
  readonly group: string;
  /** How many items the map will run, when known. */
  readonly total: number | null;
  /** The map's failure budget, or `null`. */
  readonly budget: BudgetOptions | null;
  readonly customContext: Readonly<Record<string, string>>;
}

/**
 * A sync map streams: the thread pulls items from the body's iterables as the body consumes results, and feeds
 * them in batches (`items`: argument lists, encoded), keeping a bounded number fed but not yet consumed. It
 * starts the map with its first items, asks for results when it has none left, and closes the map when the body
 * stops iterating (the main thread then aborts what still runs). The message that carries the input's last
 * items (or none) says `last`: a failure budget with a ratio over an input of unknown size is checked then.
 *
 * The start of sync map `mapId` (an id chosen by the thread), with its first items. Answered with a
 * {@link MapResultsReply}.
 */
export interface MapStartRequest {
  readonly type: 'map-start';
  readonly mapId: number;
  readonly settings: MapSettings;
  readonly items: string;
  readonly last?: true;
}

/** More items (or none, `null`), and the next results of map `mapId`. Answered with a {@link MapResultsReply}. */
export interface MapNextRequest {
  readonly type: 'map-next';
  readonly mapId: number;
  readonly items: string | null;
  readonly last?: true;
}

/** More items of map `mapId`, fed while the body still has results to consume. */
export interface MapFeedNotice {
  readonly type: 'map-feed';
  readonly mapId: number;
  readonly items: string;
  readonly last?: true;
}

/** The body stopped iterating map `mapId` (it ended, broke off or threw): what still runs is aborted. */
export interface MapCloseNotice {
  readonly type: 'map-close';
  readonly mapId: number;
}

/** A request the body blocks on. */
export type WorkerRequest = CallRequest | StepRequest | MapStartRequest | MapNextRequest;

/** A console line of the body. */
export interface LogNotice {
  readonly type: 'log';
  readonly stream: 'stdout' | 'stderr';
  readonly line: string;
}

/** How a recorded step (started with a {@link StepRequest}) ended. */
export type StepEndNotice =
  | { readonly type: 'step-end'; readonly stepId: number; readonly ok: true; readonly value: string }
  | { readonly type: 'step-end'; readonly stepId: number; readonly ok: false; readonly error: SerializedError };

/** The body returned (its output, encoded) or threw. */
export type DoneNotice =
  | { readonly type: 'done'; readonly ok: true; readonly value: string }
  | { readonly type: 'done'; readonly ok: false; readonly error: SerializedError };

/** A message the body does not wait on. */
export type WorkerNotice = LogNotice | StepEndNotice | MapFeedNotice | MapCloseNotice | DoneNotice;

/** Thread → main. */
export type WorkerMessage = WorkerRequest | WorkerNotice;

/** A value, encoded. */
export interface ValueReply {
  readonly type: 'value';
  readonly value: string;
}

/** The request failed: thrown in the body as a flyte error. */
export interface ErrorReply {
  readonly type: 'error';
  readonly error: SerializedError;
}

/** A step is being recorded: end it with a {@link StepEndNotice} of this id. */
export interface StepStartedReply {
  readonly type: 'step-started';
  readonly stepId: number;
}

/** A step recorded before (the run is being recovered): its output, encoded. */
export interface StepReplayedReply {
  readonly type: 'step-replayed';
  readonly value: string;
}

/**
 * The next results of a sync map, in input order, encoded: at least one (failed items as flyte errors in place
 * with `returnExceptions`; without it, the first failure is an {@link ErrorReply}, as is a broken failure
 * budget), or none to a `last` request once every result was taken.
 */
export interface MapResultsReply {
  readonly type: 'map-results';
  readonly results: string;
}

/** Main → thread: the answer to the pending request. */
export type Reply = ValueReply | ErrorReply | StepStartedReply | StepReplayedReply | MapResultsReply;

/** The replies each request may get (an {@link ErrorReply} always). */
export interface RepliesTo {
  readonly call: ValueReply;
  readonly step: StepStartedReply | StepReplayedReply;
  readonly 'map-start': MapResultsReply;
  readonly 'map-next': MapResultsReply;
}

/** The reply types each request may get, for checking a reply at run time. */
export const REPLY_TYPES: { readonly [K in WorkerRequest['type']]: readonly RepliesTo[K]['type'][] } = {
  call: ['value'],
  step: ['step-started', 'step-replayed'],
  'map-start': ['map-results'],
  'map-next': ['map-results'],
};

/** Whether `message` is a request the body blocks on. */
export function isRequest(message: WorkerMessage): message is WorkerRequest {
  return Object.hasOwn(REPLY_TYPES, message.type);
}
