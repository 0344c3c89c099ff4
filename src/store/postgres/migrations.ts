/**
 * The schema of the Postgres store, as an ordered list of migrations applied under an advisory lock.
 *
 * **Append, never edit or reorder.** A schema records the migrations it has applied in `schema_migrations`;
 * changing a released migration would leave existing databases with a schema that no migration describes.
 * Every statement names its tables unqualified: {@link applyPgMigrations} sets `search_path` to the store's
 * schema for the transaction, and the store qualifies every table with that schema in its own queries.
 * @module
 */
import type { PoolClient } from 'pg';
import { InitializationError } from '../../errors.js';

/** One step of the schema. */
export interface PgMigration {
  /** 1, 2, 3, ... in order, without gaps. */
  readonly version: number;
  /** A short snake_case description, checked against the name recorded in the database. */
  readonly name: string;
  /** The statements to run, in the migration transaction. */
  readonly sql: string;
}

/** Every migration, oldest first. Append, never edit or reorder. */
export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: 'initial_schema',
    sql: `
      -- Times are milliseconds since the epoch (bigint); JSON is kept as text, exactly as written.
      CREATE TABLE runs (
        name              text COLLATE "C" PRIMARY KEY,
        task_name         text NOT NULL,
        phase             text NOT NULL,
        mode              text NOT NULL,
        created_at        bigint NOT NULL,
        started_at        bigint,
        ended_at          bigint,
        error             text,
        labels            text NOT NULL DEFAULT '{}',
        options           text NOT NULL DEFAULT '{}',
        module            text,
        owner             text,
        epoch             bigint NOT NULL DEFAULT 1,
        heartbeat_at      bigint,
        lease_expires_at  bigint,
        inputs            text NOT NULL
      );
      CREATE INDEX runs_by_created_at ON runs (created_at, name);
      CREATE INDEX runs_by_phase ON runs (phase, created_at, name);
      CREATE INDEX runs_by_task_name ON runs (task_name, created_at, name);

      -- seq grows with every new action: ordering by it is creation order. epoch is the run epoch of the
      -- writer that last changed the row: a write of an older epoch never lands (fencing), and a terminal row is
      -- only made unfinished again by a writer of a newer epoch (a recovery that claimed the run).
      CREATE TABLE actions (
        seq          bigserial NOT NULL,
        run_name     text NOT NULL,
        name         text NOT NULL,
        parent_name  text,
        task_name    text NOT NULL,
        short_name   text NOT NULL,
        grp          text,
        phase        text NOT NULL,
        cache_hit    boolean NOT NULL DEFAULT false,
        attempts     integer NOT NULL DEFAULT 0,
        started_at   bigint,
        ended_at     bigint,
        error        text,
        epoch        bigint NOT NULL DEFAULT 0,
        inputs_hash  text,
        inputs       text,
        outputs      text,
        PRIMARY KEY (run_name, name)
      );
      CREATE INDEX actions_by_seq ON actions (run_name, seq);
      CREATE INDEX actions_by_parent ON actions (run_name, parent_name, seq);

      CREATE TABLE attempts (
        run_name     text NOT NULL,
        action_name  text NOT NULL,
        attempt      integer NOT NULL,
        phase        text NOT NULL,
        started_at   bigint NOT NULL,
        ended_at     bigint,
        error        text,
        PRIMARY KEY (run_name, action_name, attempt)
      );

      -- id: the order lines were written in.
      CREATE TABLE logs (
        id           bigserial PRIMARY KEY,
        run_name     text NOT NULL,
        action_name  text NOT NULL,
        attempt      integer NOT NULL,
        at           bigint NOT NULL,
        stream       text NOT NULL,
        line         text NOT NULL
      );
      CREATE INDEX logs_by_action ON logs (run_name, action_name, id);

      CREATE TABLE cache_entries (
        key          text PRIMARY KEY,
        task_name    text NOT NULL,
        created_at   bigint NOT NULL,
        run_name     text NOT NULL,
        action_name  text NOT NULL,
        outputs      text NOT NULL
      );

      -- Abort requests of a whole run (action_name '') or of one action, taken out as the driver applies them.
      CREATE TABLE abort_requests (
        run_name      text NOT NULL,
        action_name   text NOT NULL,
        reason        text NOT NULL,
        requested_at  bigint NOT NULL,
        PRIMARY KEY (run_name, action_name)
      );

      CREATE TABLE map_totals (
        run_name     text NOT NULL,
        parent_name  text NOT NULL,
        grp          text NOT NULL,
        seq          integer NOT NULL,
        total        bigint NOT NULL,
        PRIMARY KEY (run_name, parent_name, grp, seq)
      );
    `,
  },
  {
    version: 2,
    name: 'action_claims_durable_aborts',
    sql: `
      -- The last claim of an action (RunStore.claimAction): who holds it, until when. actions.epoch (version 1)
      -- is the claim's fencing token as well as the run epoch of the writer.
      ALTER TABLE actions ADD COLUMN owner text;
      ALTER TABLE actions ADD COLUMN lease_expires_at bigint;

      -- Abort requests stay, so that every process sees them: numbered in the order made and committed (seq;
      -- the store inserts them under an advisory lock), and stamped with the run's epoch then, so that a
      -- recovered run does not apply the requests of an earlier driver.
      CREATE TABLE abort_requests_v2 (
        seq           bigserial PRIMARY KEY,
        run_name      text NOT NULL,
        action_name   text NOT NULL,
        reason        text NOT NULL,
        run_epoch     bigint NOT NULL,
        requested_at  bigint NOT NULL
      );
      INSERT INTO abort_requests_v2 (run_name, action_name, reason, run_epoch, requested_at)
        SELECT a.run_name, a.action_name, a.reason, r.epoch, a.requested_at
        FROM abort_requests a JOIN runs r ON r.name = a.run_name ORDER BY a.requested_at;
      DROP TABLE abort_requests;
      ALTER TABLE abort_requests_v2 RENAME TO abort_requests;
      CREATE INDEX abort_requests_by_run ON abort_requests (run_name, seq);
      `,
  },
  {
    version: 3,
    name: 'blobs',
    sql: `
      -- Content-addressed blobs (offloaded values, file contents): key is the SHA-256 hex of the bytes. A blob is
      -- its chunks in seq order; the blobs row is written last, in the same transaction, so a blob with a row is
      -- complete. Chunks keep rows small enough for the driver, and values past 1 GiB (a bytea's limit) possible.
      CREATE TABLE blobs (
        key         text COLLATE "C" PRIMARY KEY,
        bytes       bigint NOT NULL,
        chunks      integer NOT NULL,
        created_at  bigint NOT NULL
      );
      CREATE TABLE blob_chunks (
        key   text COLLATE "C" NOT NULL,
        seq   integer NOT NULL,
        data  bytea NOT NULL,
        PRIMARY KEY (key, seq)
      );
    `,
  },
  {
    version: 4,
    name: 'attempt_workers',
    sql: `
      -- Which process (host:pid) ran an attempt: attempts.worker for the attempts recorded as rows, and
      -- actions.worker (the last writer's ActionWrite.worker) for the first attempt implied by the action record.
      -- NULL for what was recorded before.
      ALTER TABLE actions ADD COLUMN worker text;
      ALTER TABLE attempts ADD COLUMN worker text;
    `,
  },
  {
    version: 5,
    name: 'action_jobs',
    sql: `
      -- Distributed mode: the engine job of each action, as JSON (queue, module, custom context, task settings),
      -- and when it was written (just before the enqueue), so that the sweeper can enqueue again a job that
      -- vanished from Redis. NULL for local actions, and for what was recorded before. No index: the sweeper
      -- reads the unfinished actions of the unfinished remote runs (runs_by_phase, then the primary key), and an
      -- index on phase would make every phase change of every action a non-HOT update.
      ALTER TABLE actions ADD COLUMN job text;
      ALTER TABLE actions ADD COLUMN enqueued_at bigint;
    `,
  },
  {
    version: 6,
    name: 'sweeps',
    sql: `
      -- The sweeper's log (one row per sweep, the last 1000 kept): who swept, what it read and enqueued again.
      -- began_seq and ended_seq come from one sequence, taken while the sweeper lock was held: two sweeps overlap
      -- if and only if one began between the other's two numbers (a proof of the lock that needs no clock).
      CREATE SEQUENCE sweep_events;
      CREATE TABLE sweeps (
        began_seq   bigint PRIMARY KEY,
        ended_seq   bigint NOT NULL,
        owner       text NOT NULL,
        started_at  bigint NOT NULL,
        ended_at    bigint NOT NULL,
        candidates  integer NOT NULL,
        requeued    text NOT NULL
      );
    `,
  },
  {
    version: 7,
    name: 'action_takeovers',
    sql: `
      -- Takeovers of an action (RunStore.claimAction): claims that found it still held by an earlier claim that
      -- was never given back (its worker died, or lost its lock), and the owners that held it then, oldest
      -- first, separated by spaces. A drain that hands an action back gives its claim back (owner NULL), so the
      -- next claim is not a takeover.
      ALTER TABLE actions ADD COLUMN takeovers integer NOT NULL DEFAULT 0;
      ALTER TABLE actions ADD COLUMN lost_owners text;
    `,
  },
  {
    version: 8,
    name: 'action_item_index',
    sql: `
      -- The 0-based position of a map item in its flyte.map call (ActionRecord.itemIndex), fixed by the action's
      -- first write like parent_name; NULL for actions that are not map items, and for those recorded before.
      -- Not indexed: a search by index walks the parent's children, and every new action would pay for an index.
      ALTER TABLE actions ADD COLUMN item_index integer;
      `,
  },
  {
    version: 9,
    name: 'action_causes',
    sql: `
      -- The cause of a failed or timed-out action (src/internal/error-cause.ts causeOf): its error code and masked
      -- message, computed with every write of the action (NULL for every other phase), so that a fan-out's
      -- causes are one GROUP BY over an index instead of a read of every member's error. The index is partial:
      -- only failed rows are in it, so the actions that succeed pay nothing for it. It ends with seq, the first
      -- member of each cause. The actions that failed before get their cause when the store opens after this
      -- migration (the masking is code, not SQL: see PostgresStore).
      ALTER TABLE actions ADD COLUMN cause_code text;
      ALTER TABLE actions ADD COLUMN cause_pattern text;
      CREATE INDEX actions_by_cause ON actions (run_name, parent_name, grp, cause_code, cause_pattern, seq)
        WHERE cause_code IS NOT NULL;
    `,
  },
  {
    version: 10,
    name: 'logs_by_run',
    sql: `
      -- Run-wide logs, paged after a cursor (RunStore.listRunLogs): one index range per page.
      CREATE INDEX logs_by_run ON logs (run_name, id);
    `,
  },
];

