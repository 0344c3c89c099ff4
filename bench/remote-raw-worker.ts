/**
 * The engine floor of `npm run bench:remote`: BullMQ's standard `Worker` with a processor, no flyte-ts, taking
 * trivial jobs (`{ x }` → `x * 2`) from one queue. Prints `ready` once it runs; exits on SIGTERM.
 *
 * ```sh
 * node --import tsx bench/remote-raw-worker.ts --redis redis://127.0.0.1:6379 --prefix P --queue Q --concurrency 64
 * ```
 * @module
 */
import { parseArgs } from 'node:util';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const { values } = parseArgs({
  options: {
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    prefix: { type: 'string' },
    queue: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
  },
});
const connection = new Redis(values.redis, { maxRetriesPerRequest: null });
const worker = new Worker<{ x: number }, number>(values.queue!, async (job) => job.data.x * 2, {
  connection,
  prefix: values.prefix!,
  concurrency: Number(values.concurrency),
});
await worker.waitUntilReady();
console.log('ready');
process.once('SIGTERM', () => {
  void worker.close().then(() => {
    connection.disconnect();
    process.exit(0);
  });
});
