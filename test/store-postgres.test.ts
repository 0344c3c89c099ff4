import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InitializationError } from '../src/errors.js';
import { openStore, openStoreAsync } from '../src/store/index.js';
import { PG_LATEST_SCHEMA_VERSION } from '../src/store/postgres/migrations.js';
import { PostgresStore, parsePostgresUrl } from '../src/store/postgres/postgres-store.js';
import type { RunStore } from '../src/store/run-store.js';
import { dropSchema, freshSchema, peekPostgres, postgresSkip, urlWithSchema } from './support/postgres.js';
import { makeAction, makeRun, runStoreConformance } from './support/store-conformance.js';

const skip = await postgresSkip();

/** A store on a fresh schema, with a second instance on it on demand; the schema is dropped afterwards. */
async function openFresh(): Promise<{
  store: PostgresStore;
  openAnother: () => Promise<RunStore>;
  cleanup: () => Promise<void>;
}> {
  const schema = freshSchema();
  const url = urlWithSchema(schema);
  // A long interval: reads must see pending writes because they commit them, not because a timer fired.
  const store = await PostgresStore.open(url, { flushIntervalMs: 60_000 });
  const others: PostgresStore[] = [];
  return {
    store,
    openAnother: async () => {
      const other = await PostgresStore.open(url, { flushIntervalMs: 60_000 });
      others.push(other);
      return other;
    },
    cleanup: async () => {
      for (const other of others) await other.close();
      await store.close();
      await dropSchema(schema);
    },
  };
}