/** The migration that added the cause columns: the store fills them for older failed actions once it ran. */
export const PG_CAUSES_MIGRATION = 9;

/** The newest schema version this build knows. */
export const PG_LATEST_SCHEMA_VERSION: number = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]?.version ?? 0;

/** The advisory lock key of migrations: one per schema, so stores of other schemas do not wait. */
const LOCK_NAMESPACE = 'flyte-ts:migrations';

/**
 * Brings `schema` up to {@link PG_LATEST_SCHEMA_VERSION} in one transaction that holds a transaction-level
 * advisory lock, so that processes starting together on a new schema migrate it once: the others wait for the
 * lock, then find nothing left to do. Creates the schema if needed. Returns the versions applied.
 *
 * @throws {@link InitializationError} when the schema was written by a newer flyte-ts, or when its recorded
 * migrations do not match this build's list.
 * @example
 * ```ts
 * const client = await pool.connect();
 * try { await applyPgMigrations(client, 'flyte', 'postgres://db/flyte'); } finally { client.release(); }
 * ```
 */
export async function applyPgMigrations(
  client: PoolClient,
  schema: string,
  where: string,
  migrations: readonly PgMigration[] = PG_MIGRATIONS,
): Promise<number[]> {
  const q = quoteIdent(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [LOCK_NAMESPACE, schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
    await client.query(`SET LOCAL search_path TO ${q}`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version     integer PRIMARY KEY,
      name        text NOT NULL,
      applied_at  bigint NOT NULL
    )`);
    const applied = (
      await client.query<{ version: number; name: string }>(
        'SELECT version, name FROM schema_migrations ORDER BY version',
      )
    ).rows;
    const known = new Map(migrations.map((m) => [m.version, m]));
    const latest = migrations[migrations.length - 1]?.version ?? 0;
    for (const row of applied) {
      const m = known.get(row.version);
      if (m === undefined) {
        throw new InitializationError(
          `the Postgres schema ${schema} at ${where} has schema version ${row.version}, but this build of ` +
            `flyte-ts knows versions up to ${latest}; it was written by a newer flyte-ts: upgrade flyte-ts or use ` +
            'another schema (?schema=NAME)',
        );
      }
      if (m.name !== row.name) {
        throw new InitializationError(
          `the Postgres schema ${schema} at ${where} recorded migration ${row.version} as '${row.name}', but this ` +
            `build calls it '${m.name}'; the migration list was edited instead of appended to`,
        );
      }
    }
    const done = new Set(applied.map((r) => r.version));
    const ran: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        Date.now(),
      ]);
      ran.push(m.version);
    }
    await client.query('COMMIT');
    return ran;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** `"name"`, for a name already checked by {@link checkSchemaName}. */
export function quoteIdent(name: string): string {
  return `"${name}"`;
}

/**
 * Checks a schema name: lower-case letters, digits and `_`, starting with a letter or `_`, at most 63 characters
 * (so it needs no quoting rules and Postgres does not truncate it).
 *
 * @throws {@link InitializationError} saying what was expected and what was received.
 */
export function checkSchemaName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new InitializationError(
      'the Postgres schema (?schema=NAME) must be lower-case letters, digits and _, starting with a letter or _, ' +
        `at most 63 characters; received '${name}'`,
    );
  }
  return name;
}
