/**
 * The worker process of the BullMQ contenders of `npm run bench:peers`: BullMQ's standard `Worker` on one queue,
 * the peers' own BullMQ. Jobs by name: `double` (`{ x }` → `2x`, a child), `sum` (the parent of a fan-out flow:
 * the sum of its children's values) and `link` (one step of a chain flow: `2x` plus its child's value). Prints
 * `ready` once it consumes; drains and exits on SIGTERM.
 *
 * ```sh
 * node --import tsx bench/peers/bullmq-worker.ts --redis redis://127.0.0.1:16390 --prefix peers --queue peers --concurrency 64
 * ```
 * @module
 */
import { parseArgs } from 'node:util';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';

const { values } = parseArgs({
  options: {
    redis: { type: 'string' },
    prefix: { type: 'string' },
    queue: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
  },
});

/** The sum of what the children of `job` returned. */
async function childrenSum(job: Job): Promise<number> {
  let total = 0;
  for (const v of Object.values(await job.getChildrenValues<number>())) total += v;
  return total;
}

const connection = new Redis(values.redis!, { maxRetriesPerRequest: null });
const worker = new Worker<{ x: number }, number>(
  values.queue!,
  async (job) => {
    switch (job.name) {
      case 'double':
        return job.data.x * 2;
      case 'sum':
        return childrenSum(job);
      case 'link':
        return job.data.x * 2 + (await childrenSum(job));
      default:
        throw new Error(`bullmq-worker: expected a job named double, sum or link; received ${job.name}`);
    }
  },
  { connection, prefix: values.prefix!, concurrency: Number(values.concurrency) },
);
await worker.waitUntilReady();
console.log('ready');
process.once('SIGTERM', () => {
  void worker.close().then(() => {
    connection.disconnect();
    process.exit(0);
  });
});
