/**
 * WAL checkpoints off the event loop.
 *
 * In WAL mode a commit only appends pages to the `-wal` file, which costs tens of µs; folding the WAL back into
 * the database (a checkpoint) writes many pages and syncs the file, which costs milliseconds to tens of ms. By
 * default SQLite checkpoints inside the commit that crosses 1 000 WAL pages, so every few hundred small commits
 * one of them stalls the event loop for that long. Since a parent waits for its child's commit (durable before
 * visible), a sequential chain pays it on the hot path.
 *
 * A {@link Checkpointer} runs those checkpoints on a worker thread with its own connection to the same file:
 * the store tells it after each commit, and it runs a `PASSIVE` checkpoint (which never blocks the writer) at
 * most every `intervalMs` while commits come, so the WAL stays small and is reused from its start. The writer's
 * own automatic checkpoint stays on as a backstop, with a much higher threshold.
 * @module
 */
import { Worker } from 'node:worker_threads';
import { driverModuleFor, type SqliteDriverName } from './driver.js';

/**
 * The worker: a CommonJS script (eval'd), so it can `require` better-sqlite3 by its resolved path, or take
 * node:sqlite, on the store's own driver.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
let db;
if (workerData.driver === 'node') {
  db = new (require('node:sqlite').DatabaseSync)(workerData.file);
  db.exec('PRAGMA busy_timeout = 0');
} else {
  db = new (require(workerData.driver))(workerData.file, { timeout: 0 });
}
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let timer;
let dirty = false;
function run() {
  timer = undefined;
  if (!dirty) return;
  dirty = false;
  try {
    checkpoint.all();
  } catch {
    // Busy or failing: the next commit asks again, and the writer's own checkpoint is the backstop.
  }
  timer = setTimeout(run, workerData.intervalMs);
}
parentPort.on('message', (message) => {
  if (message === 'stop') {
    if (timer !== undefined) clearTimeout(timer);
    db.close();
    parentPort.close();
    return;
  }
  dirty = true;
  if (timer === undefined) timer = setTimeout(run, 0);
});
`;

/** Checkpoints one database file on a worker thread. */
export class Checkpointer {
  readonly #worker: Worker;
  #stopped = false;

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /**
   * Starts the worker for the database at `file` (which must already be in WAL mode), on `driver`. The worker
   * never keeps the process alive.
   */
  static start(file: string, driverName: SqliteDriverName, intervalMs = 250): Checkpointer {
    const driver = driverModuleFor(driverName);
    const worker = new Worker(WORKER, { eval: true, workerData: { file, driver, intervalMs } });
    worker.unref();
    // A worker that fails (the file was removed, say) only ends the background checkpoints: commits go on, and
    // the writer's own automatic checkpoint takes over.
    worker.on('error', () => undefined);
    return new Checkpointer(worker);
  }

  /** A commit appended to the WAL: checkpoint soon. */
  committed(): void {
    if (!this.#stopped) this.#worker.postMessage(1);
  }

  /** Stops the worker, after the checkpoint it may be running. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    // Waited for: it holds the event loop until it is gone.
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await exited;
  }
}
