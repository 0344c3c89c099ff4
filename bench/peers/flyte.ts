/**
 * flyte-ts in `npm run bench:peers`, from the repo's sources: local runs on SQLite and on Postgres (the tasks of
 * `npm run bench`, `bench/tasks.ts`), and distributed runs with one and two `flyte worker` processes (the tasks
 * and the worker set-up of `npm run bench:remote`, `bench/remote-tasks.ts` and `withFlyte`).
 *
 * Postgres is the private database of the sample (`FLYTE_BENCH_PG_URL`, set by the orchestrator), Redis the
 * private `redis-server` (`FLYTE_TEST_REDIS_URL`): the shared modules read both from the environment.
 * @module
 */
import * as flyte from '../../src/index.js';
import { runtime } from '../../src/internal/runtime.js';
import * as remote from '../remote-tasks.js';
import { withFlyte } from '../remote-sample.js';
import { benchStore, storeCounters } from '../stores.js';
import { chain, fanOutMap } from '../tasks.js';
import type { Peer, Session, Workload } from './peers.js';

/** Throws unless the run recorded `n + 1` actions (the parent and every child), all succeeded. */
async function checkRecorded(run: flyte.Run | undefined, n: number): Promise<void> {
  if (run === undefined) throw new Error('flyte: no run to check');
  const actions = await run.actions();
  const succeeded = actions.filter((a) => a.phase === 'succeeded').length;
  if (actions.length !== n + 1 || succeeded !== n + 1) {
    throw new Error(
      `flyte: expected ${n + 1} actions, all succeeded; received ${actions.length}, ${succeeded} succeeded`,
    );
  }
}

/** A local run in this process, recorded in a fresh store of `kind`. */
function local(kind: 'sqlite' | 'postgres'): Peer {
  return async (ctx, use) => {
    const store = benchStore(kind, 1);
    flyte.init({ root: store.root, ...(store.spec === undefined ? {} : { store: store.spec }), echoLogs: false });
    let last: flyte.Run | undefined;
    const session: Session = {
      run: async (workload: Workload, n: number) => {
        const run = workload === 'fanout' ? await flyte.run(fanOutMap, n, ctx.concurrency) : await flyte.run(chain, n);
        last = run;
        return run.outputs();
      },
      check: (_workload, n) => checkRecorded(last, n),
      workerPids: [],
      serverPids: [],
      storeCommits: () => storeCounters(runtime().store)?.commits ?? 0,
    };
    try {
      return await use(session);
    } finally {
      await flyte.shutdown();
      await store.dispose();
    }
  };
}

/** A remote run: this process submits, `workers` fresh `flyte worker` processes run every action. */
function distributed(workers: number): Peer {
  return (ctx, use) =>
    withFlyte(
      Array.from({ length: workers }, () => ({ concurrency: ctx.concurrency })),
      async (f) => {
        let last: flyte.Run | undefined;
        return use({
          run: async (workload: Workload, n: number) => {
            if (workload === 'fanout') {
              const run = await flyte.run(remote.fanOut, n, ctx.concurrency);
              last = run;
              return run.outputs();
            }
            const run = await flyte.run(remote.chain, n);
            last = run;
            return (await run.outputs()).sum;
          },
          check: (_workload, n) => checkRecorded(last, n),
          workerPids: f.workers.map((w) => w.pid),
          serverPids: [],
        });
      },
    );
}

/** The flyte-ts contenders. */
export const peers: Record<string, Peer> = {
  'flyte-sqlite': local('sqlite'),
  'flyte-postgres': local('postgres'),
  'flyte-1w': distributed(1),
  'flyte-2w': distributed(2),
};
