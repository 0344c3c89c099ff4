/**
 * The schema of the embedded SQLite store, as an ordered list of migrations.
 *
 * **Append, never edit or reorder.** A database records the migrations it has applied in `schema_migrations`;
 * changing a migration that was released would leave existing databases with a schema that no migration
 * describes. To change the schema, add a new entry with the next version.
 *
 * Column order matters for speed: the large encoded values (`inputs`, `outputs`) come last in each table, so
 * queries that only read phases and times never touch their overflow pages.
 * @module
 */
import type { SqliteConnection } from './driver.js';
import { InitializationError } from '../../errors.js';

/** One step of the schema. */
export interface Migration {
  /** 1, 2, 3, ... in order, without gaps. */
  readonly version: number;
  /** A short snake_case description, checked against the name recorded in the database. */
  readonly name: string;
  /** The statements to run, in one transaction. */
  readonly sql: string;
}

/** Every migration, oldest first. Append, never edit or reorder. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial_schema',
    sql: `
      CREATE TABLE runs (
        name        TEXT PRIMARY KEY,
        task_name   TEXT NOT NULL,
        phase       TEXT NOT NULL,
        mode        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        started_at  INTEGER,
        ended_at    INTEGER,
        error       TEXT,                    -- JSON SerializedError
        labels      TEXT NOT NULL DEFAULT '{}', -- JSON object of strings
        module      TEXT,
        owner       TEXT,
        inputs      TEXT NOT NULL
      );
      CREATE INDEX runs_by_created_at ON runs (created_at, name);
      CREATE INDEX runs_by_phase ON runs (phase, created_at, name);
      CREATE INDEX runs_by_task_name ON runs (task_name, created_at, name);

      -- seq is the rowid: it grows with every new action, so ordering by it is creation order.
      -- (run_name, name) is the action's key.
      CREATE TABLE actions (
        seq          INTEGER PRIMARY KEY,
        run_name     TEXT NOT NULL,
        name         TEXT NOT NULL,
        parent_name  TEXT,
        task_name    TEXT NOT NULL,
        short_name   TEXT NOT NULL,
        grp          TEXT,
        phase        TEXT NOT NULL,
        cache_hit    INTEGER NOT NULL DEFAULT 0,
        attempts     INTEGER NOT NULL DEFAULT 0,
        started_at   INTEGER,
        ended_at     INTEGER,
        error        TEXT,                   -- JSON SerializedError
        inputs_hash  TEXT,
        inputs       TEXT,
        outputs      TEXT,
        UNIQUE (run_name, name)
      );
      CREATE INDEX actions_by_parent ON actions (run_name, parent_name);
      CREATE INDEX actions_by_group ON actions (run_name, grp);

      CREATE TABLE attempts (
        run_name     TEXT NOT NULL,
        action_name  TEXT NOT NULL,
        attempt      INTEGER NOT NULL,
        phase        TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        ended_at     INTEGER,
        error        TEXT,                   -- JSON SerializedError
        PRIMARY KEY (run_name, action_name, attempt)
      ) WITHOUT ROWID;

      -- id is the rowid: the order lines were written in.
      CREATE TABLE logs (
        id           INTEGER PRIMARY KEY,
        run_name     TEXT NOT NULL,
        action_name  TEXT NOT NULL,
        attempt      INTEGER NOT NULL,
        at           INTEGER NOT NULL,
        stream       TEXT NOT NULL,
        line         TEXT NOT NULL
      );
      CREATE INDEX logs_by_action ON logs (run_name, action_name);

      CREATE TABLE cache_entries (
        key          TEXT PRIMARY KEY,
        task_name    TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        run_name     TEXT NOT NULL,
        action_name  TEXT NOT NULL,
        outputs      TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'run_abort_requests',
    sql: `
      -- Set by another process (flyte abort run NAME); read by the process that drives the run.
      ALTER TABLE runs ADD COLUMN abort_request TEXT;
    `,
  },
  {
    version: 3,
    name: 'run_options',
    sql: `
      -- JSON RunOptionsRecord: what a recovered run needs to behave like the original.
      ALTER TABLE runs ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
    `,
  },
  {
    version: 4,
    name: 'drop_actions_by_group',
    sql: `
      -- One index on actions instead of two: every new action paid for both (about 0.5 µs per row).
      -- actions_by_parent (run_name, parent_name) stays: it lists a parent's children in creation order (its
      -- rows end with seq), which the tree, paging and recovery need. A combined (run_name, parent_name, grp)
      -- would order them by group first and make every page of a large fan-out sort all of it.
      -- Without actions_by_group, a query by group under a parent walks that parent's children, and a query by
      -- group alone walks the run's actions (milliseconds per 100 000 actions).
      DROP INDEX actions_by_group;
    `,
  },
  {
    version: 5,
    name: 'action_abort_requests',
    sql: `
      -- Requests to abort one action (and its descendants) of a run driven by another process. The driving
      -- process deletes each request as it applies it, so the table holds only requests not yet seen.
      -- Whole-run requests stay in runs.abort_request.
      CREATE TABLE action_abort_requests (
        run_name      TEXT NOT NULL,
        action_name   TEXT NOT NULL,
        reason        TEXT NOT NULL,
        requested_at  INTEGER NOT NULL,
        PRIMARY KEY (run_name, action_name)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 6,
    name: 'abort_requests',
    sql: `
      -- One table for every abort request, of a whole run (action_name '') or of one action, taken out as the
      -- driving process applies it. A whole-run request used to stay in runs.abort_request (unused since), and
      -- so aborted the run again when it was recovered; only requests of runs still running carry over.
      CREATE TABLE abort_requests (
        run_name      TEXT NOT NULL,
        action_name   TEXT NOT NULL,
        reason        TEXT NOT NULL,
        requested_at  INTEGER NOT NULL,
        PRIMARY KEY (run_name, action_name)
      ) WITHOUT ROWID;
      INSERT INTO abort_requests (run_name, action_name, reason, requested_at)
        SELECT run_name, action_name, reason, requested_at FROM action_abort_requests;
      INSERT INTO abort_requests (run_name, action_name, reason, requested_at)
        SELECT name, '', abort_request, coalesce(ended_at, created_at) FROM runs
        WHERE abort_request IS NOT NULL AND phase = 'running';
      UPDATE runs SET abort_request = NULL WHERE abort_request IS NOT NULL;
      DROP TABLE action_abort_requests;
    `,
  },
  {
    version: 7,
    name: 'run_leases',
    sql: `
      -- One driver per run. A process drives a run under a lease that it renews every few seconds; a running run
      -- whose lease expired is orphaned. Taking a run over (recovery, aborting an orphaned run) is a
      -- compare-and-set on epoch, which also fences the writes of the process that held the older epoch.
      -- Runs recorded before this migration have no lease: their liveness falls back to their owner's pid.
      ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE runs ADD COLUMN heartbeat_at INTEGER;
      ALTER TABLE runs ADD COLUMN lease_expires_at INTEGER;
    `,
  },
  {
    version: 8,
    name: 'map_totals',
    sql: `
      -- How many items each flyte.map call will run, when its input had a known size: the denominator of a
      -- fan-out's progress. seq numbers the map calls of one group under one parent (a re-run writes the same row).
      CREATE TABLE map_totals (
        run_name     TEXT NOT NULL,
        parent_name  TEXT NOT NULL,
        grp          TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        total        INTEGER NOT NULL,
        PRIMARY KEY (run_name, parent_name, grp, seq)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 9,
    name: 'action_epochs_durable_aborts',
    sql: `
      -- Many writers. epoch is the fencing token of the writer that last changed the action (its run epoch, or
      -- the epoch of its claim on the action): a write of an older epoch never lands, and a terminal action is
      -- only made unfinished again by a writer of a newer epoch. owner and lease_expires_at record the last
      -- claim of the action (RunStore.claimAction). Actions recorded before have epoch 0.
      ALTER TABLE actions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE actions ADD COLUMN owner TEXT;
      ALTER TABLE actions ADD COLUMN lease_expires_at INTEGER;
      -- Abort requests stay, so that every process sees them: numbered in the order made (seq), and stamped
      -- with the run's epoch then, so that a recovered run does not apply the requests of an earlier driver.
      CREATE TABLE abort_requests_v9 (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        run_name      TEXT NOT NULL,
        action_name   TEXT NOT NULL,
        reason        TEXT NOT NULL,
        run_epoch     INTEGER NOT NULL,
        requested_at  INTEGER NOT NULL
      );
      INSERT INTO abort_requests_v9 (run_name, action_name, reason, run_epoch, requested_at)
        SELECT a.run_name, a.action_name, a.reason, r.epoch, a.requested_at
        FROM abort_requests a JOIN runs r ON r.name = a.run_name ORDER BY a.requested_at;
      DROP TABLE abort_requests;
      ALTER TABLE abort_requests_v9 RENAME TO abort_requests;
      CREATE INDEX abort_requests_by_run ON abort_requests (run_name, seq);
    `,
  },
  {
    version: 10,
    name: 'attempt_workers',
    sql: `
      -- Which process (host:pid) ran an attempt: attempts.worker for the attempts recorded as rows, and
      -- actions.worker (the last writer's ActionWrite.worker) for the first attempt implied by the action record.
      -- NULL for what was recorded before.
      ALTER TABLE actions ADD COLUMN worker TEXT;
      ALTER TABLE attempts ADD COLUMN worker TEXT;
    `,
  },
  {
    version: 11,
    name: 'action_jobs',
    sql: `
      -- Distributed mode: the engine job of each action, as JSON, and when it was written (just before the
      -- enqueue): what the sweeper rebuilds a vanished job from (it runs on the Postgres store; SQLite keeps the
      -- same record, so that an ActionWrite means the same on every store). NULL for local actions.
      ALTER TABLE actions ADD COLUMN job TEXT;
      ALTER TABLE actions ADD COLUMN enqueued_at INTEGER;
    `,
  },
  {
    version: 12,
    name: 'action_takeovers',
    sql: `
      -- Takeovers of an action (RunStore.claimAction): claims that found it still held by an earlier claim that
      -- was never given back (its worker died, or lost its lock), and the owners that held it then, oldest
      -- first, separated by spaces. A drain that hands an action back gives its claim back (owner NULL), so the
      -- next claim is not a takeover.
      ALTER TABLE actions ADD COLUMN takeovers INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE actions ADD COLUMN lost_owners TEXT;
    `,
  },
  {
    version: 13,
    name: 'action_item_index',
    sql: `
      -- The 0-based position of a map item in its flyte.map call (ActionRecord.itemIndex), fixed by the action's
      -- first write like parent_name; NULL for actions that are not map items, and for those recorded before.
      -- Not indexed: a search by index walks the parent's children (actions_by_parent), and every new action
      -- would pay for an index.
      ALTER TABLE actions ADD COLUMN item_index INTEGER;
      `,
  },
  {
    version: 14,
    name: 'action_causes',
    sql: `
      -- The cause of a failed or timed-out action (src/internal/error-cause.ts causeOf): its error code and masked
      -- message, computed with every write of the action (NULL for every other phase), so that a fan-out's
      -- causes are one GROUP BY over an index instead of a read of every member's error.
      -- The index is partial: only failed rows are in it, so the actions that succeed (nearly all of a fan-out)
      -- pay nothing for it. Its rows end with seq (the rowid), the first member of each cause.
      -- The actions that failed before get their cause when the store opens after this migration (the masking
      -- is code, not SQL: see SqliteStore.open).
      ALTER TABLE actions ADD COLUMN cause_code TEXT;
      ALTER TABLE actions ADD COLUMN cause_pattern TEXT;
      CREATE INDEX actions_by_cause ON actions (run_name, parent_name, grp, cause_code, cause_pattern)
        WHERE cause_code IS NOT NULL;
    `,
  },
  {
    version: 15,
    name: 'logs_by_run',
    sql: `
      -- Run-wide logs, paged after a cursor (RunStore.listRunLogs): one index range per page.
      CREATE INDEX logs_by_run ON logs (run_name, id);
    `,
  },
  {
    version: 16,
    name: 'actions_by_run',
    sql: `
      -- A run's actions in creation order, paged after a cursor (ListActionsQuery.after, run.actions()): SQLite
      -- ends every index row with the rowid, so this is (run_name, seq) and a page is one index range, with no
      -- sort of the whole run per page.
      CREATE INDEX actions_by_run ON actions (run_name);
    `,
  },
];

/** The migration that added the cause columns: the store fills them for older failed actions once it ran. */
export const CAUSES_MIGRATION = 14;

