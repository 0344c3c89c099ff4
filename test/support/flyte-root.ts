/**
 * A fresh local state directory for one test file or suite: `flyte.init` on it before the tests,
 * `flyte.shutdown` and removal after them, on the store that `FLYTE_TEST_STORE` selects (`./test-store.ts`).
 *
 * With `FLYTE_TEST_STORE=postgres` the runs go to a fresh schema of the test Postgres, dropped after the tests:
 * `.ci/run` runs the SDK tests a second time that way. The schema is also set as `FLYTE_STORE` for the file's
 * process while the tests run, so that a test calling `flyte.init({ root })` again (to read back what a new
 * process would), or a child process it spawns with the inherited environment, stays on it. The directory is
 * still made, for offloaded values.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import * as flyte from 'flyte-ts';
import { chooseSqliteDriver, openConnection } from '../../src/store/sqlite/driver.js';
import { peekPostgres } from './postgres.js';
import { ON_POSTGRES, dropStoreOfRoot, initOptions, storeOfRoot } from './test-store.js';

export { ON_POSTGRES, initOptions, sqliteOnly, storeOfRoot } from './test-store.js';

/**
 * Registers the `before`/`after` hooks (of the file, or of the suite it is called in); the returned function
 * gives the directory once `before` ran. `options` go to `flyte.init`; `options.store` (e.g. `'memory:'`) is
 * used on SQLite and replaced by the directory's schema on Postgres.
 */
export function useFlyteRoot(prefix: string, options: Omit<flyte.InitOptions, 'root'> = {}): () => string {
  let root: string | undefined;
  const previousStore = process.env['FLYTE_STORE'];
  before(() => {
    root = mkdtempSync(join(tmpdir(), prefix));
    const init = initOptions(root, options);
    if (ON_POSTGRES && init.store !== undefined) process.env['FLYTE_STORE'] = init.store;
    flyte.init(init);
  });
  after(async () => {
    await flyte.shutdown();
    if (previousStore === undefined) delete process.env['FLYTE_STORE'];
    else process.env['FLYTE_STORE'] = previousStore;
    if (root === undefined) return;
    try {
      await dropStoreOfRoot(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  return () => {
    if (root === undefined) throw new Error('useFlyteRoot: the directory exists only once the tests run');
    return root;
  };
}

/**
 * The `attempts` rows stored for one action, `{ attempt, phase }` in attempt order, read straight from the
 * database of the test store (the root's SQLite file, or the root's Postgres schema): what a store wrote, not
 * what it answers.
 */
export async function storedAttemptRows(root: string, runName: string, actionName: string): Promise<unknown[]> {
  const store = storeOfRoot(root);
  if (store !== undefined) {
    const schema = new URL(store).searchParams.get('schema') ?? 'flyte';
    return peekPostgres(
      `SELECT attempt, phase FROM "${schema}".attempts WHERE run_name = $1 AND action_name = $2 ORDER BY attempt`,
      [runName, actionName],
    );
  }
  const db = openConnection(join(root, 'flyte.db'), chooseSqliteDriver(), { busyTimeoutMs: 5_000, readOnly: true });
  try {
    return db
      .prepare('SELECT attempt, phase FROM attempts WHERE run_name = ? AND action_name = ? ORDER BY attempt')
      .all(runName, actionName)
      .map((row) => ({ ...(row as object) })); // plain objects (node:sqlite's rows have no prototype)
  } finally {
    db.close();
  }
}
