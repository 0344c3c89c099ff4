import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { InitializationError, RuntimeSystemError } from '../src/errors.js';
import { openStore } from '../src/store/index.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, applyMigrations } from '../src/store/sqlite/migrations.js';
import {
  SqliteError,
  defaultSqliteDriver,
  nodeSqliteAvailable,
  openConnection,
  type SqliteConnection,
  type SqliteDriverName,
} from '../src/store/sqlite/driver.js';
import { SqliteStore, type SqliteStoreOptions } from '../src/store/sqlite/sqlite-store.js';
import { ERROR, makeAction, makeAttempt, makeRun, runStoreConformance } from './support/store-conformance.js';

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the OS temp dir, removed after the file's tests. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flyte-store-test-'));
  tempDirs.push(dir);
  return dir;
}

/**
 * Why `driver` cannot be tested on this Node (the reason its cases are skipped), or `false` when it can: node:sqlite
 * needs Node >= 22.13; better-sqlite3 must be installed and built for this Node.
 */
function driverSkip(driver: SqliteDriverName): string | false {
  if (driver === 'node' && !nodeSqliteAvailable()) {
    return `node:sqlite needs Node >= 22.13; this is Node ${process.versions.node}`;
  }
  try {
    openConnection(':memory:', driver, { busyTimeoutMs: 0 }).close();
    return false;
  } catch (err) {
    return `${driver} cannot be loaded here: ${err instanceof Error ? err.message : String(err)}`;
  }
}

const DRIVERS: readonly SqliteDriverName[] = ['better-sqlite3', 'node'];

/** Ends the transaction `db` may have open (a test's lock), ignoring that none is. */
function rollbackIfOpen(db: SqliteConnection): void {
  try {
    db.exec('ROLLBACK');
  } catch {
    // No transaction was open: nothing to end.
  }
}

/** Awaits `promise` while a referenced timer holds the event loop open: the store's own timers are unref'd. */
async function keepingAlive<T>(promise: Promise<T>): Promise<T> {
  const hold = setInterval(() => undefined, 1_000);
  try {
    return await promise;
  } finally {
    clearInterval(hold);
  }
}

function count(db: SqliteConnection, table: string): number {
  return db.preparePluck(`SELECT count(*) FROM ${table}`).get() as number;
}

for (const driver of DRIVERS) {
  const skip = driverSkip(driver);
  if (skip !== false) {
    describe(`SqliteStore on ${driver}`, { skip }, () => {
      it('runs the store conformance suite and the SQLite cases', () => undefined);
    });
    continue;
  }
  sqliteStoreSuite(driver);
}