/** The newest schema version this build knows. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Brings a database up to {@link LATEST_SCHEMA_VERSION}, applying the missing migrations in one immediate
 * transaction (so two processes opening the same new file do not both migrate). Returns the versions applied.
 *
 * @throws {@link InitializationError} when the database was written by a newer flyte-ts (a version this build
 * does not know), or when its recorded migrations do not match this build's list.
 *
 * @example
 * ```ts
 * const db = openConnection('flyte.db', 'node', { busyTimeoutMs: 5000 });
 * applyMigrations(db, 'flyte.db'); // [1] on a new file, [] afterwards
 * ```
 */
export function applyMigrations(
  db: SqliteConnection,
  where: string,
  migrations: readonly Migration[] = MIGRATIONS,
): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  INTEGER NOT NULL
  )`);
  // An immediate transaction (see SqliteConnection.transaction).
  const migrate = db.transaction((): number[] => {
    const applied = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as {
      version: number;
      name: string;
    }[];
    const known = new Map(migrations.map((m) => [m.version, m]));
    const latest = migrations[migrations.length - 1]?.version ?? 0;
    for (const row of applied) {
      const m = known.get(row.version);
      if (m === undefined) {
        throw new InitializationError(
          `the database ${where} has schema version ${row.version}, but this build of flyte-ts knows versions ` +
            `up to ${latest}; it was written by a newer flyte-ts: upgrade flyte-ts or use another store path`,
        );
      }
      if (m.name !== row.name) {
        throw new InitializationError(
          `the database ${where} recorded migration ${row.version} as '${row.name}', but this build calls it ` +
            `'${m.name}'; the migration list was edited instead of appended to`,
        );
      }
    }
    const done = new Set(applied.map((r) => r.version));
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    const ran: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
      ran.push(m.version);
    }
    return ran;
  });
  return migrate();
}
