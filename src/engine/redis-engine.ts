/**
 * The engine on BullMQ and Redis: one BullMQ queue per flyte queue, jobs fetched by hand under a gate of busy
 * slots, and a pub/sub wake bus. See `README.md` next to this file for the invariants and the BullMQ traps.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { InitializationError } from '../errors.js';
import { SLOTS_TTL_MS } from './engine.js';
import type { AbortNotice, ActionJob, ConsumeOptions, Consumer, Engine, JobRef, Lease, Unwatch } from './engine.js';
import type { EngineUrl } from './engine-url.js';

/** Options of {@link RedisEngine}. */
export interface RedisEngineOptions {
  /** How long the first use waits for Redis before it fails, in ms. @default 10_000 */
  readonly connectTimeoutMs?: number;
}

/** Fetch loops per queue; exactly one of them blocks. */
const FETCH_LOOPS = 4;
/** At most this many ids per `extendJobLocks` call (one Lua call blocks Redis for its whole length). */
const RENEW_BATCH = 1000;
/**
 * Stalls after which BullMQ marks a job `deferredFailure`, unless `ConsumeOptions.maxStalledCount` says otherwise
 * (a worker passes its takeover limit). The lease of such a job says so, and its holder fails the action.
 */
const MAX_STALLED_COUNT = 10;
/** At most this many `EXISTS` per pipeline of {@link RedisEngine.missingJobs}. */
const EXISTS_BATCH = 500;
/** At most this many jobs per `addBulk` (one call holds Redis for its whole length). */
const ADD_BATCH = 1000;
/** Jobs waiting for an `addBulk` of one queue, and whether one is in flight. */
interface JobBatch {
  readonly pending: Array<{
    readonly data: ActionJob;
    readonly resolve: () => void;
    readonly reject: (e: unknown) => void;
  }>;
  inFlight: boolean;
}
/** Pause after a fetch failed (Redis unreachable), in ms. */
const FETCH_RETRY_MS = 500;

/** The states of a job that no worker holds. */
const WAITING_STATES: ReadonlySet<string> = new Set(['waiting', 'prioritized', 'delayed']);

type ActionWorker = Worker<ActionJob, null>;
type ActionQueue = Queue<ActionJob, null>;
type ActionBullJob = Job<ActionJob, null>;

/** The BullMQ job id of an action: run and action names, `%`-encoded and joined by `|` (never `:`). */
export function jobId(runName: string, actionName: string): string {
  return `${encodeURIComponent(runName)}|${encodeURIComponent(actionName)}`;
}

/** The channel on which the ends of `parentName`'s children are published. */
export function doneChannel(prefix: string, runName: string, parentName: string): string {
  return `${prefix}:done:${runName}:${parentName}`;
}

/** The channel of abort notices. */
export function abortChannel(prefix: string): string {
  return `${prefix}:abort`;
}

/** The key of a run's `maxActionConcurrency` slots: a sorted set of holders (action names), scored by take time. */
export function slotsKey(prefix: string, runName: string): string {
  return `${prefix}:slots:${runName}`;
}

/** The channel on which the releases of a run's slots are published (the holder's name). */
export function slotsChannel(prefix: string, runName: string): string {
  return `${prefix}:slots-free:${runName}`;
}

/** How often the subscriber connection must answer a PING, and how long it has to, in ms. */
const SUBSCRIBER_CHECK_MS = 5_000;

/** How often a waiter for a slot tries again without having heard of a release (messages get lost), in ms. */
const SLOT_POLL_MS = 500;

/**
 * Takes a slot atomically. KEYS[1] the slots; ARGV holder, max, now (ms), TTL (ms). 1: held (now or already).
 * The TTL is renewed on every take, so the slots of a live run stay while those of a forgotten one go.
 */