describe('Postgres', { skip }, () => {
  runStoreConformance('PostgresStore', openFresh);

  describe('PostgresStore', () => {
    it('two instances migrating a new schema at once: one applies the migrations, both open', async () => {
      const schema = freshSchema();
      const url = urlWithSchema(schema);
      try {
        const [a, b] = await Promise.all([PostgresStore.open(url), PostgresStore.open(url)]);
        const rows = await peekPostgres<{ version: number }>(
          `SELECT version FROM "${schema}".schema_migrations ORDER BY version`,
        );
        assert.deepEqual(
          rows.map((r) => r.version),
          Array.from({ length: PG_LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
        );
        await a.createRun(makeRun('r1'));
        assert.equal((await b.getRun('r1'))?.name, 'r1');
        await Promise.all([a.close(), b.close()]);
      } finally {
        await dropSchema(schema);
      }
    });

    it('a commit past 10 000 rows goes in several statements of one transaction, in creation order', async () => {
      const { store, cleanup } = await openFresh();
      try {
        await store.createRun(makeRun('r1'));
        const before = store.stats;
        for (let i = 0; i < 25_000; i++) {
          store.putAction(makeAction('r1', `c${i}`, { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2 }));
        }
        await store.flush();
        const after = store.stats;
        assert.equal(after.rowsWritten - before.rowsWritten, 25_000);
        const commits = after.commits - before.commits;
        // Per commit: BEGIN with the fencing lock (one round trip), COMMIT; and one INSERT per 10 000 rows (at
        // least 3 for 25 000).
        assert.ok(after.commitStatements - before.commitStatements >= 2 * commits + 3, 'chunked statements');
        assert.equal((await store.countActions('r1')).succeeded, 25_000);
        assert.deepEqual(
          (await store.listActions('r1', { offset: 9_999, limit: 3 })).map((a) => a.name),
          ['c9999', 'c10000', 'c10001'],
          'creation order across statements',
        );
      } finally {
        await cleanup();
      }
    });

    it('a flush of 5 000 actions is one transaction of a few statements', async () => {
      const { store, cleanup } = await openFresh();
      try {
        await store.createRun(makeRun('r1'));
        const before = store.stats;
        for (let i = 0; i < 5_000; i++) {
          store.putAction(makeAction('r1', `c${i}`, { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2 }));
        }
        await store.flush();
        const after = store.stats;
        assert.equal(after.commits - before.commits, 1);
        assert.equal(after.rowsWritten - before.rowsWritten, 5_000);
        // BEGIN, the fencing lock of the run, the actions, COMMIT.
        assert.ok(
          after.commitStatements - before.commitStatements <= 4,
          `${after.commitStatements - before.commitStatements} statements`,
        );
        assert.equal((await store.countActions('r1')).succeeded, 5_000);
        assert.deepEqual(
          (await store.listActions('r1', { offset: 4_998 })).map((a) => a.name),
          ['c4998', 'c4999'],
          'creation order',
        );
      } finally {
        await cleanup();
      }
    });

    it('never makes a terminal action unfinished again within one epoch, but a claim may', async () => {
      const { store, cleanup } = await openFresh();
      try {
        await store.createRun(makeRun('r1', { phase: 'running' }));
        store.putAction(makeAction('r1', 'c1', { phase: 'failed', attempts: 1, startedAt: 1, endedAt: 2 }));
        await store.flush();
        store.putAction(makeAction('r1', 'c1', { phase: 'running', attempts: 1, startedAt: 3 }));
        assert.equal((await store.getAction('r1', 'c1'))?.phase, 'failed');
        // A recovery claims the run and runs the action again.
        await store.claimRun('r1', 1, { owner: 'h:2', leaseMs: 5_000 });
        store.putAction(makeAction('r1', 'c1', { phase: 'running', attempts: 1, startedAt: 4 }));
        assert.equal((await store.getAction('r1', 'c1'))?.phase, 'running');
      } finally {
        await cleanup();
      }
    });

    it('reads see writes made while a commit is in flight', async () => {
      const { store, cleanup } = await openFresh();
      try {
        store.putAction(makeAction('r1', 'c1'));
        const first = store.durable();
        store.putAction(makeAction('r1', 'c2'));
        await Promise.resolve();
        store.putAction(makeAction('r1', 'c1', { phase: 'succeeded' }));
        assert.deepEqual(
          (await store.listActions('r1')).map((a) => [a.name, a.phase]),
          [
            ['c1', 'succeeded'],
            ['c2', 'queued'],
          ],
        );
        await first;
      } finally {
        await cleanup();
      }
    });
  });
});

describe('Postgres URLs', () => {
  it('takes the schema from ?schema=, default flyte, and hides the password', () => {
    const parsed = parsePostgresUrl('postgres://me:s3cret@db.internal:5433/flyte?schema=team_a&sslmode=disable');
    assert.equal(parsed.schema, 'team_a');
    assert.equal(parsed.connectionString, 'postgres://me:s3cret@db.internal:5433/flyte?sslmode=disable');
    assert.ok(!parsed.description.includes('s3cret'), parsed.description);
    assert.ok(parsed.description.includes('schema=team_a'), parsed.description);
    assert.equal(parsePostgresUrl('postgresql://db/flyte').schema, 'flyte');
  });

  it('takes the outage limit from ?maxOutageMs=, and does not pass it to the driver', () => {
    const parsed = parsePostgresUrl('postgres://db/flyte?schema=a&maxOutageMs=2500');
    assert.equal(parsed.maxOutageMs, 2500);
    assert.equal(parsed.connectionString, 'postgres://db/flyte');
    assert.equal(parsePostgresUrl('postgres://db/flyte').maxOutageMs, undefined);
    for (const bad of ['-1', '1.5', 'soon', '']) {
      assert.throws(
        () => parsePostgresUrl(`postgres://db/flyte?maxOutageMs=${bad}`),
        (e: unknown) => e instanceof InitializationError && /maxOutageMs must be a whole number/.test(e.message),
        bad,
      );
    }
  });

  it('refuses a bad schema name, saying what it expected', () => {
    for (const schema of ['Team', '1abc', 'a-b', 'x;drop', '']) {
      assert.throws(
        () => parsePostgresUrl(`postgres://db/flyte?schema=${encodeURIComponent(schema)}`),
        (e: unknown) => e instanceof InitializationError && /lower-case letters/.test(e.message),
        schema,
      );
    }
  });

  it('openStoreAsync opens the other stores too, and they are ready at once', async () => {
    const mem = await openStoreAsync('memory:', { root: '.' });
    assert.equal(mem.description, 'memory:');
    await mem.ready();
    await mem.close();
  });

  it('openStore returns an unreachable Postgres store at once; ready() and every later operation reject', async () => {
    const store = openStore('postgres://me:s3cret@127.0.0.1:1/flyte?schema=x', { root: '.' });
    assert.ok(store instanceof PostgresStore);
    store.putAction(makeAction('r1', 'a0')); // buffered while connecting
    const failed = (e: unknown): boolean =>
      e instanceof InitializationError &&
      /cannot open the run store postgres:\/\/me:\*\*\*@127\.0\.0\.1:1\/flyte\?schema=x/.test(e.message) &&
      !e.message.includes('s3cret');
    await assert.rejects(store.ready(), failed);
    await assert.rejects(store.getRun('r1'), failed);
    await assert.rejects(store.flush(), failed);
    await assert.rejects(store.durable(), failed);
    assert.throws(() => store.putAction(makeAction('r1', 'a1')), failed);
    await store.close();
  });

  it('an unreachable server is an InitializationError without the password', async () => {
    await assert.rejects(
      openStoreAsync('postgres://me:s3cret@127.0.0.1:1/flyte?schema=x', { root: '.' }),
      (e: unknown) =>
        e instanceof InitializationError &&
        /cannot open the run store/.test(e.message) &&
        !e.message.includes('s3cret'),
    );
  });
});

describe('PostgresStore through openStore', { skip }, () => {
  it('connects in the background: writes made before it is ready are kept and read back', async () => {
    const schema = freshSchema();
    try {
      const store = openStore(urlWithSchema(schema), { root: '.' });
      store.putAction(makeAction('r1', 'a0'));
      await store.createRun(makeRun('r1'));
      assert.equal((await store.getAction('r1', 'a0'))?.name, 'a0');
      await store.ready();
      await store.close();
      const rows = await peekPostgres<{ name: string }>(`SELECT name FROM "${schema}".actions`);
      assert.deepEqual(rows, [{ name: 'a0' }]);
    } finally {
      await dropSchema(schema);
    }
  });
});

describe('PostgresStore through openStoreAsync', { skip }, () => {
  it('opens a postgres:// store on its schema', async () => {
    const schema = freshSchema();
    try {
      const store = await openStoreAsync(urlWithSchema(schema), { root: '.' });
      assert.ok(store instanceof PostgresStore);
      assert.ok(store.description.includes(`schema=${schema}`));
      await store.createRun(makeRun('r1'));
      await store.close();
      const rows = await peekPostgres<{ name: string }>(`SELECT name FROM "${schema}".runs`);
      assert.deepEqual(rows, [{ name: 'r1' }]);
    } finally {
      await dropSchema(schema);
    }
  });
});