/** The conformance suite and the SQLite store's own cases, on one driver. */
function sqliteStoreSuite(driver: SqliteDriverName): void {
  /** The store on the driver under test. */
  function open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    return SqliteStore.open(path, { ...options, driver });
  }

  /** A raw connection on the driver under test. */
  function connect(path: string, busyTimeoutMs = 5_000): SqliteConnection {
    return openConnection(path, driver, { busyTimeoutMs });
  }

  runStoreConformance(`SqliteStore on ${driver}`, async () => {
    const dir = tempDir();
    // A long interval: reads must see pending writes because they flush, not because a timer fired.
    const file = join(dir, 'nested', 'flyte.db');
    const store = open(file, { flushIntervalMs: 60_000 });
    const others: SqliteStore[] = [];
    return {
      store,
      openAnother: async () => {
        const other = open(file, { flushIntervalMs: 60_000 });
        others.push(other);
        return other;
      },
      cleanup: async () => {
        for (const other of others) await other.close();
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });

  /** A second, raw connection to the same file, as another process would have. */
  function peek(path: string): SqliteConnection {
    return connect(path, 0);
  }

  describe(`SqliteStore on ${driver}`, () => {
    it('keeps everything across close and reopen', async () => {
      const path = join(tempDir(), 'flyte.db');
      const first = open(path);
      await first.createRun(makeRun('r1', { labels: { k: 'v' } }));
      first.updateRun('r1', { phase: 'failed', startedAt: 1, endedAt: 2, error: ERROR });
      first.putAction(makeAction('r1', 'a0', { parentName: null, inputs: '[1]', inputsHash: 'h', outputs: '2' }));
      first.putAction(makeAction('r1', 'a1', { group: 'g', phase: 'succeeded', startedAt: 1, endedAt: 3 }));
      first.putAttempt(makeAttempt('r1', 'a0', 1, { phase: 'failed', error: ERROR }));
      first.appendLogs([{ runName: 'r1', actionName: 'a0', attempt: 1, at: 5, stream: 'stderr', line: 'boom' }]);
      first.putCacheEntry({ key: 'k', taskName: 'env.t', outputs: '2', createdAt: 7, runName: 'r1', actionName: 'a0' });
      await first.close(); // flushes

      const again = open(path);
      try {
        const { inputs: _inputs, ...expected } = makeRun('r1', {
          labels: { k: 'v' },
          phase: 'failed',
          startedAt: 1,
          endedAt: 2,
          error: ERROR,
        });
        assert.deepEqual(await again.getRun('r1'), expected);
        assert.equal(await again.getRunInputs('r1'), makeRun('r1').inputs);
        assert.deepEqual(await again.getActionIO('r1', 'a0'), { inputs: '[1]', outputs: '2' });
        assert.deepEqual(
          (await again.listActions('r1')).map((a) => a.name),
          ['a0', 'a1'],
        );
        assert.equal((await again.listGroups('r1'))[0]?.counts.succeeded, 1);
        assert.deepEqual(await again.listAttempts('r1', 'a0'), [
          makeAttempt('r1', 'a0', 1, { phase: 'failed', error: ERROR }),
        ]);
        assert.equal((await again.listLogs('r1'))[0]?.line, 'boom');
        assert.equal((await again.getCacheEntry('k'))?.outputs, '2');
        // Creation order continues after a reopen.
        again.putAction(makeAction('r1', 'a00'));
        assert.deepEqual(
          (await again.listActions('r1')).map((a) => a.name),
          ['a0', 'a1', 'a00'],
        );
      } finally {
        await again.close();
      }
    });

    it('creates the parent directory, resolves relative paths and describes itself', async () => {
      const dir = tempDir();
      const path = join(dir, 'a', 'b', 'flyte.db');
      const store = open(relative(process.cwd(), path));
      try {
        assert.equal(store.path, path);
        assert.equal(store.description, `sqlite:${path}`);
        const db = peek(path);
        assert.equal(db.preparePluck('PRAGMA journal_mode').get(), 'wal');
        db.close();
      } finally {
        await store.close();
      }
    });

    it('rejects bad options', () => {
      const path = join(tempDir(), 'flyte.db');
      assert.throws(() => open(path, { flushIntervalMs: -1 }), RangeError);
      assert.throws(() => open(path, { maxBatch: 0 }), RangeError);
      assert.throws(() => open(path, { busyTimeoutMs: Number.NaN }), RangeError);
    });

    describe('driver', () => {
      it(`runs on ${driver}, and its rows are plain objects`, async () => {
        const store = open(join(tempDir(), 'flyte.db'));
        try {
          assert.equal(store.driver, driver);
          await store.createRun(makeRun('r1'));
          store.putAction(makeAction('r1', 'a0', { parentName: null, inputs: '[1]' }));
          const io = await store.getActionIO('r1', 'a0');
          assert.equal(Object.getPrototypeOf(io), Object.prototype);
          assert.deepEqual(io, { inputs: '[1]', outputs: null });
        } finally {
          await store.close();
        }
      });

      it('nests a transaction in a transaction as a savepoint: the inner one rolls back alone', () => {
        const db = connect(':memory:');
        try {
          db.exec('CREATE TABLE t (x INTEGER PRIMARY KEY)');
          const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
          const inner = db.transaction((x: number) => {
            insert.run(x);
            if (x === 3) throw new Error('inner fails');
          });
          const outer = db.transaction(() => {
            insert.run(1);
            inner(2);
            assert.throws(() => inner(3), /inner fails/);
            return 'done';
          });
          assert.equal(outer(), 'done');
          assert.deepEqual(db.preparePluck('SELECT x FROM t ORDER BY x').all(), [1, 2]);
          assert.throws(
            db.transaction(() => {
              insert.run(4);
              insert.run(1); // a duplicate key: the whole transaction rolls back
            }),
            (e: unknown) => (e as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY',
          );
          assert.deepEqual(db.preparePluck('SELECT x FROM t ORDER BY x').all(), [1, 2]);
          // The connection is usable after the rollback.
          db.transaction(() => insert.run(5))();
          assert.equal(db.preparePluck('SELECT count(*) FROM t').get(), 3);
        } finally {
          db.close();
        }
      });

      it("gives SQLite's error codes by name, as better-sqlite3 does, with the message", () => {
        const db = connect(':memory:');
        try {
          db.exec('CREATE TABLE t (x TEXT NOT NULL UNIQUE)');
          db.prepare('INSERT INTO t (x) VALUES (?)').run('a');
          const codeOf = (body: () => unknown): unknown => {
            try {
              body();
            } catch (e) {
              assert.ok(e instanceof Error && e.message.length > 0);
              if (driver === 'node') assert.ok(e instanceof SqliteError);
              return (e as { code?: unknown }).code;
            }
            assert.fail('expected an error');
          };
          assert.equal(
            codeOf(() => db.prepare('INSERT INTO t (x) VALUES (?)').run('a')),
            'SQLITE_CONSTRAINT_UNIQUE',
          );
          assert.equal(
            codeOf(() => db.prepare('INSERT INTO t (x) VALUES (?)').run(null)),
            'SQLITE_CONSTRAINT_NOTNULL',
          );
          assert.equal(
            codeOf(() => db.exec('SELEC 1')),
            'SQLITE_ERROR',
          );
          assert.equal(
            codeOf(() => db.prepare('SELECT nope FROM t')),
            'SQLITE_ERROR',
          );
        } finally {
          db.close();
        }
      });

      it('plucks the first column, and binds integers that read back as integers', () => {
        const db = connect(':memory:');
        try {
          db.exec('CREATE TABLE t (n INTEGER NOT NULL, s TEXT)');
          const insert = db.prepare('INSERT INTO t (n, s) VALUES (?, ?)');
          assert.equal(insert.run(Date.UTC(2026, 0, 1), 'x').changes, 1);
          assert.equal(insert.run(2 ** 52, null).changes, 1);
          assert.deepEqual(db.preparePluck('SELECT typeof(n) FROM t').all(), ['integer', 'integer']);
          assert.deepEqual(db.preparePluck('SELECT n FROM t ORDER BY n').all(), [Date.UTC(2026, 0, 1), 2 ** 52]);
          assert.equal(db.preparePluck('SELECT s FROM t WHERE n = ?').get(2 ** 52), null);
          assert.equal(db.preparePluck('SELECT s FROM t WHERE n = ?').get(1), undefined, 'no row');
          assert.equal(db.prepare('UPDATE t SET s = ? WHERE n > ?').run('y', 0).changes, 2);
          // A LIMIT bound as a number works on both (node:sqlite binds it as a REAL).
          assert.deepEqual(db.preparePluck('SELECT s FROM t ORDER BY n LIMIT ? OFFSET ?').all(1, 1), ['y']);
        } finally {
          db.close();
        }
      });
    });

    describe('migrations', () => {
      it('are numbered 1, 2, 3, ... with distinct names', () => {
        assert.deepEqual(
          MIGRATIONS.map((m) => m.version),
          MIGRATIONS.map((_, i) => i + 1),
        );
        assert.equal(new Set(MIGRATIONS.map((m) => m.name)).size, MIGRATIONS.length);
        assert.equal(LATEST_SCHEMA_VERSION, MIGRATIONS.length);
      });

      it('are applied once, and not again on reopen', async () => {
        const path = join(tempDir(), 'flyte.db');
        await open(path).close();
        await open(path).close();
        const db = peek(path);
        try {
          // Copies: rows of node:sqlite have no prototype.
          const rows = db
            .prepare('SELECT version, name FROM schema_migrations ORDER BY version')
            .all()
            .map((r) => ({ ...(r as object) }));
          assert.deepEqual(
            rows,
            MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
          );
          assert.deepEqual(applyMigrations(db, path), []);
        } finally {
          db.close();
        }
      });

      it('apply only the missing ones, in order, in one transaction', () => {
        const db = connect(':memory:');
        try {
          const extra = [
            ...MIGRATIONS,
            { version: MIGRATIONS.length + 1, name: 'add_a', sql: 'CREATE TABLE a (x)' },
            {
              version: MIGRATIONS.length + 2,
              name: 'add_b',
              sql: 'CREATE TABLE b (x REFERENCES a (x)) STRICTLY_BROKEN',
            },
          ];
          assert.deepEqual(
            applyMigrations(db, ':memory:'),
            MIGRATIONS.map((m) => m.version),
          );
          // The broken last step rolls back the whole upgrade, including 'add_a'.
          assert.throws(() => applyMigrations(db, ':memory:', extra));
          assert.equal(db.preparePluck("SELECT count(*) FROM sqlite_master WHERE name = 'a'").get(), 0);
          assert.deepEqual(applyMigrations(db, ':memory:', extra.slice(0, -1)), [MIGRATIONS.length + 1]);
        } finally {
          db.close();
        }
      });

      it('9 keeps the abort requests of version 8, numbered and stamped with their run epoch; actions get epoch 0', async () => {
        const path = join(tempDir(), 'flyte.db');
        const db = connect(path);
        applyMigrations(db, path, MIGRATIONS.slice(0, 8));
        const insertRun = db.prepare(
          `INSERT INTO runs (name, task_name, phase, mode, created_at, epoch, inputs)
         VALUES (?, 'env.main', 'running', 'local', 1, ?, '[]')`,
        );
        insertRun.run('r1', 3);
        insertRun.run('r2', 1);
        const insertRequest = db.prepare(
          'INSERT INTO abort_requests (run_name, action_name, reason, requested_at) VALUES (?, ?, ?, ?)',
        );
        insertRequest.run('r1', '', 'whole run', 20);
        insertRequest.run('r2', 'a1', 'one action', 10);
        db.prepare(
          `INSERT INTO actions (run_name, name, parent_name, task_name, short_name, phase)
         VALUES ('r1', 'a0', NULL, 'env.main', 'main', 'failed')`,
        ).run();
        db.close();
        const store = open(path);
        try {
          const requests = await store.listAbortRequests(['r1', 'r2']);
          assert.deepEqual(
            requests.map(({ runName, actionName, reason, runEpoch, requestedAt }) => [
              runName,
              actionName,
              reason,
              runEpoch,
              requestedAt,
            ]),
            [
              ['r2', 'a1', 'one action', 1, 10],
              ['r1', null, 'whole run', 3, 20],
            ],
            'in the order they were made',
          );
          assert.ok((requests[0]?.seq ?? 0) < (requests[1]?.seq ?? 0));
          // The old root (epoch 0) is reopened by a driver of epoch 1 or more, and claimed at epoch 1.
          assert.equal(await store.claimAction('r1', 'a0', { owner: 'w', leaseMs: 1 }), undefined, 'terminal');
          store.putAction(makeAction('r1', 'a0', { parentName: null, phase: 'running', epoch: 1 }));
          assert.equal((await store.claimAction('r1', 'a0', { owner: 'w', leaseMs: 1 }))?.epoch, 2);
        } finally {
          await store.close();
        }
      });

      it('13 adds item_index: actions recorded before read back as no map item, new ones record it', async () => {
        const path = join(tempDir(), 'flyte.db');
        const db = connect(path);
        applyMigrations(db, path, MIGRATIONS.slice(0, 12));
        db.prepare(
          `INSERT INTO actions (run_name, name, parent_name, task_name, short_name, phase)
         VALUES ('r1', 'old', 'a0', 'env.sq', 'sq', 'succeeded')`,
        ).run();
        db.close();
        const store = open(path);
        try {
          assert.equal((await store.getAction('r1', 'old'))?.itemIndex, null);
          store.putAction(makeAction('r1', 'new', { group: 'map', itemIndex: 3 }));
          assert.equal((await store.getAction('r1', 'new'))?.itemIndex, 3);
        } finally {
          await store.close();
        }
      });

      it('14 adds the cause columns, filled for the actions that failed before', async () => {
        const path = join(tempDir(), 'flyte.db');
        const db = connect(path);
        applyMigrations(db, path, MIGRATIONS.slice(0, 13));
        const insert = db.prepare(
          `INSERT INTO actions (run_name, name, parent_name, task_name, short_name, grp, phase, error)
         VALUES ('r1', ?, 'a0', 'env.sq', 'sq', 'map', ?, ?)`,
        );
        const error = (message: string): string => JSON.stringify({ code: 'Error', kind: 'user', message });
        insert.run('m0', 'failed', error('HTTP 503 for item 0'));
        insert.run('m1', 'timed_out', error('HTTP 503 for item 1'));
        insert.run('m2', 'aborted', error('aborted'));
        insert.run('m3', 'succeeded', null);
        db.close();
        const store = open(path);
        try {
          assert.deepEqual(await store.listCauses('r1', { parentName: 'a0', group: 'map' }), [
            { code: 'Error', pattern: 'HTTP 503 for item <n>', count: 2, example: 'm0' },
          ]);
        } finally {
          await store.close();
        }
      });

      it('leave few indexes on actions: the children of a parent, and a whole run, in creation order without sorting', () => {
        const db = connect(':memory:');
        try {
          applyMigrations(db, ':memory:');
          const indexes = db
            .preparePluck(
              "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'actions' AND sql IS NOT NULL",
            )
            .all();
          // And one partial index of the failed rows only (those with a cause), which new actions do not pay for;
          // and (run_name, seq) for paging a whole run after a cursor (run.actions()): its cost per insert was
          // within the noise (CPU of a 100 000-child fan-out, 4 interleaved rounds: medians 4 784 and 4 843 ms).
          assert.deepEqual(indexes, ['actions_by_parent', 'actions_by_cause', 'actions_by_run']);
          const plan = (sql: string): string =>
            (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
          const byParent = plan(
            "SELECT * FROM actions WHERE run_name = 'r' AND parent_name IS 'a0' ORDER BY seq LIMIT 50",
          );
          assert.match(byParent, /USING INDEX actions_by_parent \(run_name=\? AND parent_name=\?\)/);
          assert.doesNotMatch(byParent, /TEMP B-TREE/);
          assert.match(
            plan(
              `SELECT cause_code, cause_pattern, count(*), min(seq) FROM actions
               WHERE run_name = 'r' AND parent_name = 'a0' AND grp = 'g' AND cause_code IS NOT NULL
               GROUP BY cause_code, cause_pattern`,
            ),
            /USING COVERING INDEX actions_by_cause/,
          );
          // By group alone: no index of its own, but the run's actions, not the whole table.
          assert.match(
            plan("SELECT * FROM actions WHERE run_name = 'r' AND grp = 'g' ORDER BY seq LIMIT 50"),
            /run_name=\?/,
          );
          // A whole run a page at a time after a cursor: one index range per page, no sort of the run.
          const byRun = plan(
            `SELECT * FROM actions WHERE run_name = 'r'
             AND seq > coalesce((SELECT seq FROM actions WHERE run_name = 'r' AND name = 'x'), 0) ORDER BY seq LIMIT 50`,
          );
          assert.match(byRun, /USING INDEX actions_by_run \(run_name=\? AND rowid>\?\)/);
          assert.doesNotMatch(byRun, /TEMP B-TREE/);
        } finally {
          db.close();
        }
      });

      it('refuse a database written by a newer flyte-ts', async () => {
        const path = join(tempDir(), 'flyte.db');
        await open(path).close();
        const db = peek(path);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
          LATEST_SCHEMA_VERSION + 1,
          'from_the_future',
          Date.now(),
        );
        db.close();
        assert.throws(
          () => open(path),
          (e: unknown) =>
            e instanceof InitializationError &&
            e.message.includes(`schema version ${LATEST_SCHEMA_VERSION + 1}`) &&
            e.message.includes(`up to ${LATEST_SCHEMA_VERSION}`) &&
            e.message.includes(path),
        );
      });

      it('refuse a database whose recorded migration names differ (an edited list)', async () => {
        const path = join(tempDir(), 'flyte.db');
        await open(path).close();
        const db = peek(path);
        db.prepare("UPDATE schema_migrations SET name = 'renamed' WHERE version = 1").run();
        db.close();
        assert.throws(() => open(path), InitializationError);
      });
    });

    describe('group commit', () => {
      it('buffers writes and commits 1000 actions (3 writes each) in one transaction of 1000 rows', async () => {
        const path = join(tempDir(), 'flyte.db');
        const store = open(path, { flushIntervalMs: 60_000 });
        const other = peek(path);
        try {
          const before = store.stats;
          for (let i = 0; i < 1000; i++) store.putAction(makeAction('r1', `a${i}`, { inputs: `[${i}]` }));
          for (let i = 0; i < 1000; i++) store.putAction(makeAction('r1', `a${i}`, { phase: 'running' }));
          for (let i = 0; i < 1000; i++)
            store.putAction(makeAction('r1', `a${i}`, { phase: 'succeeded', outputs: `${i}` }));
          assert.equal(store.pendingWrites, 1000);
          assert.equal(count(other, 'actions'), 0, 'nothing is written before the flush');
          await store.flush();
          assert.deepEqual(store.stats, {
            commits: before.commits + 1,
            failedCommits: 0,
            rowsWritten: before.rowsWritten + 1000,
            fencedRows: 0,
          });
          assert.equal(store.pendingWrites, 0);
          assert.equal(count(other, 'actions'), 1000);
          assert.deepEqual(await store.getActionIO('r1', 'a999'), { inputs: '[999]', outputs: '999' });
          await store.flush();
          assert.equal(store.stats.commits, before.commits + 1, 'an empty flush commits nothing');
        } finally {
          other.close();
          await store.close();
        }
      });

      it('commits on its own after flushIntervalMs', async () => {
        const path = join(tempDir(), 'flyte.db');
        const store = open(path, { flushIntervalMs: 1 });
        const other = peek(path);
        try {
          store.putAction(makeAction('r1', 'a1'));
          store.putAttempt(makeAttempt('r1', 'a1', 1));
          const deadline = Date.now() + 5_000;
          while (store.stats.commits === 0 && Date.now() < deadline) await sleep(2);
          assert.equal(store.stats.commits, 1);
          assert.equal(count(other, 'actions'), 1);
          assert.equal(count(other, 'attempts'), 1);
        } finally {
          other.close();
          await store.close();
        }
      });

      it('commits on the next turn of the event loop once maxBatch rows are pending', async () => {
        const path = join(tempDir(), 'flyte.db');
        const store = open(path, { flushIntervalMs: 60_000, maxBatch: 10 });
        try {
          for (let i = 0; i < 9; i++) store.putAction(makeAction('r1', `a${i}`));
          store.putAction(makeAction('r1', 'a0', { phase: 'running' })); // coalesced: still 9 rows
          await nextTurn();
          assert.equal(store.stats.commits, 0);
          store.appendLogs([{ runName: 'r1', actionName: 'a0', attempt: 1, at: 1, stream: 'stdout', line: 'x' }]);
          await nextTurn();
          assert.equal(store.stats.commits, 1);
          assert.equal(store.stats.rowsWritten, 10);
        } finally {
          await store.close();
        }
      });

      it('commits at once, inside the write, once maxBatch rows are pending and nearly all are of finished actions', async () => {
        const path = join(tempDir(), 'flyte.db');
        const store = open(path, { flushIntervalMs: 60_000, maxBatch: 10 });
        try {
          // A burst that never yields (a bounded map of quick children): it must not keep everything to its end.
          store.putAction(makeAction('r1', 'a0', { phase: 'running' }));
          for (let i = 1; i < 9; i++) store.putAction(makeAction('r1', `a${i}`, { phase: 'succeeded' }));
          assert.equal(store.stats.commits, 0);
          store.putAction(makeAction('r1', 'a9', { phase: 'failed' }));
          assert.equal(store.stats.commits, 1, 'committed synchronously: 1 running row in 10');
          assert.equal(store.stats.rowsWritten, 10);
          // Mostly running actions (an unbounded fan-out): committing now would write their rows twice.
          for (let i = 10; i < 20; i++) store.putAction(makeAction('r1', `a${i}`, { phase: 'running' }));
          assert.equal(store.stats.commits, 1);
          for (let i = 10; i < 19; i++) store.putAction(makeAction('r1', `a${i}`, { phase: 'succeeded' }));
          assert.equal(store.stats.commits, 2, 'nine in ten finished: committed at once');
          assert.equal(store.stats.rowsWritten, 20);
        } finally {
          await store.close();
        }
      });

      it('a commit that fails rejects flush, keeps every write, and succeeds once the cause is gone', async () => {
        const path = join(tempDir(), 'flyte.db');
        const store = open(path, { flushIntervalMs: 60_000, busyTimeoutMs: 0 });
        const other = peek(path);
        try {
          store.putAction(makeAction('r1', 'a1', { inputs: '[1]' }));
          await store.flush();
          store.putAction(makeAction('r1', 'a1', { phase: 'succeeded', outputs: '1' }));
          store.putAction(makeAction('r1', 'a2'));
          store.appendLogs([{ runName: 'r1', actionName: 'a1', attempt: 1, at: 1, stream: 'stdout', line: 'x' }]);
          // Another connection holds the write lock, as a second process writing to the file would.
          other.exec('BEGIN IMMEDIATE');
          await assert.rejects(store.flush(), (e: unknown) => {
            assert.ok(e instanceof RuntimeSystemError);
            assert.equal(e.code, 'StoreWriteError');
            assert.equal((e.cause as { code?: string }).code, 'SQLITE_BUSY');
            return true;
          });
          assert.ok(store.stats.failedCommits >= 1);
          assert.equal(store.pendingWrites, 3);
          await assert.rejects(store.getAction('r1', 'a2'), RuntimeSystemError);
          await assert.rejects(store.close(), RuntimeSystemError);
          other.exec('ROLLBACK');

          await store.flush();
          assert.equal(store.pendingWrites, 0);
          assert.deepEqual(await store.getActionIO('r1', 'a1'), { inputs: '[1]', outputs: '1' });
          assert.equal((await store.getAction('r1', 'a2'))?.phase, 'queued');
          assert.equal((await store.listLogs('r1')).length, 1);
        } finally {
          rollbackIfOpen(other);
          other.close();
          await store.close();
        }
      });

      it('a failing background commit is reported to onBackgroundError and retried', async () => {
        const path = join(tempDir(), 'flyte.db');
        const other = peek(path);
        let reported: (e: Error) => void = () => undefined;
        const failed = new Promise<Error>((resolve) => (reported = resolve));
        const store = open(path, {
          flushIntervalMs: 1,
          busyTimeoutMs: 0,
          onBackgroundError: (e) => reported(e),
        });
        try {
          other.exec('BEGIN IMMEDIATE');
          store.putAction(makeAction('r1', 'a1'));
          const error = await keepingAlive(failed);
          assert.ok(error instanceof RuntimeSystemError && error.code === 'StoreWriteError');
          assert.equal(store.pendingWrites, 1);
          other.exec('ROLLBACK');
          const deadline = Date.now() + 5_000;
          while (store.pendingWrites > 0 && Date.now() < deadline) await sleep(5);
          assert.equal(store.pendingWrites, 0, 'the retry timer committed the kept write');
          assert.equal(count(other, 'actions'), 1);
        } finally {
          rollbackIfOpen(other);
          other.close();
          await store.close();
        }
      });

      it('flushSync from an exit handler saves what a process left pending, and timers do not keep it alive', async () => {
        const dir = tempDir();
        const path = join(dir, 'flyte.db');
        const script = join(dir, 'child.mts');
        const storeUrl = pathToFileURL(
          resolve(fileURLToPath(import.meta.url), '../../src/store/sqlite/sqlite-store.ts'),
        );
        writeFileSync(
          script,
          `import { SqliteStore } from ${JSON.stringify(storeUrl.href)};
const store = SqliteStore.open(${JSON.stringify(path)}, { flushIntervalMs: 60_000, driver: '${driver}' });
process.on('exit', () => store.flushSync());
for (let i = 0; i < 100; i++) {
  store.putAction({ runName: 'r1', name: 'a' + i, parentName: null, taskName: 't', shortName: 't', group: null,
    phase: 'succeeded', cacheHit: false, attempts: 1, startedAt: 1, endedAt: 2, error: null });
}
`,
        );
        const started = Date.now();
        await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
          cwd: fileURLToPath(new URL('..', import.meta.url)),
          timeout: 30_000,
        });
        assert.ok(Date.now() - started < 30_000, 'the child exited without waiting for its flush timer');
        const db = peek(path);
        try {
          assert.equal(count(db, 'actions'), 100);
        } finally {
          db.close();
        }
      });
    });
  });
}