const ACQUIRE_SLOT = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0`;

/** Gives a slot back and, if it was held, says so on the run's channel. KEYS[1] the slots; ARGV holder, channel. */
const RELEASE_SLOT = `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 1 then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return removed`;

type SlotCommands = Redis & {
  flyteAcquireSlot(key: string, holder: string, max: number, now: number, ttlMs: number): Promise<number>;
  flyteReleaseSlot(key: string, holder: string, channel: string): Promise<number>;
};

/** The engine on BullMQ and Redis. Connects on first use; see {@link Engine}. */
export class RedisEngine implements Engine {
  readonly description: string;
  readonly prefix: string;
  readonly #url: EngineUrl;
  readonly #connectTimeoutMs: number;
  #client: Redis | undefined;
  #connecting: Promise<Redis> | undefined;
  #subscriber: Redis | undefined;
  #subscriberReady: Promise<Redis> | undefined;
  readonly #queues = new Map<string, ActionQueue>();
  readonly #consumers = new Set<RedisConsumer>();
  readonly #watchers = new Map<string, { listeners: Set<(message: string) => void>; subscribed: Promise<void> }>();
  readonly #abortListeners: Array<(notice: AbortNotice) => void> = [];
  readonly #reconnectListeners: Array<() => void> = [];
  #closing: Promise<void> | undefined;

  constructor(url: EngineUrl, options: RedisEngineOptions = {}) {
    this.#url = url;
    this.description = url.description;
    this.prefix = url.prefix;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  /**
   * Jobs are sent in batches per queue: while an `addBulk` of a queue is in flight, the jobs enqueued meanwhile
   * wait and go together in the next one (a fan-out enqueues its children in a few round trips, not one each).
   */
  async enqueue(job: ActionJob): Promise<void> {
    const queue = await this.#queue(job.queue);
    const data: ActionJob = {
      queue: job.queue,
      runName: job.runName,
      actionName: job.actionName,
      taskName: job.taskName,
      module: job.module,
      customContext: job.customContext,
      ...(job.inputsHash === undefined ? {} : { inputsHash: job.inputsHash }),
      ...(job.task === undefined ? {} : { task: job.task }),
      ...(job.traceparent === undefined ? {} : { traceparent: job.traceparent }),
      ...(job.tracestate === undefined ? {} : { tracestate: job.tracestate }),
    };
    let batch = this.#adding.get(job.queue);
    if (batch === undefined) this.#adding.set(job.queue, (batch = { pending: [], inFlight: false }));
    const pending = batch;
    return new Promise((resolve, reject) => {
      pending.pending.push({ data, resolve, reject });
      this.#sendJobs(queue, pending);
    });
  }

  /** Jobs waiting for the next `addBulk` of their queue, by queue (see {@link RedisEngine.enqueue}). */
  readonly #adding = new Map<string, JobBatch>();

  #sendJobs(queue: ActionQueue, batch: JobBatch): void {
    if (batch.inFlight || batch.pending.length === 0) return;
    const jobs = batch.pending.splice(0, ADD_BATCH);
    batch.inFlight = true;
    // A job with its id that exists already (waiting or held) makes its add a no-op: enqueue is idempotent.
    queue
      .addBulk(
        jobs.map(({ data }) => ({
          name: data.taskName,
          data,
          opts: {
            jobId: jobId(data.runName, data.actionName),
            attempts: 1,
            removeOnComplete: true,
            removeOnFail: true,
          },
        })),
      )
      .then(
        () => jobs.forEach((j) => j.resolve()),
        (e: unknown) => jobs.forEach((j) => j.reject(e)),
      )
      .finally(() => {
        batch.inFlight = false;
        this.#sendJobs(queue, batch);
      });
  }

  async dequeue(queueName: string, runName: string, actionNames: readonly string[]): Promise<string[]> {
    const queue = await this.#queue(queueName);
    const removed: string[] = [];
    for (const actionName of actionNames) {
      const id = jobId(runName, actionName);
      // `remove` answers 1 for a job that does not exist too, so the state is read first. `remove` refuses a
      // locked (held) job with 0, so a job taken between the two calls stays; one taken *and* completed
      // between them would be counted as removed (a window of one round trip).
      if (!WAITING_STATES.has(await queue.getJobState(id))) continue;
      if ((await queue.remove(id)) === 1) removed.push(actionName);
    }
    return removed;
  }

  async missingJobs<T extends JobRef>(jobs: readonly T[]): Promise<T[]> {
    const client = await this.connection();
    const missing: T[] = [];
    for (let i = 0; i < jobs.length; i += EXISTS_BATCH) {
      const batch = jobs.slice(i, i + EXISTS_BATCH);
      const pipeline = client.pipeline();
      for (const job of batch) {
        const queue = await this.#queue(job.queue);
        pipeline.exists(queue.toKey(jobId(job.runName, job.actionName)));
      }
      const replies = (await pipeline.exec()) ?? [];
      batch.forEach((job, k) => {
        const [error, exists] = replies[k] ?? [new Error('no reply'), null];
        if (error !== null) throw error;
        if (exists === 0) missing.push(job);
      });
    }
    return missing;
  }

  consume(queues: readonly string[], options: ConsumeOptions, onLease: (lease: Lease) => void): Consumer {
    if (this.#closing !== undefined) throw new InitializationError(`The engine ${this.description} is closed`);
    if (queues.length === 0) throw new TypeError('consume: expected at least one queue, received none');
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new TypeError(`consume: expected a concurrency that is an integer >= 1, received ${options.concurrency}`);
    }
    for (const key of ['lockMs', 'stalledIntervalMs'] as const) {
      const value = options[key];
      if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
        throw new TypeError(`consume: expected ${key} to be an integer > 0 (ms), received ${value}`);
      }
    }
    for (const name of queues) checkQueueName(name);
    const consumer = new RedisConsumer(this, queues, options, onLease);
    this.#consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  async publishEnded(runName: string, parentName: string, actionName: string): Promise<void> {
    const client = await this.connection();
    await client.publish(doneChannel(this.prefix, runName, parentName), actionName);
  }

  watchChildren(runName: string, parentName: string, onEnded: (actionName: string) => void): Promise<Unwatch> {
    return this.#watch(doneChannel(this.prefix, runName, parentName), onEnded);
  }

  async tryAcquireSlot(runName: string, holder: string, max: number): Promise<boolean> {
    checkSlotMax(max);
    const client = await this.#slotCommands();
    return (await client.flyteAcquireSlot(slotsKey(this.prefix, runName), holder, max, Date.now(), SLOTS_TTL_MS)) === 1;
  }

  async acquireSlot(runName: string, holder: string, max: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (await this.tryAcquireSlot(runName, holder, max)) return;
    // Subscribed before trying again, so that a release between the try and the wait is not missed.
    let released = false;
    let wake: () => void = () => (released = true);
    const unwatch = await this.#watch(slotsChannel(this.prefix, runName), () => wake());
    try {
      for (;;) {
        signal?.throwIfAborted();
        released = false;
        if (await this.tryAcquireSlot(runName, holder, max)) {
          if (signal?.aborted === true) {
            await this.releaseSlot(runName, holder);
            signal.throwIfAborted();
          }
          return;
        }
        if (released) continue; // a release came during the try: try again at once
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            wake = () => (released = true);
            resolve();
          };
          const timer = setTimeout(done, SLOT_POLL_MS);
          wake = done;
          signal?.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      unwatch();
    }
  }

  async releaseSlot(runName: string, holder: string): Promise<void> {
    const client = await this.#slotCommands();
    await client.flyteReleaseSlot(slotsKey(this.prefix, runName), holder, slotsChannel(this.prefix, runName));
  }

  async clearSlots(runName: string): Promise<void> {
    const client = await this.connection();
    await client.del(slotsKey(this.prefix, runName));
  }

  /** The command connection, with the slot scripts defined on it (sent by EVALSHA, loaded on first use). */
  async #slotCommands(): Promise<SlotCommands> {
    const client = (await this.connection()) as SlotCommands;
    if (typeof client.flyteAcquireSlot !== 'function') {
      client.defineCommand('flyteAcquireSlot', { numberOfKeys: 1, lua: ACQUIRE_SLOT });
      client.defineCommand('flyteReleaseSlot', { numberOfKeys: 1, lua: RELEASE_SLOT });
    }
    return client;
  }

  /** Calls `onMessage` with each message on `channel`; resolves once subscribed. Channels are ref-counted. */
  async #watch(channel: string, onMessage: (message: string) => void): Promise<Unwatch> {
    let entry = this.#watchers.get(channel);
    if (entry === undefined) {
      const created = {
        listeners: new Set<(message: string) => void>(),
        subscribed: this.#subscribe(channel),
      };
      entry = created;
      this.#watchers.set(channel, created);
      // A failed SUBSCRIBE forgets the channel, so that the next watcher tries again.
      created.subscribed.catch(() => {
        if (this.#watchers.get(channel) === created) this.#watchers.delete(channel);
      });
    }
    const listener = (message: string): void => onMessage(message);
    entry.listeners.add(listener);
    try {
      await entry.subscribed;
    } catch (e) {
      entry.listeners.delete(listener);
      throw e;
    }
    const watched = entry;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      watched.listeners.delete(listener);
      if (watched.listeners.size === 0 && this.#watchers.get(channel) === watched) {
        this.#watchers.delete(channel);
        // Fire and forget: a failed UNSUBSCRIBE (connection gone) leaves a channel nobody listens to, harmless.
        this.#subscriber?.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  async publishAbort(notice: AbortNotice): Promise<void> {
    const client = await this.connection();
    const message = JSON.stringify({ runName: notice.runName, actionName: notice.actionName });
    await client.publish(abortChannel(this.prefix), message);
  }

  onAbort(listener: (notice: AbortNotice) => void): void {
    this.#abortListeners.push(listener);
    if (this.#abortListeners.length === 1) {
      // Once subscribed, ioredis re-subscribes after every reconnect. A first SUBSCRIBE that fails (Redis not
      // reachable) is not retried here: the engine's other calls fail with the reason, and aborts have a
      // polling backstop in the store.
      this.#subscribe(abortChannel(this.prefix)).catch(() => undefined);
    }
  }

  onReconnect(listener: () => void): void {
    this.#reconnectListeners.push(listener);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** The command connection, shared by queues and workers; connects on first use, or fails with the reason. */
  connection(): Promise<Redis> {
    if (this.#closing !== undefined) {
      return Promise.reject(new InitializationError(`The engine ${this.description} is closed`));
    }
    if (this.#client !== undefined && this.#client.status === 'ready') return Promise.resolve(this.#client);
    this.#connecting ??= this.#connect().catch((e: unknown) => {
      this.#connecting = undefined;
      throw e;
    });
    return this.#connecting;
  }

  /** Called by a consumer once it stopped. */
  forget(consumer: RedisConsumer): void {
    this.#consumers.delete(consumer);
  }

  async #connect(): Promise<Redis> {
    const client = this.#client ?? new Redis(this.#redisOptions());
    this.#client = client;
    await this.#ready(client);
    return client;
  }

  /** Resolves once `client` answered; rejects on its first error, or past the connect timeout. */
  async #ready(client: Redis): Promise<void> {
    let onError: ((e: Error) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.ping(),
        new Promise<never>((_, reject) => {
          onError = (e) => reject(e);
          client.once('error', onError);
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.#connectTimeoutMs} ms`)),
            this.#connectTimeoutMs,
          );
        }),
      ]);
    } catch (e) {
      if (this.#client === client) this.#client = undefined;
      client.disconnect();
      const reason = e instanceof Error ? e.message : String(e);
      throw new InitializationError(`Redis is not reachable at ${this.description}: ${reason}`, { cause: e });
    } finally {
      clearTimeout(timer);
      if (onError !== undefined) client.off('error', onError);
    }
  }

  #redisOptions(): RedisOptions {
    const url = this.#url;
    return {
      host: url.host,
      port: url.port,
      db: url.db,
      ...(url.username === undefined ? {} : { username: url.username }),
      ...(url.password === undefined ? {} : { password: url.password }),
      ...(url.tls ? { tls: {} } : {}),
      // BullMQ's blocking connection (duplicated from this one) requires it; a command waits for a reconnect
      // instead of failing after a few retries. The first use is bounded by the connect timeout instead.
      maxRetriesPerRequest: null,
      lazyConnect: true,
      connectionName: `flyte-${this.prefix}`,
    };
  }

  async #queue(name: string): Promise<ActionQueue> {
    checkQueueName(name);
    const connection = await this.connection();
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = new Queue<ActionJob, null>(name, { connection, prefix: this.prefix });
      // Connection errors reach the caller of each command; the queue's own 'error' events would otherwise be
      // thrown as unhandled.
      queue.on('error', () => undefined);
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Creates the worker of a consumer for `queue`, on the shared connection. */
  async worker(queue: string, options: ConsumeOptions, drainDelaySeconds: number): Promise<ActionWorker> {
    const connection = await this.connection();
    const lockMs = options.lockMs ?? 30_000;
    const worker = new Worker<ActionJob, null>(queue, null, {
      connection,
      prefix: this.prefix,
      lockDuration: lockMs,
      stalledInterval: options.stalledIntervalMs ?? Math.max(1, Math.floor(lockMs / 2)),
      maxStalledCount: options.maxStalledCount ?? MAX_STALLED_COUNT,
      drainDelay: drainDelaySeconds,
      autorun: false,
    });
    // Connection errors show in the fetch loops and in renewals, which deal with them.
    worker.on('error', () => undefined);
    return worker;
  }

  async #subscriberConnection(): Promise<Redis> {
    this.#subscriberReady ??= (async () => {
      const client = await this.connection();
      const subscriber = client.duplicate({ connectionName: `flyte-${this.prefix}-sub` });
      this.#subscriber = subscriber;
      subscriber.on('message', (channel: string, message: string) => this.#dispatch(channel, message));
      // Every 'ready' but the first is a reconnect. ioredis emits 'ready' *before* it sends the SUBSCRIBE of
      // the channels it had: a listener that read the store at once could miss an end published before the
      // subscription is back. So the listeners run once a PING, sent after the SUBSCRIBE (on the next turn),
      // was answered: replies come in order, so every channel is subscribed again by then.
      let readies = 0;
      subscriber.on('ready', () => {
        if (++readies === 1) return;
        setImmediate(() => {
          subscriber.ping().then(
            () => {
              for (const listener of [...this.#reconnectListeners]) callSafely(listener);
            },
            // The connection dropped again: its next 'ready' calls the listeners.
            () => undefined,
          );
        });
      });
      await this.#ready(subscriber);
      this.#checkSubscriber(subscriber);
      // Errors are followed by ioredis reconnecting, then by 'ready' (and onReconnect) once it is back.
      subscriber.on('error', () => undefined);
      return subscriber;
    })().catch((e: unknown) => {
      this.#subscriberReady = undefined;
      this.#subscriber = undefined;
      throw e;
    });
    return this.#subscriberReady;
  }

  /**
   * A connection can go half-open (a peer that vanished without a FIN): ioredis then waits for ever, and every
   * message is lost without a reconnect. Every {@link SUBSCRIBER_CHECK_MS}, a PING (valid in subscriber mode) must
   * be answered within as long; if not, the connection is dropped and ioredis reconnects and resubscribes.
   */
  #checkSubscriber(subscriber: Redis): void {
    let checking = false;
    const timer = setInterval(() => {
      if (this.#closing !== undefined) {
        clearInterval(timer);
        return;
      }
      if (checking || subscriber.status !== 'ready') return;
      checking = true;
      let answered = false;
      const deadline = setTimeout(() => {
        if (!answered && subscriber.status === 'ready') subscriber.disconnect(true);
      }, SUBSCRIBER_CHECK_MS);
      deadline.unref();
      subscriber
        .ping()
        .catch(() => undefined) // a dropped connection: ioredis reconnects by itself
        .finally(() => {
          answered = true;
          checking = false;
          clearTimeout(deadline);
        });
    }, SUBSCRIBER_CHECK_MS);
    timer.unref();
  }

  async #subscribe(channel: string): Promise<void> {
    const subscriber = await this.#subscriberConnection();
    await subscriber.subscribe(channel);
  }

  #dispatch(channel: string, message: string): void {
    if (channel === abortChannel(this.prefix)) {
      const notice = parseAbortNotice(message);
      if (notice === undefined) return; // Not ours (someone else publishing on the channel): ignored.
      for (const listener of [...this.#abortListeners]) callSafely(() => listener(notice));
      return;
    }
    const entry = this.#watchers.get(channel);
    if (entry === undefined) return;
    for (const listener of [...entry.listeners]) callSafely(() => listener(message));
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#consumers].map((consumer) => consumer.stop()));
    await Promise.allSettled([...this.#queues.values()].map((queue) => queue.close()));
    this.#queues.clear();
    this.#watchers.clear();
    const connecting = this.#subscriberReady;
    await connecting?.catch(() => undefined);
    this.#subscriber?.disconnect();
    await this.#connecting?.catch(() => undefined);
    if (this.#client !== undefined) {
      await this.#client.quit().catch(() => this.#client?.disconnect());
    }
  }
}

interface Held {
  readonly key: string;
  readonly job: ActionBullJob;
  readonly token: string;
  readonly worker: ActionWorker;
  readonly lost: AbortController;
  parked: boolean;
  /** `complete()` was called (its promise, for a second call): a failed renewal now is not a loss. */
  completing: Promise<boolean> | undefined;
  /** No longer held: completed, lost or handed back. */
  released: boolean;
}

/** A running {@link Engine.consume}: fetch loops per queue, the gate, lock renewal. */
class RedisConsumer implements Consumer {
  readonly #engine: RedisEngine;
  readonly #queues: readonly string[];
  readonly #options: ConsumeOptions;
  readonly #lockMs: number;
  readonly #onLease: (lease: Lease) => void;
  readonly #id = randomUUID();
  #tokens = 0;
  readonly #workers = new Map<string, ActionWorker>();
  readonly #held = new Map<string, Held>();
  /** Busy leases plus fetches in flight: what the gate counts. */
  #slots = 0;
  #stopping = false;
  /** A failure was reported and nothing has succeeded since: the next failures are not reported again. */
  #failing = false;
  #stopped: Promise<void> | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;
  /** Loops waiting for a free slot, first come first served: a freed slot is handed to the first of them. */
  #slotWaiters: Array<{ readonly queue: string; readonly grant: (granted: boolean) => void }> = [];
  /** Blocking loops waiting for room in the gate before they block (they take no slot while blocking). */
  #roomWaiters: Array<{ readonly queue: string; readonly resolve: (room: boolean) => void }> = [];
  /**
   * Non-blocking loops that found their queue empty, by queue, waiting for a fetch of that queue that found a
   * job (a burst, maybe). A found job wakes one of them; each that finds one wakes the next, so a burst fans out
   * over the loops without a storm of empty fetches.
   */
  readonly #jobWaiters = new Map<string, Array<() => void>>();
  /** Resolved whenever the last held lease goes. */
  #emptied: Array<() => void> = [];
  readonly #loops: Promise<void>[] = [];

  constructor(
    engine: RedisEngine,
    queues: readonly string[],
    options: ConsumeOptions,
    onLease: (lease: Lease) => void,
  ) {
    this.#engine = engine;
    this.#queues = [...new Set(queues)];
    this.#options = options;
    this.#lockMs = options.lockMs ?? 30_000;
    this.#onLease = onLease;
  }

  get held(): number {
    return this.#held.size;
  }

  get busy(): number {
    let busy = 0;
    for (const held of this.#held.values()) if (!held.parked) busy++;
    return busy;
  }

  start(): void {
    // A blocking fetch takes no slot while it waits (see #fetchLoop), so an idle queue keeps no slot from the
    // others; the drain delay only bounds how long a blocked fetch outlives a close.
    const drainDelaySeconds = 5;
    for (const queue of this.#queues) {
      this.#loops.push(
        (async () => {
          const worker = await this.#startWorker(queue, drainDelaySeconds);
          if (worker === undefined) return;
          if (this.#stopping) {
            await worker.close(true);
            return;
          }
          this.#workers.set(queue, worker);
          await worker.startStalledCheckTimer();
          const loops = Math.max(1, Math.min(FETCH_LOOPS, this.#options.concurrency));
          await Promise.all(Array.from({ length: loops }, (_, i) => this.#fetchLoop(worker, i === 0)));
        })().catch((e: unknown) => this.#report(e)),
      );
    }
    const every = Math.max(1, Math.floor(this.#lockMs / 4));
    this.#renewTimer = setInterval(() => {
      if (this.#renewing !== undefined) return; // The last renewal is still running (Redis slow): skip a tick.
      this.#renewing = this.#renew().finally(() => (this.#renewing = undefined));
    }, every);
    this.#renewTimer.unref();
  }

  /** The worker of `queue`, once Redis answers (tried again until it does); `undefined` once stopping. */
  async #startWorker(queue: string, drainDelaySeconds: number): Promise<ActionWorker | undefined> {
    while (!this.#stopping) {
      try {
        const worker = await this.#engine.worker(queue, this.#options, drainDelaySeconds);
        this.#failing = false;
        return worker;
      } catch (e) {
        this.#report(e);
        await delay(FETCH_RETRY_MS);
      }
    }
    return undefined;
  }

  /** Tells `onError` about the first failure of a streak. */
  #report(e: unknown): void {
    if (this.#failing || this.#stopping) return;
    this.#failing = true;
    const error = e instanceof Error ? e : new Error(String(e));
    const onError = this.#options.onError ?? ((err: Error) => process.emitWarning(`flyte engine: ${err.message}`));
    callSafely(() => onError(error));
  }

  async drain(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#wakeAll();
    // Waiting parents, and jobs fetched that wait for a slot, go back at once: another worker takes them over now,
    // not after the grace (nor a lock timeout). Busy leases get the grace to finish; one that parks meanwhile (a
    // child call) goes back then (see `park`).
    await Promise.allSettled(
      [...this.#held.values()]
        .filter((held) => held.parked && held.completing === undefined)
        .map((held) => this.#giveBack(held)),
    );
    if (this.#held.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#emptied.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    await Promise.allSettled([...this.#held.values()].map((held) => this.#giveBack(held)));
    await this.stop();
  }

  /** Stops at once: every held lease lost, the workers closed without waiting. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      this.#wakeAll();
      clearInterval(this.#renewTimer);
      for (const held of [...this.#held.values()]) this.#release(held, true);
      await Promise.allSettled([...this.#workers.values()].map((worker) => worker.close(true)));
      await Promise.allSettled(this.#loops);
      this.#engine.forget(this);
    })();
    return this.#stopped;
  }

  async #fetchLoop(worker: ActionWorker, blocking: boolean): Promise<void> {
    /** The blocking loop's last fetch found nothing: its next one blocks, and a job it finds came alone. */
    let afterEmpty = true;
    while (!this.#stopping) {
      // The blocking loop waits for room in the gate but takes no slot while it blocks: with more queues than
      // slots, idle queues must not hold the slots that a busy one needs. It takes a slot when a job arrives,
      // and hands the job back if the room went to another loop meanwhile.
      if (blocking) {
        if (!(await this.#waitForRoom(worker.name))) continue;
      } else if (!this.#reserve() && !(await this.#waitForSlot(worker.name))) {
        continue;
      }
      const token = this.#token();
      let job: ActionBullJob | undefined;
      try {
        job = await worker.getNextJob(token, { block: blocking });
      } catch (e) {
        // Redis unreachable or the worker closing: give the slot back, and try again a little later.
        if (!blocking) this.#unreserve();
        if (this.#stopping) continue;
        this.#report(e);
        await delay(FETCH_RETRY_MS);
        continue;
      }
      this.#failing = false;
      if (job === undefined) {
        afterEmpty = true;
        if (!blocking) this.#unreserve();
        // The blocking loop blocks again at once; the others wait for a fetch that found a job (a burst).
        if (!blocking) await this.#waitForJob(worker.name);
        continue;
      }
      // A job that ended a block came to an empty queue: no parked loop is woken for it (in a chain of single
      // jobs, each would make an empty fetch). The blocking loop's next fetch does not block: if it finds a job
      // too (a burst), that one wakes a parked loop, and the burst fans out from there.
      if (!(blocking && afterEmpty)) this.#wakeOne(worker.name);
      afterEmpty = false;
      if (blocking && !this.#reserve()) {
        // The room went to another loop: the job waits for the next slot, its lock renewed, first come first
        // served with the loops of other queues (so that a queue with a backlog cannot starve this one).
        await this.#admitLater(worker, job, token);
        continue;
      }
      this.#accept(worker, job, token);
    }
  }

  /** Holds a fetched job, not busy, until a slot is free for it; hands it back if the consumer stops first. */
  async #admitLater(worker: ActionWorker, job: ActionBullJob, token: string): Promise<void> {
    const held = this.#hold(worker, job, token, true);
    if (held === undefined) return;
    const granted = await this.#waitForSlot(worker.name);
    if (held.released) {
      if (granted) this.#unreserve();
      return;
    }
    if (!granted) {
      await this.#handBack(held);
      return;
    }
    held.parked = false; // it holds the slot it was granted
    this.#lease(held);
  }

  /** Resolves `true` once the gate has room that no waiting loop claims, `false` when the consumer stops. */
  #waitForRoom(queue: string): Promise<boolean> {
    if (this.#stopping) return Promise.resolve(false);
    if (this.#slots < this.#options.concurrency && this.#slotWaiters.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => this.#roomWaiters.push({ queue, resolve }));
  }

  /** A fetched job holds the slot reserved for its fetch. */
  #accept(worker: ActionWorker, job: ActionBullJob, token: string): void {
    const held = this.#hold(worker, job, token, false);
    if (held !== undefined) this.#lease(held);
  }

  /**
   * Registers a fetched job as held (its lock renewed from now on); `waiting`: it does not hold a slot yet.
   * `undefined` for a job that is not to run: it was handed back (stopping). A job that BullMQ gave up on
   * (`deferredFailure`: it stalled past maxStalledCount) is leased too, saying so: its holder fails the action.
   */
  #hold(worker: ActionWorker, job: ActionBullJob, token: string, waiting: boolean): Held | undefined {
    if (job.id === undefined) {
      if (!waiting) this.#unreserve();
      return undefined;
    }
    if (this.#stopping) {
      // Fetched while stopping: hand it straight back.
      if (!waiting) this.#unreserve();
      job.moveToWait(token).catch(() => undefined); // If it fails, the lock expires and the stalled check returns it.
      return undefined;
    }
    const held: Held = {
      key: `${worker.name}\u0000${job.id}`,
      job,
      token,
      worker,
      lost: new AbortController(),
      parked: waiting,
      completing: undefined,
      released: false,
    };
    this.#held.set(held.key, held);
    return held;
  }

  /** Hands a held job that holds its slot to `onLease`. */
  #lease(held: Held): void {
    const { job } = held;
    const lease: Lease = {
      job: job.data,
      redeliveries: Math.max(0, job.attemptsStarted - 1),
      // BullMQ marks a job that stalled past maxStalledCount, and leaves failing it to whoever fetches it next.
      deferredFailure:
        job.deferredFailure === undefined || job.deferredFailure === '' ? undefined : job.deferredFailure,
      lost: held.lost.signal,
      park: () => {
        if (held.released || held.completing !== undefined || held.parked) return;
        held.parked = true;
        this.#unreserve();
        // Draining: a parent that starts waiting goes back to its queue (on the next turn, out of its child call).
        if (this.#stopping) setImmediate(() => void this.#giveBack(held));
      },
      unpark: () => {
        if (held.released || held.completing !== undefined || !held.parked) return;
        held.parked = false;
        this.#slots++; // At once, even past the concurrency: a resuming parent never waits.
      },
      complete: () =>
        held.released && held.completing === undefined
          ? Promise.resolve(false)
          : (held.completing ??= this.#complete(held)),
      retryLater: (delayMs) =>
        held.released || held.completing !== undefined
          ? Promise.resolve()
          : this.#handBack(held, { lost: false, delayMs }),
    };
    callSafely(() => this.#onLease(lease));
  }

  async #complete(held: Held): Promise<boolean> {
    // The slot of a busy lease goes to the fetch chained to its completion, if the gate still has room for it.
    // Not while a loop of another queue waits for a slot: a queue with a backlog would keep it for ever.
    const queue = held.worker.name;
    const free = this.#options.concurrency - this.#slots + (held.parked ? 0 : 1);
    const otherQueueWaits =
      this.#slotWaiters.some((waiter) => waiter.queue !== queue) ||
      this.#roomWaiters.some((waiter) => waiter.queue !== queue);
    const reserved = !this.#stopping && free > 0 && !otherQueueWaits;
    if (reserved && held.parked) this.#slots++;
    if (!reserved && !held.parked) this.#unreserve();
    held.parked = true; // Its slot is accounted for above.
    let next: unknown;
    let completed = true;
    try {
      // fetchNext is always passed: left out, it defaults to true and locks another job under this token.
      next = await held.job.moveToCompleted(null, held.token, reserved);
    } catch {
      // The lock was lost meanwhile ("Missing lock", "Lock mismatch"): the job is someone else's now.
      next = undefined;
      completed = false;
    }
    this.#release(held, false);
    if (!reserved) return completed;
    const job = Array.isArray(next) ? await this.#jobFromData(held.worker, next, held.token) : undefined;
    if (job === undefined) {
      this.#unreserve();
      return completed;
    }
    this.#wakeOne(held.worker.name);
    this.#accept(held.worker, job, held.token);
    return completed;
  }

  /** The job that `moveToCompleted(…, true)` fetched, as the worker builds it. */
  async #jobFromData(worker: ActionWorker, next: unknown[], token: string): Promise<ActionBullJob | undefined> {
    const [jobData, id] = next;
    if (jobData === undefined || jobData === null || jobData === 0) return undefined;
    // `nextJobFromJobData` is protected in BullMQ's types; it is what the worker's own loop does with this array.
    const build = (
      worker as unknown as {
        nextJobFromJobData(data: unknown, id: unknown, token: string): Promise<ActionBullJob | undefined>;
      }
    ).nextJobFromJobData.bind(worker);
    return build(jobData, id, token);
  }

  /** A drain gives a leased job back: its holder gives its claim back first (`ConsumeOptions.onHandBack`). */
  #giveBack(held: Held): Promise<void> {
    return this.#handBack(held, { before: this.#options.onHandBack });
  }

  /**
   * Gives a held job back to its queue at once, or after `delayMs`. `lost`: its lease's signal fires. `before` (a
   * leased job's holder giving its claim back) runs first, the lock still renewed meanwhile, so that no other
   * worker can take the job before it is handed back.
   */
  async #handBack(
    held: Held,
    {
      lost = true,
      delayMs = 0,
      before,
    }: { lost?: boolean; delayMs?: number; before?: (job: ActionJob) => Promise<void> } = {},
  ): Promise<void> {
    if (held.released) return;
    if (before !== undefined) await before(held.job.data).catch(() => undefined);
    if (held.released) return;
    this.#release(held, lost);
    try {
      if (delayMs > 0) await held.job.moveToDelayed(Date.now() + delayMs, held.token);
      else await held.job.moveToWait(held.token);
    } catch {
      // Lock gone already: the stalled check (or whoever holds it) has it.
    }
  }

  async #renew(): Promise<void> {
    const byWorker = new Map<ActionWorker, Held[]>();
    for (const held of this.#held.values()) {
      if (held.completing !== undefined) continue;
      const list = byWorker.get(held.worker) ?? [];
      list.push(held);
      byWorker.set(held.worker, list);
    }
    for (const [worker, list] of byWorker) {
      for (let i = 0; i < list.length; i += RENEW_BATCH) {
        const batch = list.slice(i, i + RENEW_BATCH);
        let failed: string[];
        try {
          failed = await worker.extendJobLocks(
            batch.map((held) => held.job.id ?? ''),
            batch.map((held) => held.token),
            this.#lockMs,
          );
        } catch {
          // Redis unreachable: try again next tick. A lock that expires meanwhile shows up then as a failure.
          continue;
        }
        const failedIds = new Set(failed);
        for (const held of batch) {
          if (failedIds.has(held.job.id ?? '') && held.completing === undefined && !held.released)
            this.#release(held, true);
        }
      }
    }
  }

  /** The lease is no longer held; `lost`: its signal fires. */
  #release(held: Held, lost: boolean): void {
    if (held.released) return;
    held.released = true;
    this.#held.delete(held.key);
    if (!held.parked) this.#unreserve();
    if (lost) held.lost.abort(new Error(`The job of action ${held.job.data.actionName} was lost`));
    if (this.#held.size === 0) {
      const emptied = this.#emptied;
      this.#emptied = [];
      for (const resolve of emptied) resolve();
    }
  }

  /** Takes a free slot, unless loops are waiting for one already (they come first). */
  #reserve(): boolean {
    if (this.#stopping || this.#slots >= this.#options.concurrency || this.#slotWaiters.length > 0) return false;
    this.#slots++;
    return true;
  }

  /** Resolves `true` once a slot was handed to the caller, `false` when the consumer stops. */
  #waitForSlot(queue: string): Promise<boolean> {
    if (this.#stopping) return Promise.resolve(false);
    return new Promise((grant) => this.#slotWaiters.push({ queue, grant }));
  }

  #unreserve(): void {
    this.#slots--;
    while (!this.#stopping && this.#slots < this.#options.concurrency) {
      const waiter = this.#slotWaiters.shift();
      if (waiter === undefined) break;
      this.#slots++;
      waiter.grant(true);
    }
    if (this.#slots < this.#options.concurrency && this.#roomWaiters.length > 0) {
      const room = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const waiter of room) waiter.resolve(!this.#stopping);
    }
  }

  /** Called once stopping: every waiting loop wakes, and then ends. */
  #wakeAll(): void {
    const slotWaiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const waiter of slotWaiters) waiter.grant(false);
    const roomWaiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const waiter of roomWaiters) waiter.resolve(false);
    const jobWaiters = [...this.#jobWaiters.values()].flat();
    this.#jobWaiters.clear();
    for (const resolve of jobWaiters) resolve();
  }

  /** Parks a non-blocking loop of `queue` until a fetch of that queue finds a job (or the consumer stops). */
  #waitForJob(queue: string): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.#jobWaiters.get(queue);
      if (waiters === undefined) this.#jobWaiters.set(queue, [resolve]);
      else waiters.push(resolve);
    });
  }

  /** A fetch of `queue` found a job: one parked loop of that queue tries too. */
  #wakeOne(queue: string): void {
    this.#jobWaiters.get(queue)?.shift()?.();
  }

  #token(): string {
    return `${this.#id}:${++this.#tokens}`;
  }
}

function checkSlotMax(max: number): void {
  if (!Number.isInteger(max) || max < 1) {
    throw new TypeError(`acquireSlot: expected a max that is an integer >= 1, received ${max}`);
  }
}

function checkQueueName(name: string): void {
  if (name === '' || name.includes(':')) {
    throw new TypeError(`Invalid queue name: expected a non-empty name without ':', received '${name}'`);
  }
}

function parseAbortNotice(message: string): AbortNotice | undefined {
  try {
    const value: unknown = JSON.parse(message);
    if (typeof value !== 'object' || value === null) return undefined;
    const { runName, actionName } = value as Record<string, unknown>;
    if (typeof runName !== 'string') return undefined;
    if (actionName !== null && typeof actionName !== 'string') return undefined;
    return { runName, actionName };
  } catch {
    return undefined; // Not JSON: not a notice of ours.
  }
}

/** Calls a listener; what it throws is reported as a warning, so that one listener cannot break the others. */
function callSafely(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    process.emitWarning(`flyte engine: a listener threw: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
