/**
 * The raw baselines of `npm run bench:peers`: the same child function with no system around it, the floor every
 * contender is compared with. The functions are those of `npm run bench` (`bench/tasks.ts`).
 * @module
 */
import { double, rawPMap, rawPromiseAll } from '../tasks.js';
import type { Peer, Session, Workload } from './peers.js';

async function chain(n: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < n; i++) total += await double(i);
  return total;
}

function session(fanOut: (n: number) => Promise<number>): Session {
  return {
    run: (workload: Workload, n: number) => (workload === 'fanout' ? fanOut(n) : chain(n)),
    workerPids: [],
    serverPids: [],
  };
}

/** `promise-all` (every child in flight at once) and `p-map` (at most `concurrency`). */
export const peers: Record<string, Peer> = {
  'promise-all': async (_ctx, use) => use(session(rawPromiseAll)),
  'p-map': async (ctx, use) => use(session((n) => rawPMap(n, ctx.concurrency))),
};