describe('openStore', () => {
  it("opens a MemoryStore for 'memory:'", async () => {
    const store = openStore('memory:', { root: tempDir() });
    assert.ok(store instanceof MemoryStore);
    await store.close();
  });

  it('opens sqlite:${root}/flyte.db by default', async () => {
    const root = tempDir();
    for (const spec of [undefined, '']) {
      const store = openStore(spec, { root: relative(process.cwd(), root) });
      assert.ok(store instanceof SqliteStore);
      assert.equal(store.description, `sqlite:${join(root, 'flyte.db')}`);
      await store.close();
    }
  });

  it("opens 'sqlite:PATH', relative to the current directory", async () => {
    const dir = tempDir();
    const store = openStore(`sqlite:${relative(process.cwd(), join(dir, 'x', 'runs.db'))}`, { root: '/nowhere' });
    assert.equal(store.description, `sqlite:${join(dir, 'x', 'runs.db')}`);
    await store.close();
  });

  it('refuses a malformed Postgres URL at once, without echoing a password', () => {
    for (const spec of ['postgres://flyte:s3cret@localhost:5432/flyte?schema=Bad-Name', 'postgresql://h/db?schema=']) {
      assert.throws(
        () => openStore(spec, { root: '.' }),
        (e: unknown) =>
          e instanceof InitializationError && /lower-case letters/.test(e.message) && !e.message.includes('s3cret'),
        spec,
      );
    }
  });

  it("chooses the driver of 'sqlite:PATH?driver=NAME', else FLYTE_SQLITE_DRIVER, else the default", async () => {
    const dir = tempDir();
    const usable = DRIVERS.filter((d) => driverSkip(d) === false);
    for (const driver of usable) {
      const store = openStore(`sqlite:${join(dir, `${driver}.db`)}?driver=${driver}`, { root: dir });
      assert.ok(store instanceof SqliteStore);
      assert.equal(store.driver, driver);
      assert.equal(store.description, `sqlite:${join(dir, `${driver}.db`)}`, 'the driver is not part of the path');
      await store.close();
    }
    const previous = process.env['FLYTE_SQLITE_DRIVER'];
    try {
      for (const driver of usable) {
        process.env['FLYTE_SQLITE_DRIVER'] = driver;
        const store = openStore(undefined, { root: dir }) as SqliteStore;
        assert.equal(store.driver, driver);
        await store.close();
      }
      process.env['FLYTE_SQLITE_DRIVER'] = 'sqlite3';
      assert.throws(
        () => openStore(undefined, { root: dir }),
        (e: unknown) =>
          e instanceof InitializationError &&
          e.message.includes('FLYTE_SQLITE_DRIVER') &&
          e.message.includes("'node' or 'better-sqlite3'") &&
          e.message.includes("received 'sqlite3'"),
      );
      delete process.env['FLYTE_SQLITE_DRIVER'];
      const store = openStore(undefined, { root: dir }) as SqliteStore;
      assert.equal(store.driver, defaultSqliteDriver());
      await store.close();
    } finally {
      if (previous === undefined) delete process.env['FLYTE_SQLITE_DRIVER'];
      else process.env['FLYTE_SQLITE_DRIVER'] = previous;
    }
    assert.throws(
      () => openStore(`sqlite:${join(dir, 'x.db')}?driver=pg`, { root: dir }),
      (e: unknown) => e instanceof InitializationError && e.message.includes("received 'pg'"),
    );
  });

  it(
    'reads on one driver what the other wrote, and the other way round',
    { skip: DRIVERS.map(driverSkip).find((reason) => reason !== false) ?? false },
    async () => {
      const path = join(tempDir(), 'flyte.db');
      const first = SqliteStore.open(path, { driver: 'node' });
      await first.createRun(makeRun('r1'));
      first.putAction(makeAction('r1', 'a0', { parentName: null, inputs: '[1]' }));
      await first.close();
      const second = SqliteStore.open(path, { driver: 'better-sqlite3' });
      try {
        assert.deepEqual(await second.getActionIO('r1', 'a0'), { inputs: '[1]', outputs: null });
        // At the run's epoch (1): this instance did not claim the run, and a write of an older epoch never lands.
        second.putAction(makeAction('r1', 'a0', { parentName: null, phase: 'succeeded', outputs: '2', epoch: 1 }));
      } finally {
        await second.close();
      }
      const third = SqliteStore.open(path, { driver: 'node' });
      try {
        assert.deepEqual(await third.getActionIO('r1', 'a0'), { inputs: '[1]', outputs: '2' });
        assert.equal((await third.getAction('r1', 'a0'))?.phase, 'succeeded');
      } finally {
        await third.close();
      }
    },
  );

  it('knows which Nodes have node:sqlite (>= 22.13) and picks it there by default', () => {
    assert.equal(nodeSqliteAvailable('20.19.5'), false);
    assert.equal(nodeSqliteAvailable('22.12.0'), false);
    assert.equal(nodeSqliteAvailable('22.13.0'), true);
    assert.equal(nodeSqliteAvailable('23.0.0'), true);
    assert.equal(nodeSqliteAvailable('24.11.1'), true);
    assert.equal(defaultSqliteDriver(), nodeSqliteAvailable() ? 'node' : 'better-sqlite3');
  });

  it(
    "refuses driver 'node' on a Node without node:sqlite, saying what to do",
    { skip: nodeSqliteAvailable() ? `this Node (${process.versions.node}) has node:sqlite` : false },
    () => {
      assert.throws(
        () => openStore(`sqlite:${join(tempDir(), 'x.db')}?driver=node`, { root: '.' }),
        (e: unknown) =>
          e instanceof InitializationError &&
          e.message.includes('Node >= 22.13') &&
          e.message.includes(process.versions.node) &&
          e.message.includes('better-sqlite3'),
      );
    },
  );

  it('names the accepted forms for anything else', () => {
    for (const spec of ['mysql://x', 'flyte.db', 'sqlite:', 'memory:x']) {
      assert.throws(
        () => openStore(spec, { root: '.' }),
        (e: unknown) => e instanceof InitializationError && e.message.includes('sqlite:'),
        spec,
      );
    }
  });
});
