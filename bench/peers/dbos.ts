/**
 * DBOS Transact (`@dbos-inc/dbos-sdk`) in `npm run bench:peers`, in this process as DBOS runs (a library), its
 * system database the sample's private Postgres database. Two ways to make the children durable:
 *
 * - `dbos-steps`: one workflow, each child a step (`DBOS.runStep`): p-map at 64 for the fan-out (steps start in
 *   item order, so their ids are deterministic), a loop of awaits for the chain.
 * - `dbos-queue`: one workflow, each child a child workflow enqueued on a queue of concurrency 64 and awaited, in
 *   the documented pattern (enqueue in a loop, then `getResult` of each handle in order). DBOS polls for both
 *   (the queue's dispatch, a handle's result); their defaults are 1 s, set here to {@link POLL_MS} ms, else a
 *   chain of 1 000 queued children would wait a poll per child.
 * @module
 */
import { DBOS, type WorkflowQueue } from '@dbos-inc/dbos-sdk';
import pMap from 'p-map';
import type { Peer, Session, Workload } from './peers.js';

/** The queue's minimum dispatch interval and the result polling interval, ms (DBOS's defaults: 1 000). */
const POLL_MS = 10;
const QUEUE = 'peers';

async function double(x: number): Promise<number> {
  return x * 2;
}

const items = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const total = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

const stepsFanOut = DBOS.registerWorkflow(
  async (n: number, concurrency: number): Promise<number> =>
    total(await pMap(items(n), (x) => DBOS.runStep(() => double(x), { name: 'double' }), { concurrency })),
  { name: 'stepsFanOut' },
);

const stepsChain = DBOS.registerWorkflow(
  async (n: number): Promise<number> => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += await DBOS.runStep(() => double(i), { name: 'double' });
    return sum;
  },
  { name: 'stepsChain' },
);

const child = DBOS.registerWorkflow(double, { name: 'child' });

const queueFanOut = DBOS.registerWorkflow(
  async (n: number): Promise<number> => {
    const handles = [];
    for (let x = 0; x < n; x++) handles.push(await DBOS.startWorkflow(child, { queueName: QUEUE })(x));
    let sum = 0;
    for (const h of handles) sum += await h.getResult({ pollingIntervalMs: POLL_MS });
    return sum;
  },
  { name: 'queueFanOut' },
);

const queueChain = DBOS.registerWorkflow(
  async (n: number): Promise<number> => {
    let sum = 0;
    for (let x = 0; x < n; x++) {
      sum += await (await DBOS.startWorkflow(child, { queueName: QUEUE })(x)).getResult({ pollingIntervalMs: POLL_MS });
    }
    return sum;
  },
  { name: 'queueChain' },
);

/** DBOS launched on `ctx.pgUrl` (it creates and migrates its system database there), shut down afterwards. */
function dbos(kind: 'steps' | 'queue'): Peer {
  return async (ctx, use) => {
    DBOS.setConfig({ name: 'peers', systemDatabaseUrl: ctx.pgUrl, applicationVersion: '0.1.0', logLevel: 'warn' });
    await DBOS.launch();
    try {
      let queue: WorkflowQueue | undefined;
      if (kind === 'queue') {
        queue = await DBOS.registerQueue(QUEUE, { globalConcurrency: ctx.concurrency, minPollingIntervalMs: POLL_MS });
      }
      const session: Session = {
        run: async (workload: Workload, n: number) => {
          if (kind === 'steps') {
            return workload === 'fanout' ? stepsFanOut(n, ctx.concurrency) : stepsChain(n);
          }
          if (queue === undefined) throw new Error('dbos-queue: no queue registered');
          return workload === 'fanout' ? queueFanOut(n) : queueChain(n);
        },
        workerPids: [],
        serverPids: [],
      };
      return await use(session);
    } finally {
      await DBOS.shutdown();
    }
  };
}

/** The DBOS contenders. */
export const peers: Record<string, Peer> = { 'dbos-steps': dbos('steps'), 'dbos-queue': dbos('queue') };
