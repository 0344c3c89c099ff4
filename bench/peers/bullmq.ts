/**
 * BullMQ in `npm run bench:peers`: a `FlowProducer` flow (a parent job whose children are the fan-out; a flow
 * `n` deep for the chain), and a plain `Queue` + `Worker`, the raw engine floor (`addBulk`, results from
 * `QueueEvents`; the chain adds a job and waits for it, `n` times). One worker process (`bullmq-worker.ts`,
 * concurrency 64) on the private `redis-server`. Completed jobs are kept (BullMQ's default), as flyte-ts keeps
 * its records.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlowProducer, Queue, QueueEvents, type FlowJob } from 'bullmq';
import { Redis } from 'ioredis';
import type { Peer, Session, Workload } from './peers.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bullmq-worker.ts');
const PREFIX = 'peers';
const QUEUE = 'peers';
/** Events kept in the queue's stream: more than a run emits, so that `QueueEvents` never misses one. */
const EVENTS_MAX_LEN = 1_000_000;

/** Starts `bullmq-worker.ts` and resolves once it consumes. */
async function startWorker(redisUrl: string, concurrency: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      WORKER,
      '--redis',
      redisUrl,
      '--prefix',
      PREFIX,
      '--queue',
      QUEUE,
      '--concurrency',
      String(concurrency),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let text = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the BullMQ worker exited (${code}) before it was ready`)));
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** A fan-out as one flow: a `sum` parent whose `n` children are `double` jobs. */
function fanOutFlow(n: number): FlowJob {
  return {
    name: 'sum',
    queueName: QUEUE,
    children: Array.from({ length: n }, (_, x) => ({ name: 'double', queueName: QUEUE, data: { x } })),
  };
}

/** A chain as one flow `n` deep: `link(i)` waits for `link(i − 1)`, so the leaf `link(0)` runs first. */
function chainFlow(n: number): FlowJob {
  let node: FlowJob = { name: 'link', queueName: QUEUE, data: { x: 0 } };
  for (let x = 1; x < n; x++) node = { name: 'link', queueName: QUEUE, data: { x }, children: [node] };
  return node;
}

/** The client's side: a queue (its events stream long enough), its events, the worker process. */
async function withBullmq<T>(
  redisUrl: string,
  concurrency: number,
  use: (queue: Queue, events: QueueEvents, connection: Redis, worker: ChildProcess) => Promise<T>,
): Promise<T> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE, { connection, prefix: PREFIX, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
  const events = new QueueEvents(QUEUE, { connection: { url: redisUrl }, prefix: PREFIX });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  const worker = await startWorker(redisUrl, concurrency);
  try {
    return await use(queue, events, connection, worker);
  } finally {
    await stop(worker);
    await events.close();
    await queue.close();
    connection.disconnect();
  }
}

/** The value a `completed` event carries (BullMQ sends it as JSON text). */
function returned(value: unknown): number {
  return Number(typeof value === 'string' ? JSON.parse(value) : value);
}

const flow: Peer = (ctx, use) =>
  withBullmq(ctx.redisUrl, ctx.concurrency, async (_queue, events, connection, worker) => {
    const producer = new FlowProducer({ connection, prefix: PREFIX });
    try {
      const session: Session = {
        run: async (workload: Workload, n: number) => {
          const node = await producer.add(workload === 'fanout' ? fanOutFlow(n) : chainFlow(n));
          return returned(await node.job.waitUntilFinished(events));
        },
        workerPids: [worker.pid!],
        serverPids: [],
      };
      return await use(session);
    } finally {
      await producer.close();
    }
  });

const plain: Peer = (ctx, use) =>
  withBullmq(ctx.redisUrl, ctx.concurrency, async (queue, events, _connection, worker) => {
    const fanOut = async (n: number): Promise<number> => {
      let done = 0;
      let total = 0;
      const all = new Promise<void>((resolve) => {
        const onCompleted = ({ returnvalue }: { returnvalue: unknown }): void => {
          total += returned(returnvalue);
          if (++done === n) {
            events.off('completed', onCompleted);
            resolve();
          }
        };
        events.on('completed', onCompleted);
      });
      await queue.addBulk(Array.from({ length: n }, (_, x) => ({ name: 'double', data: { x } })));
      await all;
      return total;
    };
    const chain = async (n: number): Promise<number> => {
      let total = 0;
      for (let x = 0; x < n; x++) total += returned(await (await queue.add('double', { x })).waitUntilFinished(events));
      return total;
    };
    return use({
      run: (workload: Workload, n: number) => (workload === 'fanout' ? fanOut(n) : chain(n)),
      workerPids: [worker.pid!],
      serverPids: [],
    });
  });

/** The BullMQ contenders. */
export const peers: Record<string, Peer> = { 'bullmq-flow': flow, 'bullmq-queue': plain };
