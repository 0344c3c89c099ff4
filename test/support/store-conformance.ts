/**
 * The one test suite every {@link RunStore} passes: the memory store, the SQLite store, and later the Postgres
 * store. A backend's test file calls {@link runStoreConformance} with a factory that opens a fresh, empty store.
 *
 * No test calls `flush()` before reading unless it says so: reads must see every earlier write by themselves.
 * @module
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RunAlreadyExistsError,
  StoreClosedError,
  emptyCounts,
  type ActionWrite,
  type CacheEntry,
  type RunStore,
  type RunWrite,
} from '../../src/store/run-store.js';
import type { ActionError, AttemptRecord, LogLine } from '../../src/types.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What a conformance factory returns: a fresh, empty store and how to dispose of it. */
export interface StoreUnderTest {
  readonly store: RunStore;
  /**
   * Opens a second instance on the same database, as another process would (for the cases of several writers);
   * absent for a store that lives in one process only (memory). `cleanup` closes it too.
   */
  readonly openAnother?: () => Promise<RunStore>;
  /** Closes the store if the test did not, and removes its files. */
  cleanup(): Promise<void>;
}

/**
 * Registers the conformance cases for one backend.
 *
 * @example
 * ```ts
 * runStoreConformance('MemoryStore', async () => {
 *   const store = new MemoryStore();
 *   return { store, cleanup: () => store.close() };
 * });
 * ```
 */
export function runStoreConformance(name: string, factory: () => Promise<StoreUnderTest>): void {
  /** Runs `body` against a fresh store and always cleans up. */
  async function withStore(body: (store: RunStore, sut: StoreUnderTest) => Promise<void>): Promise<void> {
    const sut = await factory();
    try {
      await body(sut.store, sut);
    } finally {
      await sut.cleanup();
    }
  }

  /** Runs `body` with two instances on one database; does nothing for a single-process store. */
  async function withTwoStores(body: (a: RunStore, b: RunStore) => Promise<void>): Promise<void> {
    await withStore(async (a, sut) => {
      if (sut.openAnother === undefined) return;
      await body(a, await sut.openAnother());
    });
  }

  describe(`RunStore conformance: ${name}`, () => {
    it('has a description', () =>
      withStore(async (store) => {
        assert.equal(typeof store.description, 'string');
        assert.ok(store.description.length > 0);
      }));

    describe('runs', () => {
      it('createRun records a run and its inputs', () =>
        withStore(async (store) => {
          const run = makeRun('r1', {
            labels: { team: 'ml', env: 'dev' },
            options: { disableRunCache: true, maxActionConcurrency: 4, customContext: { tenant: 'acme' } },
            module: 'file:///proj/wf.ts',
            owner: 'host:1',
            error: null,
          });
          await store.createRun(run);
          assert.deepEqual(await store.getRun('r1'), withoutInputs(run));
          assert.equal(await store.getRunInputs('r1'), run.inputs);
          assert.equal(await store.getRun('missing'), undefined);
          assert.equal(await store.getRunInputs('missing'), undefined);
        }));

      it('createRun rejects a name that exists, and keeps the first run', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1', { taskName: 'env.first' }));
          await assert.rejects(store.createRun(makeRun('r1', { taskName: 'env.second' })), (e: unknown) => {
            assert.ok(e instanceof RunAlreadyExistsError);
            assert.equal(e.code, 'RunAlreadyExistsError');
            assert.equal(e.runName, 'r1');
            return true;
          });
          assert.equal((await store.getRun('r1'))?.taskName, 'env.first');
        }));

      it('updateRun merges pending updates; undefined keeps a field, null clears it', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1', { owner: 'host:1' }));
          store.updateRun('r1', { phase: 'running', startedAt: 1_000 });
          store.updateRun('r1', { error: ERROR });
          assert.deepEqual(pick(await store.getRun('r1')), {
            phase: 'running',
            startedAt: 1_000,
            endedAt: null,
            error: ERROR,
            owner: 'host:1',
          });
          store.updateRun('r1', { phase: 'succeeded', endedAt: 2_000, error: null, owner: null });
          assert.deepEqual(pick(await store.getRun('r1')), {
            phase: 'succeeded',
            startedAt: 1_000,
            endedAt: 2_000,
            error: null,
            owner: null,
          });
          await store.flush();
          store.updateRun('r1', { phase: 'orphaned' });
          assert.equal((await store.getRun('r1'))?.phase, 'orphaned');
          assert.equal((await store.getRun('r1'))?.endedAt, 2_000);
        }));

      it('durable() resolves once earlier writes are committed, and many waiters share a commit', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          await store.durable(); // nothing pending
          store.putAction(makeAction('r1', 'c1', { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2 }));
          const waits = [store.durable(), store.durable(), store.durable()];
          store.putAction(makeAction('r1', 'c2', { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2 }));
          await Promise.all(waits);
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'succeeded');
          assert.equal((await store.getAction('r1', 'c2'))?.phase, 'succeeded');
        }));

      it('claimRun is a compare-and-set on the epoch: one of two claims wins, the lease starts', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1', { phase: 'failed', endedAt: 5, error: ERROR, owner: 'h:1' }));
          const before = Date.now();
          const [first, second] = await Promise.all([
            store.claimRun('r1', 1, { owner: 'h:2', leaseMs: 10_000 }),
            store.claimRun('r1', 1, { owner: 'h:3', leaseMs: 10_000 }),
          ]);
          const won = [first, second].filter((c) => c !== undefined);
          assert.equal(won.length, 1, 'exactly one claim wins');
          const run = won[0];
          assert.equal(run?.epoch, 2);
          assert.equal(run?.phase, 'running');
          assert.equal(run?.endedAt, null);
          assert.equal(run?.error, null);
          assert.ok((run?.heartbeatAt ?? 0) >= before);
          assert.ok((run?.leaseExpiresAt ?? 0) >= before + 10_000);
          assert.deepEqual(await store.getRun('r1'), run);
          assert.equal(await store.claimRun('r1', 1, { owner: 'h:4', leaseMs: 1 }), undefined, 'a stale epoch loses');
          assert.equal(await store.claimRun('missing', 1, { owner: 'h:4', leaseMs: 1 }), undefined);
        }));

      it('renewLease holds only at the current epoch, and revives an orphaned run of that epoch', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1', { phase: 'running', owner: 'h:1', leaseExpiresAt: 1 }));
          assert.equal(await store.markOrphaned('r1', 2), false, 'another epoch: left alone');
          assert.equal(await store.markOrphaned('r1', 1), true);
          assert.equal((await store.getRun('r1'))?.phase, 'orphaned');
          assert.equal(await store.markOrphaned('r1', 1), false, 'only a running run is marked');
          assert.equal(await store.renewLease('r1', 1, 5_000), true);
          const renewed = await store.getRun('r1');
          assert.equal(renewed?.phase, 'running');
          assert.ok((renewed?.leaseExpiresAt ?? 0) > Date.now());
          await store.claimRun('r1', 1, { owner: 'h:2', leaseMs: 5_000 });
          assert.equal(await store.renewLease('r1', 1, 5_000), false, 'taken over: the old driver cannot renew');
        }));

      it('two instances on one database: one of two racing claims wins', () =>
        withTwoStores(async (a, b) => {
          await a.createRun(makeRun('r1', { phase: 'running', owner: 'h:1' }));
          const claims = await Promise.all([
            a.claimRun('r1', 1, { owner: 'h:a', leaseMs: 5_000 }),
            b.claimRun('r1', 1, { owner: 'h:b', leaseMs: 5_000 }),
          ]);
          assert.equal(claims.filter((c) => c !== undefined).length, 1);
          assert.equal((await b.getRun('r1'))?.epoch, 2);
        }));

      // Two ways of learning of the loss: a commit of action rows only (one statement on Postgres), and a commit
      // of several tables (a transaction; its lock names the runs as quoted literals on Postgres).
      for (const [run, actionsOnly] of [
        ['r1', true],
        [String.raw`r'1\ "quoted"`, false],
      ] as const) {
        it(`two instances: writes of the instance that lost the run are refused (fencing), ${actionsOnly ? 'actions only' : 'several tables'}, run ${run}`, () =>
          withTwoStores(async (a, b) => {
            await a.createRun(makeRun(run, { phase: 'running', owner: 'h:a' }));
            a.putAction(makeAction(run, 'a0', { parentName: null, phase: 'running', attempts: 1, startedAt: 1 }));
            await a.flush();
            // b takes the run over (a hung past its lease) and records the root's end.
            assert.notEqual(await b.claimRun(run, 1, { owner: 'h:b', leaseMs: 5_000 }), undefined);
            b.putAction(
              makeAction(run, 'a0', { parentName: null, phase: 'aborted', attempts: 1, startedAt: 1, endedAt: 3 }),
            );
            await b.flush();
            // a wakes up and writes what it believes: nothing of it lands.
            if (actionsOnly) {
              a.putAction(makeAction(run, 'c0', { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 9 }));
              await a.flush();
              assert.equal(await b.getAction(run, 'c0'), undefined);
            }
            a.putAction(
              makeAction(run, 'a0', { parentName: null, phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 9 }),
            );
            a.putAction(makeAction(run, 'c1', { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 9 }));
            a.updateRun(run, { phase: 'succeeded', endedAt: 9 });
            await a.flush();
            assert.equal((await b.getAction(run, 'a0'))?.phase, 'aborted');
            assert.equal(await b.getAction(run, 'c1'), undefined);
            assert.equal((await b.getRun(run))?.phase, 'running');
            assert.equal(await a.renewLease(run, 1, 5_000), false);
          }));
      }

      it('two instances: concurrent group commits to one run lose nothing', () =>
        withTwoStores(async (a, b) => {
          await a.createRun(makeRun('r1', { phase: 'running' }));
          const writes: Promise<void>[] = [];
          for (let i = 0; i < 500; i++) {
            a.putAction(
              makeAction('r1', `a${i}`, { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2, epoch: 1 }),
            );
            b.putAction(
              makeAction('r1', `b${i}`, { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2, epoch: 1 }),
            );
            if (i % 25 === 24) writes.push(a.durable(), b.durable());
          }
          writes.push(a.durable(), b.durable());
          await Promise.all(writes);
          const counts = await b.countActions('r1');
          assert.equal(counts.succeeded, 1_000);
          assert.equal((await a.endedAmong('r1', ['a0', 'a499', 'b0', 'b499'])).length, 4);
        }));

      it('two instances: concurrent group commits lose nothing', () =>
        withTwoStores(async (a, b) => {
          await a.createRun(makeRun('r1'));
          await b.createRun(makeRun('r2'));
          for (let i = 0; i < 200; i++) {
            a.putAction(makeAction('r1', `c${i}`, { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2 }));
            b.putAction(makeAction('r2', `c${i}`, { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2 }));
            if (i % 50 === 49) await Promise.all([a.durable(), b.durable()]);
          }
          await Promise.all([a.durable(), b.durable()]);
          assert.equal((await b.countActions('r1')).succeeded, 200);
          assert.equal((await a.countActions('r2')).succeeded, 200);
        }));

      it('abort requests stay: listed in the order made, after a sequence number, with the run epoch', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          await store.createRun(makeRun('r2'));
          assert.deepEqual(await store.listAbortRequests(['r1', 'r2']), []);
          const before = Date.now();
          await store.requestAbort('r1', 'first', 'a3');
          await store.requestAbort('r1', 'second', 'a3');
          await store.requestAbort('r2', 'not asked for', 'a1');
          await store.requestAbort('r1', 'all of it');
          await assert.rejects(store.requestAbort('ghost', 'x'), RangeError);
          await assert.rejects(store.requestAbort('ghost', 'x', 'a1'), RangeError);
          assert.deepEqual(await store.listAbortRequests([]), []);
          const r1 = await store.listAbortRequests(['r1', 'nope']);
          assert.deepEqual(
            r1.map((r) => [r.runName, r.actionName, r.reason, r.runEpoch]),
            [
              ['r1', 'a3', 'first', 1],
              ['r1', 'a3', 'second', 1],
              ['r1', null, 'all of it', 1],
            ],
          );
          const seqs = r1.map((r) => r.seq);
          assert.deepEqual(
            seqs,
            [...seqs].sort((a, b) => a - b),
            'in sequence order',
          );
          assert.equal(new Set(seqs).size, 3, 'distinct sequence numbers');
          assert.ok(r1.every((r) => r.requestedAt >= before));
          assert.deepEqual(await store.listAbortRequests(['r1']), r1, 'a read, not a take: listed again');
          assert.deepEqual(
            (await store.listAbortRequests(['r1', 'r2'], seqs[1])).map((r) => r.reason),
            ['not asked for', 'all of it'],
          );
          assert.deepEqual(await store.listAbortRequests(['r1', 'r2'], seqs[2]), []);
          // A recovery raises the run's epoch: requests made from then on carry it.
          await store.claimRun('r1', 1, { owner: 'h:2', leaseMs: 5_000 });
          await store.requestAbort('r1', 'after the recovery');
          const last = (await store.listAbortRequests(['r1'], seqs[2])).map((r) => [r.reason, r.runEpoch]);
          assert.deepEqual(last, [['after the recovery', 2]]);
        }));

      it('two instances: abort requests are seen by every reader, each as often as it asks', () =>
        withTwoStores(async (a, b) => {
          await a.createRun(makeRun('r1', { phase: 'running' }));
          await b.requestAbort('r1', 'from b', 'a1');
          await a.requestAbort('r1', 'from a');
          const seenByA = await a.listAbortRequests(['r1']);
          const seenByB = await b.listAbortRequests(['r1']);
          assert.deepEqual(
            seenByA.map((r) => [r.actionName, r.reason]),
            [
              ['a1', 'from b'],
              [null, 'from a'],
            ],
          );
          assert.deepEqual(seenByB, seenByA);
          assert.deepEqual(await a.listAbortRequests(['r1']), seenByA, 'still there for a second read');
        }));

      it('updateRun of an unknown run changes nothing', () =>
        withStore(async (store) => {
          store.updateRun('ghost', { phase: 'failed' });
          await store.flush();
          assert.equal(await store.getRun('ghost'), undefined);
        }));

      it('listRuns is newest first (ties by name, descending), filters by phase and task, pages', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r-a', { createdAt: 10, taskName: 'env.main' }));
          await store.createRun(makeRun('r-b', { createdAt: 30, taskName: 'env.other' }));
          await store.createRun(makeRun('r-c', { createdAt: 20, taskName: 'env.main' }));
          await store.createRun(makeRun('r-d', { createdAt: 30, taskName: 'env.main' }));
          store.updateRun('r-c', { phase: 'failed' });
          const names = async (q?: Parameters<RunStore['listRuns']>[0]) => (await store.listRuns(q)).map((r) => r.name);
          assert.deepEqual(await names(), ['r-d', 'r-b', 'r-c', 'r-a']);
          assert.deepEqual(await names({ phase: 'failed' }), ['r-c']);
          assert.deepEqual(await names({ taskName: 'env.main' }), ['r-d', 'r-c', 'r-a']);
          assert.deepEqual(await names({ taskName: 'env.main', phase: 'queued' }), ['r-d', 'r-a']);
          assert.deepEqual(await names({ limit: 2 }), ['r-d', 'r-b']);
          assert.deepEqual(await names({ limit: 2, offset: 2 }), ['r-c', 'r-a']);
          assert.deepEqual(await names({ offset: 4 }), []);
          assert.deepEqual((await store.listRuns())[0], withoutInputs(makeRun('r-d', { createdAt: 30 })));
        }));

      it('listRuns returns 50 runs unless told otherwise', () =>
        withStore(async (store) => {
          for (let i = 0; i < 55; i++)
            await store.createRun(makeRun(`r${String(i).padStart(2, '0')}`, { createdAt: i }));
          const runs = await store.listRuns();
          assert.equal(runs.length, 50);
          assert.equal(runs[0]?.name, 'r54');
          assert.equal((await store.listRuns({ limit: 100 })).length, 55);
        }));

      it('list queries reject a negative or fractional offset or limit', () =>
        withStore(async (store) => {
          await assert.rejects(store.listRuns({ limit: -1 }), RangeError);
          await assert.rejects(store.listRuns({ offset: 1.5 }), RangeError);
          await assert.rejects(store.listActions('r1', { offset: -1 }), RangeError);
          await assert.rejects(store.listActions('r1', { limit: Number.NaN }), RangeError);
        }));
    });

    describe('actions', () => {
      it('putAction is read back at once, record and IO', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          const a = makeAction('r1', 'a0', {
            parentName: null,
            phase: 'failed',
            cacheHit: true,
            attempts: 2,
            startedAt: 5,
            endedAt: 9,
            error: ERROR,
            inputs: '[1,2]',
            inputsHash: 'h0',
            outputs: undefined,
          });
          store.putAction(a);
          assert.deepEqual(await store.getAction('r1', 'a0'), withoutIO(a));
          assert.deepEqual(await store.getActionIO('r1', 'a0'), { inputs: '[1,2]', outputs: null });
          assert.equal(await store.getAction('r1', 'nope'), undefined);
          assert.equal(await store.getAction('nope', 'a0'), undefined);
          assert.equal(await store.getActionIO('r1', 'nope'), undefined);
        }));

      it('an action without inputs or outputs has null IO', () =>
        withStore(async (store) => {
          store.putAction(makeAction('r1', 'x'));
          assert.deepEqual(await store.getActionIO('r1', 'x'), { inputs: null, outputs: null });
        }));

      it('later writes replace pending ones but keep inputs, their hash and outputs', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          store.putAction(makeAction('r1', 'a1', { phase: 'queued', inputs: '[1]', inputsHash: 'h1' }));
          store.putAction(makeAction('r1', 'a1', { phase: 'running', attempts: 1, startedAt: 10 }));
          store.putAction(
            makeAction('r1', 'a1', { phase: 'succeeded', attempts: 1, startedAt: 10, endedAt: 20, outputs: '2' }),
          );
          store.putAction(makeAction('r1', 'a1', { phase: 'succeeded', attempts: 1, startedAt: 10, endedAt: 21 }));
          assert.deepEqual(
            await store.getAction('r1', 'a1'),
            withoutIO(makeAction('r1', 'a1', { phase: 'succeeded', attempts: 1, startedAt: 10, endedAt: 21 })),
          );
          assert.deepEqual(await store.getActionIO('r1', 'a1'), { inputs: '[1]', outputs: '2' });
          assert.equal((await store.listActions('r1')).length, 1);
        }));

      it('later writes keep inputs and outputs that were already flushed', () =>
        withStore(async (store) => {
          store.putAction(makeAction('r1', 'a1', { phase: 'queued', inputs: '[1]', inputsHash: 'h1' }));
          await store.flush();
          store.putAction(makeAction('r1', 'a1', { phase: 'succeeded', outputs: '"done"' }));
          await store.flush();
          store.putAction(makeAction('r1', 'a1', { phase: 'succeeded', cacheHit: true }));
          assert.deepEqual(await store.getActionIO('r1', 'a1'), { inputs: '[1]', outputs: '"done"' });
          assert.equal((await store.getAction('r1', 'a1'))?.cacheHit, true);
        }));

      it('a write with new inputs or outputs replaces the old ones', () =>
        withStore(async (store) => {
          store.putAction(makeAction('r1', 'a1', { inputs: '[1]', outputs: '1' }));
          await store.flush();
          store.putAction(makeAction('r1', 'a1', { inputs: '[2]' }));
          store.putAction(makeAction('r1', 'a1', { outputs: '4' }));
          assert.deepEqual(await store.getActionIO('r1', 'a1'), { inputs: '[2]', outputs: '4' });
        }));

      it('listActions is in creation order, whatever the names and later updates', () =>
        withStore(async (store) => {
          const order = ['a0', 'zz', 'b1', 'm5', 'a2'];
          store.putAction(makeAction('r1', 'a0', { parentName: null }));
          store.putAction(makeAction('r1', 'zz'));
          store.putAction(makeAction('r1', 'b1'));
          await store.flush();
          store.putAction(makeAction('r1', 'm5'));
          store.putAction(makeAction('r1', 'zz', { phase: 'succeeded' }));
          store.putAction(makeAction('r1', 'a2'));
          store.putAction(makeAction('r1', 'a0', { parentName: null, phase: 'running' }));
          store.putAction(makeAction('other', 'aa'));
          assert.deepEqual(
            (await store.listActions('r1')).map((a) => a.name),
            order,
          );
          assert.deepEqual(await store.listActions('nope'), []);
        }));

      it('listActions filters by parent (null is the root), group and phase, and pages', () =>
        withStore(async (store) => {
          store.putAction(makeAction('r1', 'a0', { parentName: null }));
          for (let i = 0; i < 6; i++) {
            store.putAction(makeAction('r1', `m${i}`, { group: 'map', phase: i % 2 === 0 ? 'succeeded' : 'failed' }));
          }
          store.putAction(makeAction('r1', 'g0', { group: 'g' }));
          store.putAction(makeAction('r1', 'c0', { parentName: 'm0' }));
          store.putAction(makeAction('r1', 'c1', { parentName: 'm0', group: 'map' }));
          const names = async (q: Parameters<RunStore['listActions']>[1]) =>
            (await store.listActions('r1', q)).map((a) => a.name);
          assert.deepEqual(await names({ parentName: null }), ['a0']);
          assert.deepEqual(await names({ parentName: 'a0' }), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'g0']);
          assert.deepEqual(await names({ parentName: 'm0' }), ['c0', 'c1']);
          assert.deepEqual(await names({ group: 'map' }), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'c1']);
          assert.deepEqual(await names({ parentName: 'a0', group: 'map' }), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
          assert.deepEqual(await names({ phase: 'failed' }), ['m1', 'm3', 'm5']);
          assert.deepEqual(await names({ parentName: 'a0', group: 'map', phase: 'succeeded' }), ['m0', 'm2', 'm4']);
          assert.deepEqual(await names({ parentName: 'a0', group: 'map', offset: 2, limit: 3 }), ['m2', 'm3', 'm4']);
          assert.deepEqual(await names({ parentName: 'a0', group: 'map', offset: 4 }), ['m4', 'm5']);
          assert.deepEqual(await names({ limit: 0 }), []);
          assert.deepEqual(await names({ offset: 100 }), []);
          assert.deepEqual(await names({ group: 'none' }), []);
          assert.deepEqual(await names({ parentName: 'm0', group: null }), ['c0'], 'null: only actions in no group');
          assert.deepEqual(await names({ group: null }), ['a0', 'c0']);
        }));

      it('listActions pages after a cursor (the last name of the previous page), with filters; another run or an unknown name matches nothing', () =>
        withStore(async (store) => {
          store.putAction(makeAction('r1', 'a0', { parentName: null }));
          // Names out of creation order, and another run's actions in between: the cursor is creation order.
          for (const n of ['z', 'b', 'y', 'c', 'x']) {
            store.putAction(makeAction('r1', n, { group: 'map', phase: n < 'w' ? 'failed' : 'succeeded' }));
            store.putAction(makeAction('r2', n));
          }
          const names = async (q: Parameters<RunStore['listActions']>[1]) =>
            (await store.listActions('r1', q)).map((a) => a.name);
          assert.deepEqual(await names({ after: 'a0' }), ['z', 'b', 'y', 'c', 'x']);
          assert.deepEqual(await names({ after: 'b', limit: 2 }), ['y', 'c']);
          assert.deepEqual(await names({ after: 'x' }), []);
          assert.deepEqual(await names({ after: 'a0', phase: 'failed' }), ['b', 'c']);
          assert.deepEqual(await names({ after: 'b', parentName: 'a0', group: 'map', limit: 1 }), ['y']);
          assert.deepEqual(await names({ after: 'nope' }), [], 'an unknown cursor matches nothing');
          // Paging through the whole run by the cursor reads each action once.
          const seen: string[] = [];
          for (let after: string | undefined; ; ) {
            const page = await names({ ...(after === undefined ? {} : { after }), limit: 2 });
            if (page.length === 0) break;
            seen.push(...page);
            after = page[page.length - 1];
          }
          assert.deepEqual(seen, ['a0', 'z', 'b', 'y', 'c', 'x']);
          await assert.rejects(store.listActions('r1', { after: '' }), /after must be an action name/);
        }));

      it('records itemIndex, fixed by the first write, and reads it back in every query', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          store.putAction(makeAction('r1', 'a0', { parentName: null, phase: 'running' }));
          store.putAction(makeAction('r1', 'm0', { group: 'map', itemIndex: 0 }));
          store.putAction(makeAction('r1', 'm1', { group: 'map', itemIndex: 1 }));
          await store.flush();
          // A later write (a worker, a retry) does not move an item: its index stays the first one written.
          store.putAction(makeAction('r1', 'm1', { group: 'map', itemIndex: 7, phase: 'failed', error: ERROR }));
          store.putAction(makeAction('r1', 'm0', { group: 'map', itemIndex: null, phase: 'running' }));
          assert.equal((await store.getAction('r1', 'a0'))?.itemIndex, null);
          assert.equal((await store.getAction('r1', 'm0'))?.itemIndex, 0);
          assert.equal((await store.getAction('r1', 'm1'))?.itemIndex, 1);
          assert.deepEqual(
            (await store.listActions('r1', { parentName: 'a0' })).map((a) => [a.name, a.itemIndex]),
            [
              ['m0', 0],
              ['m1', 1],
            ],
          );
          assert.deepEqual(
            (await store.endedAmong('r1', ['m0', 'm1'], { withOutputs: true })).map((a) => a.itemIndex),
            [1],
          );
          assert.equal((await store.claimAction('r1', 'm0', { owner: 'w', leaseMs: 1000 }))?.itemIndex, 0);
        }));

      it('listCauses groups the failed members of one fan-out by code and masked message, largest first', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          const fail = (i: number, phase: 'failed' | 'timed_out', code: string, message: string, group = 'map') =>
            store.putAction(
              makeAction('r1', `m${i}`, {
                group,
                itemIndex: i,
                phase,
                endedAt: 10 + i,
                error: { code, kind: 'user', message },
              }),
            );
          fail(0, 'failed', 'Error', 'HTTP 404 for item 0');
          fail(1, 'failed', 'Error', 'HTTP 503 for item 1');
          fail(2, 'timed_out', 'TaskTimeoutError', 'timed out after 50 ms');
          fail(3, 'failed', 'Error', 'HTTP 503 for item 3');
          fail(4, 'failed', 'Error', 'HTTP 503 for item 4');
          fail(5, 'timed_out', 'TaskTimeoutError', 'timed out after 50 ms');
          store.putAction(makeAction('r1', 'm6', { group: 'map', itemIndex: 6, phase: 'succeeded' }));
          // Aborted members have an error but no cause; other groups, parents and runs are not counted.
          store.putAction(
            makeAction('r1', 'm7', {
              group: 'map',
              phase: 'aborted',
              error: { code: 'ActionAbortedError', kind: 'system', message: 'aborted' },
            }),
          );
          fail(8, 'failed', 'Error', 'HTTP 503 for item 8', 'other');
          store.putAction(
            makeAction('r1', 'c0', { parentName: 'm0', group: 'map', phase: 'failed', error: ERROR }),
          );
          store.putAction(makeAction('r2', 'm0', { group: 'map', phase: 'failed', error: ERROR }));
          assert.deepEqual(await store.listCauses('r1', { parentName: 'a0', group: 'map' }), [
            { code: 'Error', pattern: 'HTTP 503 for item <n>', count: 3, example: 'm1' },
            { code: 'TaskTimeoutError', pattern: 'timed out after <n> ms', count: 2, example: 'm2' },
            { code: 'Error', pattern: 'HTTP 404 for item <n>', count: 1, example: 'm0' },
          ]);
          assert.deepEqual(await store.listCauses('r1', { parentName: 'a0', group: 'none' }), []);
          assert.deepEqual(await store.listCauses('nope', { parentName: 'a0', group: 'map' }), []);
          // A member retried (recovered) is no longer a failure: its cause goes with its error.
          store.putAction(makeAction('r1', 'm1', { group: 'map', phase: 'running', epoch: 5 }));
          assert.deepEqual(
            (await store.listCauses('r1', { parentName: 'a0', group: 'map' })).map((c) => [c.count, c.example]),
            [
              [2, 'm2'],
              [2, 'm3'],
              [1, 'm0'],
            ],
            'equal counts: in the order of their first member',
          );
          await assert.rejects(
            store.listCauses('r1', { parentName: null, group: 'map' } as never),
            (e: Error) => e instanceof TypeError && /parentName: string, group: string/.test(e.message),
          );
        }));

      it('listActions searches: failed, text in inputs or error message, item index, cause; paged', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          const error = (message: string) => ({ code: 'Error', kind: 'user' as const, message });
          for (let i = 0; i < 8; i++) {
            const failed = i % 2 === 1;
            store.putAction(
              makeAction('r1', `m${i}`, {
                group: 'map',
                itemIndex: i,
                inputs: `[{"url":"https://Example.com/item/${i}"}]`,
                phase: failed ? (i === 7 ? 'timed_out' : 'failed') : 'succeeded',
                error: failed ? error(i === 5 ? 'Quota Exceeded for user 5' : `HTTP 503 for item ${i}`) : null,
              }),
            );
          }
          store.putAction(makeAction('r1', 'x0', { group: 'other', itemIndex: 3, phase: 'failed', error: error('x') }));
          const names = async (q: Parameters<RunStore['listActions']>[1]) =>
            (await store.listActions('r1', { parentName: 'a0', group: 'map', ...q })).map((a) => a.name);
          assert.deepEqual(await names({ failed: true }), ['m1', 'm3', 'm5', 'm7']);
          assert.deepEqual(await names({ failed: false }), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
          assert.deepEqual(await names({ failed: true, offset: 1, limit: 2 }), ['m3', 'm5']);
          assert.deepEqual(await names({ itemIndex: 3 }), ['m3']);
          assert.deepEqual(await names({ itemIndex: 99 }), []);
          // Text: case-insensitive, in the encoded inputs or in the error message (not its code).
          assert.deepEqual(await names({ text: 'example.COM/item/6' }), ['m6']);
          assert.deepEqual(await names({ text: 'quota exceeded' }), ['m5']);
          assert.deepEqual(await names({ text: 'http 503' }), ['m1', 'm3', 'm7']);
          assert.deepEqual(await names({ text: 'Error' }), []);
          assert.deepEqual(await names({ text: '%' }), [], 'no LIKE wildcards');
          assert.deepEqual(await names({ text: 'item', failed: true, limit: 2 }), ['m1', 'm3']);
          const cause = { code: 'Error', pattern: 'HTTP 503 for item <n>' };
          assert.deepEqual(await names({ cause }), ['m1', 'm3', 'm7']);
          assert.deepEqual(await names({ cause, offset: 2 }), ['m7']);
          assert.deepEqual(await names({ cause: { ...cause, code: 'TypeError' } }), []);
          assert.deepEqual(
            (await store.listActions('r1', { itemIndex: 3 })).map((a) => a.name),
            ['m3', 'x0'],
            'without a fan-out: the whole run',
          );
          await assert.rejects(store.listActions('r1', { itemIndex: -1 }), /itemIndex must be a non-negative integer/);
          await assert.rejects(store.listActions('r1', { text: '' }), /text must be a non-empty string/);
          await assert.rejects(
            store.listActions('r1', { cause: { code: 'Error' } as never }),
            /cause must be \{ code: string, pattern: string \}/,
          );
        }));

      it('countActions counts by phase, and cache hits', () =>
        withStore(async (store) => {
          assert.deepEqual(await store.countActions('r1'), emptyCounts());
          const phases = [
            'queued',
            'running',
            'running',
            'succeeded',
            'succeeded',
            'succeeded',
            'failed',
            'aborted',
            'timed_out',
          ] as const;
          phases.forEach((phase, i) =>
            store.putAction(makeAction('r1', `a${i}`, { phase, cacheHit: i >= 4 && i <= 5 })),
          );
          store.putAction(makeAction('r2', 'x'));
          assert.deepEqual(await store.countActions('r1'), {
            total: 9,
            queued: 1,
            running: 2,
            succeeded: 3,
            failed: 1,
            aborted: 1,
            timed_out: 1,
            cached: 2,
          });
          store.putAction(makeAction('r1', 'a0', { phase: 'succeeded', cacheHit: true }));
          const counts = await store.countActions('r1');
          assert.equal(counts.queued, 0);
          assert.equal(counts.succeeded, 4);
          assert.equal(counts.cached, 3);
          assert.equal(counts.total, 9);
        }));

      it('listGroups folds each (parent, group) with counts and time span, in creation order', () =>
        withStore(async (store) => {
          assert.deepEqual(await store.listGroups('r1'), []);
          store.putAction(makeAction('r1', 'a0', { parentName: null }));
          store.putAction(makeAction('r1', 'solo', { group: null }));
          store.putAction(
            makeAction('r1', 'm0', { group: 'map', phase: 'succeeded', cacheHit: true, startedAt: 30, endedAt: 40 }),
          );
          store.putAction(makeAction('r1', 'm1', { group: 'map', phase: 'running', startedAt: 20 }));
          store.putAction(makeAction('r1', 'm2', { group: 'map', phase: 'queued' }));
          store.putAction(makeAction('r1', 'p0', { group: 'prep', phase: 'failed', startedAt: 1, endedAt: 2 }));
          store.putAction(makeAction('r1', 'n0', { parentName: 'm1', group: 'map', phase: 'queued' }));
          store.putAction(makeAction('r2', 'o0', { group: 'map' }));
          assert.deepEqual(await store.listGroups('r1'), [
            {
              parentName: 'a0',
              group: 'map',
              counts: { ...emptyCounts(), total: 3, queued: 1, running: 1, succeeded: 1, cached: 1 },
              expected: null,
              startedAt: 20,
              endedAt: 40,
            },
            {
              parentName: 'a0',
              group: 'prep',
              counts: { ...emptyCounts(), total: 1, failed: 1 },
              expected: null,
              startedAt: 1,
              endedAt: 2,
            },
            {
              parentName: 'm1',
              group: 'map',
              counts: { ...emptyCounts(), total: 1, queued: 1 },
              expected: null,
              startedAt: null,
              endedAt: null,
            },
          ]);
        }));

      it('map totals add up per (parent, group); writing one map call again replaces it', () =>
        withStore(async (store) => {
          store.putAction(makeAction('r1', 'm0', { group: 'map' }));
          store.putAction(makeAction('r1', 'q0', { group: 'other' }));
          store.putMapTotal({ runName: 'r1', parentName: 'a0', group: 'map', seq: 0, total: 200 });
          store.putMapTotal({ runName: 'r1', parentName: 'a0', group: 'map', seq: 1, total: 50 });
          store.putMapTotal({ runName: 'r1', parentName: 'a0', group: 'map', seq: 1, total: 50 });
          store.putMapTotal({ runName: 'r1', parentName: 'x', group: 'map', seq: 0, total: 7 });
          store.putMapTotal({ runName: 'r2', parentName: 'a0', group: 'map', seq: 0, total: 9 });
          const groups = await store.listGroups('r1');
          assert.deepEqual(
            groups.map((g) => [g.group, g.counts.total, g.expected]),
            [
              ['map', 1, 250],
              ['other', 1, null],
            ],
          );
        }));
    });

    describe('many writers: action claims, guarded writes, ended actions', () => {
      it('claimAction raises the epoch and records the claim; a terminal or missing action is not claimed', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          store.putAction(makeAction('r1', 'c1', { inputs: '[1]' }));
          store.putAction(makeAction('r1', 'c2', { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2 }));
          const before = Date.now();
          const claimed = await store.claimAction('r1', 'c1', { owner: 'w:1', leaseMs: 10_000 });
          assert.ok(claimed !== undefined, 'a queued action is claimed');
          assert.deepEqual(
            { ...claimed, leaseExpiresAt: 0 },
            {
              ...withoutIO(makeAction('r1', 'c1', { phase: 'running' })),
              epoch: 2,
              owner: 'w:1',
              leaseExpiresAt: 0,
              inputs: '[1]',
              takeovers: 0,
              lostOwners: [],
            },
            'running, at the epoch after the run epoch of its writer (1), with its inputs',
          );
          assert.ok(claimed.leaseExpiresAt >= before + 10_000);
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'running');
          const again = await store.claimAction('r1', 'c1', { owner: 'w:2', leaseMs: 10_000 });
          assert.equal(again?.epoch, 3, 'a second claim (a takeover) raises it again');
          assert.equal(again?.owner, 'w:2');
          assert.deepEqual([again?.takeovers, again?.lostOwners], [1, ['w:1']], 'counted as a takeover from w:1');
          assert.equal(await store.claimAction('r1', 'c2', { owner: 'w:1', leaseMs: 1 }), undefined, 'terminal');
          assert.equal(await store.claimAction('r1', 'nope', { owner: 'w:1', leaseMs: 1 }), undefined, 'missing');
          assert.equal(await store.claimAction('nope', 'c1', { owner: 'w:1', leaseMs: 1 }), undefined, 'no run');
          assert.deepEqual(await store.getActionIO('r1', 'c1'), { inputs: '[1]', outputs: null }, 'IO kept');
        }));

      it('takeovers count the claims of an action that was never given back; releaseAction gives a claim back', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          store.putAction(makeAction('r1', 'c1'));
          store.putAction(makeAction('r1', 'c2', { phase: 'failed', attempts: 1, startedAt: 1, endedAt: 2 }));
          const claim = (owner: string) => store.claimAction('r1', 'c1', { owner, leaseMs: 5_000 });
          const first = await claim('w:1');
          assert.equal(first?.takeovers, 0, 'a first claim');
          const second = await claim('w:2');
          assert.deepEqual([second?.takeovers, second?.lostOwners], [1, ['w:1']]);
          assert.equal(await store.releaseAction('r1', 'c1', first?.epoch ?? 0), false, 'an older epoch is refused');
          assert.equal(await store.releaseAction('r1', 'c1', second?.epoch ?? 0), true, 'the holder gives it back');
          const third = await claim('w:3');
          assert.deepEqual([third?.takeovers, third?.lostOwners], [1, ['w:1']], 'a hand-back is not a takeover');
          const fourth = await claim('w:4');
          assert.deepEqual([fourth?.takeovers, fourth?.lostOwners], [2, ['w:1', 'w:3']]);
          assert.equal(await store.releaseAction('r1', 'c2', 0), false, 'a terminal action is not released');
          assert.equal(await store.releaseAction('r1', 'nope', 0), false, 'nor a missing one');
        }));

      it('two claims of the same action race: exactly one gets each epoch, and only the newest writes land', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          store.putAction(makeAction('r1', 'c1'));
          const [x, y] = await Promise.all([
            store.claimAction('r1', 'c1', { owner: 'w:x', leaseMs: 5_000 }),
            store.claimAction('r1', 'c1', { owner: 'w:y', leaseMs: 5_000 }),
          ]);
          assert.deepEqual([x?.epoch, y?.epoch].sort(), [2, 3]);
          const [older, newer] = (x?.epoch ?? 0) < (y?.epoch ?? 0) ? [x, y] : [y, x];
          store.putAction(
            makeAction('r1', 'c1', { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 5, epoch: older?.epoch }),
          );
          await store.flush();
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'running', 'the fenced claim changes nothing');
          store.putAction(
            makeAction('r1', 'c1', { phase: 'failed', attempts: 1, startedAt: 1, endedAt: 6, epoch: newer?.epoch }),
          );
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'failed');
        }));

      it('many claims at once, some of one action: each distinct action is claimed once, repeats in order', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          const names = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
          for (const name of names) store.putAction(makeAction('r1', name, { inputs: `["${name}"]` }));
          store.putAction(makeAction('r1', 'done', { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 2 }));
          // Made in one turn: a store that batches claims (Postgres) sends most of them in one statement.
          const calls = [...names, 'c1', 'done', 'c1', 'c1'].map((name, i) =>
            store.claimAction('r1', name, { owner: `w:${i}`, leaseMs: 5_000 }),
          );
          const claimed = await Promise.all(calls);
          assert.deepEqual(
            claimed.slice(1, 6).map((c) => [c?.name, c?.epoch, c?.inputs]),
            names.slice(1).map((name) => [name, 2, `["${name}"]`]),
            'each other action claimed once, with its own inputs',
          );
          assert.equal(claimed[7], undefined, 'a terminal action among them is not claimed');
          assert.deepEqual(
            [claimed[0], claimed[6], claimed[8], claimed[9]].map((c) => c?.epoch).sort(),
            [2, 3, 4, 5],
            'every claim of c1 succeeds, each raising the epoch once',
          );
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'running');
        }));

      it("a stale epoch's action write is refused: the newer record stays", () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          const ended = (epoch: number, outputs: string): ActionWrite =>
            makeAction('r1', 'c1', { phase: 'succeeded', attempts: 1, startedAt: 1, endedAt: 9, epoch, outputs });
          store.putAction(makeAction('r1', 'c1', { phase: 'running', attempts: 1, startedAt: 1, epoch: 4 }));
          await store.flush();
          store.putAction(ended(3, '1'));
          await store.flush();
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'running');
          assert.deepEqual(await store.getActionIO('r1', 'c1'), { inputs: null, outputs: null });
          store.putAction(makeAction('r1', 'c1', { phase: 'queued', epoch: 1 })); // the run epoch: older still
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'running');
          store.putAction(ended(4, '2'));
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'succeeded', 'the same epoch lands');
          assert.deepEqual(await store.getActionIO('r1', 'c1'), { inputs: null, outputs: '2' });
        }));

      it('a write never reopens a terminal action at the same epoch; a newer epoch may (a recovery)', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          const failed = makeAction('r1', 'c1', {
            phase: 'failed',
            attempts: 1,
            startedAt: 1,
            endedAt: 2,
            error: ERROR,
          });
          store.putAction(failed);
          await store.flush();
          store.putAction(makeAction('r1', 'c1', { phase: 'running', attempts: 2, startedAt: 3 }));
          await store.flush();
          assert.deepEqual(await store.getAction('r1', 'c1'), withoutIO(failed), 'same epoch: not reopened');
          store.putAction(makeAction('r1', 'c1', { phase: 'queued', epoch: 1 }));
          assert.deepEqual(await store.getAction('r1', 'c1'), withoutIO(failed), 'explicit same epoch: not reopened');
          // A recovery claims the run (epoch 2) and runs the failed child again.
          await store.claimRun('r1', 1, { owner: 'h:2', leaseMs: 5_000 });
          store.putAction(makeAction('r1', 'c1', { phase: 'running', attempts: 1, startedAt: 4 }));
          assert.equal((await store.getAction('r1', 'c1'))?.phase, 'running', 'the newer epoch reopens it');
        }));

      it('two instances: a write fenced by a claim on the action is refused', () =>
        withTwoStores(async (a, b) => {
          await a.createRun(makeRun('r1', { phase: 'running' }));
          a.putAction(makeAction('r1', 'c1', { phase: 'running', attempts: 1, startedAt: 1 }));
          await a.flush();
          const claimed = await b.claimAction('r1', 'c1', { owner: 'w:b', leaseMs: 5_000 });
          assert.equal(claimed?.epoch, 2);
          // a still believes it runs c1, at its run epoch (1): its write does not land.
          a.putAction(makeAction('r1', 'c1', { phase: 'failed', attempts: 1, startedAt: 1, endedAt: 3, error: ERROR }));
          await a.flush();
          assert.equal((await b.getAction('r1', 'c1'))?.phase, 'running');
          b.putAction(
            makeAction('r1', 'c1', {
              phase: 'succeeded',
              attempts: 1,
              startedAt: 1,
              endedAt: 4,
              epoch: claimed?.epoch,
            }),
          );
          await b.flush();
          assert.equal((await a.getAction('r1', 'c1'))?.phase, 'succeeded');
          assert.equal(await a.claimAction('r1', 'c1', { owner: 'w:a', leaseMs: 5_000 }), undefined, 'delivered twice');
        }));

      it('two instances: racing claims of one action, exactly one wins each epoch', () =>
        withTwoStores(async (a, b) => {
          await a.createRun(makeRun('r1'));
          a.putAction(makeAction('r1', 'c1'));
          await a.flush();
          const claims = await Promise.all([
            a.claimAction('r1', 'c1', { owner: 'w:a', leaseMs: 5_000 }),
            b.claimAction('r1', 'c1', { owner: 'w:b', leaseMs: 5_000 }),
          ]);
          assert.deepEqual(claims.map((c) => c?.epoch).sort(), [2, 3]);
          const last = claims.find((c) => c?.epoch === 3);
          const stored = await b.claimAction('r1', 'c1', { owner: 'w:c', leaseMs: 5_000 });
          assert.equal(stored?.epoch, 4, 'the epoch was raised once per claim');
          assert.ok(last !== undefined);
        }));

      it('endedAmong returns exactly the ended ones among the names, in creation order', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          const phases = ['queued', 'running', 'succeeded', 'failed', 'aborted', 'timed_out'] as const;
          phases.forEach((phase, i) => store.putAction(makeAction('r1', `c${i}`, { phase })));
          store.putAction(makeAction('r2', 'c2', { phase: 'succeeded' }));
          assert.deepEqual(await store.endedAmong('r1', []), []);
          const ended = await store.endedAmong('r1', ['c5', 'c0', 'c1', 'c2', 'c3', 'missing']);
          assert.deepEqual(
            ended.map((a) => [a.name, a.phase]),
            [
              ['c2', 'succeeded'],
              ['c3', 'failed'],
              ['c5', 'timed_out'],
            ],
          );
          assert.deepEqual(ended[0], withoutIO(makeAction('r1', 'c2', { phase: 'succeeded' })));
          assert.deepEqual(await store.endedAmong('nope', ['c2']), []);
          // With outputs: those of the succeeded ones, null for the others.
          store.putAction(makeAction('r1', 'o1', { phase: 'succeeded', outputs: '"out"' }));
          store.putAction(makeAction('r1', 'o2', { phase: 'failed' }));
          const withOutputs = await store.endedAmong('r1', ['o1', 'o2'], { withOutputs: true });
          assert.deepEqual(
            withOutputs.map((a) => [a.name, a.outputs]),
            [
              ['o1', '"out"'],
              ['o2', null],
            ],
          );
          assert.deepEqual(withOutputs[0], {
            ...withoutIO(makeAction('r1', 'o1', { phase: 'succeeded' })),
            outputs: '"out"',
          });
          // Many names, one call.
          for (let i = 0; i < 3_000; i++)
            store.putAction(makeAction('r1', `m${i}`, { phase: i % 3 === 0 ? 'succeeded' : 'running' }));
          const names = Array.from({ length: 3_000 }, (_, i) => `m${i}`);
          assert.equal((await store.endedAmong('r1', names)).length, 1_000);
        }));
    });

    describe('attempts', () => {
      it('putAttempt replaces an attempt by number; listAttempts is by attempt number', () =>
        withStore(async (store) => {
          store.putAttempt(makeAttempt('r1', 'a1', 2, { phase: 'running', startedAt: 20 }));
          store.putAttempt(makeAttempt('r1', 'a1', 1, { phase: 'running', startedAt: 10 }));
          store.putAttempt(makeAttempt('r1', 'a1', 1, { phase: 'failed', startedAt: 10, endedAt: 15, error: ERROR }));
          store.putAttempt(makeAttempt('r1', 'a2', 1));
          store.putAttempt(makeAttempt('r2', 'a1', 1));
          assert.deepEqual(await store.listAttempts('r1', 'a1'), [
            makeAttempt('r1', 'a1', 1, { phase: 'failed', startedAt: 10, endedAt: 15, error: ERROR }),
            makeAttempt('r1', 'a1', 2, { phase: 'running', startedAt: 20 }),
          ]);
          await store.flush();
          store.putAttempt(makeAttempt('r1', 'a1', 2, { phase: 'succeeded', startedAt: 20, endedAt: 25 }));
          store.putAttempt(makeAttempt('r1', 'a1', 3, { phase: 'queued', startedAt: 30 }));
          assert.deepEqual(
            (await store.listAttempts('r1', 'a1')).map((a) => [a.attempt, a.phase]),
            [
              [1, 'failed'],
              [2, 'succeeded'],
              [3, 'queued'],
            ],
          );
          assert.deepEqual(await store.listAttempts('r1', 'nope'), []);
        }));

      it('listAttempts of an action without attempt records lists its first attempt from the action record', () =>
        withStore(async (store) => {
          store.putAction(makeAction('r1', 'a1', { phase: 'running', attempts: 1, startedAt: 10 }));
          assert.deepEqual(await store.listAttempts('r1', 'a1'), [makeAttempt('r1', 'a1', 1, { startedAt: 10 })]);
          store.putAction(makeAction('r1', 'a1', { phase: 'succeeded', attempts: 1, startedAt: 10, endedAt: 12 }));
          store.putAction(
            makeAction('r1', 'a2', { phase: 'failed', attempts: 1, startedAt: 20, endedAt: 21, error: ERROR }),
          );
          assert.deepEqual(await store.listAttempts('r1', 'a1'), [
            makeAttempt('r1', 'a1', 1, { phase: 'succeeded', startedAt: 10, endedAt: 12 }),
          ]);
          assert.deepEqual(await store.listAttempts('r1', 'a2'), [
            makeAttempt('r1', 'a2', 1, { phase: 'failed', startedAt: 20, endedAt: 21, error: ERROR }),
          ]);
          // Never started (queued, or answered from the cache): no attempt.
          store.putAction(makeAction('r1', 'a3'));
          store.putAction(makeAction('r1', 'a4', { phase: 'succeeded', cacheHit: true, startedAt: 5, endedAt: 5 }));
          assert.deepEqual(await store.listAttempts('r1', 'a3'), []);
          assert.deepEqual(await store.listAttempts('r1', 'a4'), []);
          // Once an action has attempt records, only those are listed.
          store.putAttempt(makeAttempt('r1', 'a1', 1, { phase: 'failed', startedAt: 10, endedAt: 11, error: ERROR }));
          store.putAttempt(makeAttempt('r1', 'a1', 2, { phase: 'running', startedAt: 12 }));
          store.putAction(makeAction('r1', 'a1', { phase: 'running', attempts: 2, startedAt: 10 }));
          assert.deepEqual(
            (await store.listAttempts('r1', 'a1')).map((a) => [a.attempt, a.phase]),
            [
              [1, 'failed'],
              [2, 'running'],
            ],
          );
        }));

      it('attempts carry the worker that ran them: recorded ones, and the first one implied by the action', () =>
        withStore(async (store) => {
          store.putAttempt(makeAttempt('r1', 'a1', 1, { phase: 'failed', startedAt: 10, endedAt: 11, worker: 'h1:1' }));
          store.putAttempt(makeAttempt('r1', 'a1', 2, { phase: 'running', startedAt: 12, worker: 'h2:2' }));
          assert.deepEqual(
            (await store.listAttempts('r1', 'a1')).map((a) => [a.attempt, a.worker]),
            [
              [1, 'h1:1'],
              [2, 'h2:2'],
            ],
          );
          // The implied first attempt names the last worker written with the action; a write without one keeps it,
          // both while pending and once committed.
          store.putAction(makeAction('r1', 'a2', { phase: 'running', attempts: 1, startedAt: 10, worker: 'h3:3' }));
          store.putAction(makeAction('r1', 'a2', { phase: 'running', attempts: 1, startedAt: 10 }));
          assert.deepEqual(await store.listAttempts('r1', 'a2'), [
            makeAttempt('r1', 'a2', 1, { startedAt: 10, worker: 'h3:3' }),
          ]);
          await store.flush();
          store.putAction(makeAction('r1', 'a2', { phase: 'succeeded', attempts: 1, startedAt: 10, endedAt: 12 }));
          await store.flush();
          assert.deepEqual(await store.listAttempts('r1', 'a2'), [
            makeAttempt('r1', 'a2', 1, { phase: 'succeeded', startedAt: 10, endedAt: 12, worker: 'h3:3' }),
          ]);
          // A claim by another worker that writes its own name replaces it; none written: null.
          store.putAction(makeAction('r1', 'a3', { phase: 'running', attempts: 1, startedAt: 5, worker: 'h4:4' }));
          await store.flush();
          store.putAction(makeAction('r1', 'a3', { phase: 'running', attempts: 1, startedAt: 5, worker: 'h5:5' }));
          store.putAction(makeAction('r1', 'a4', { phase: 'running', attempts: 1, startedAt: 5 }));
          assert.equal((await store.listAttempts('r1', 'a3'))[0]?.worker, 'h5:5');
          assert.equal((await store.listAttempts('r1', 'a4'))[0]?.worker, null);
        }));

      it('putAction and putAttempt take a snapshot: changing the object afterwards changes nothing', () =>
        withStore(async (store) => {
          const action: Mutable<ActionWrite> = makeAction('r1', 'a1', { inputs: '[1]' });
          store.putAction(action);
          action.phase = 'failed';
          action.name = 'other';
          const attempt: Mutable<AttemptRecord> = makeAttempt('r1', 'a1', 1);
          store.putAttempt(attempt);
          attempt.phase = 'failed';
          assert.deepEqual(await store.getAction('r1', 'a1'), withoutIO(makeAction('r1', 'a1')));
          assert.equal(await store.getAction('r1', 'other'), undefined);
          assert.equal((await store.listAttempts('r1', 'a1'))[0]?.phase, 'running');
        }));
    });

    describe('logs', () => {
      it('appendLogs keeps the order written, per run and per action', () =>
        withStore(async (store) => {
          const line = (actionName: string, n: number, stream: LogLine['stream'] = 'stdout'): LogLine => ({
            runName: 'r1',
            actionName,
            attempt: 1,
            at: 1_000 - n, // out of time order on purpose: the order written wins
            stream,
            line: `${actionName} line ${n}`,
          });
          store.appendLogs([line('a1', 1), line('a2', 2, 'stderr')]);
          store.appendLogs([line('a1', 3)]);
          await store.flush();
          store.appendLogs([line('a2', 4), line('a1', 5)]);
          store.appendLogs([]);
          store.appendLogs([{ ...line('a1', 6), runName: 'r2' }]);
          assert.deepEqual(await store.listLogs('r1'), [
            line('a1', 1),
            line('a2', 2, 'stderr'),
            line('a1', 3),
            line('a2', 4),
            line('a1', 5),
          ]);
          assert.deepEqual(await store.listLogs('r1', 'a1'), [line('a1', 1), line('a1', 3), line('a1', 5)]);
          assert.deepEqual(await store.listLogs('r1', 'none'), []);
          assert.deepEqual(await store.listLogs('none'), []);
          // tail: the last lines, still in the order written; countLogs for how many were left out.
          assert.deepEqual(await store.listLogs('r1', 'a1', { tail: 2 }), [line('a1', 3), line('a1', 5)]);
          assert.deepEqual(await store.listLogs('r1', undefined, { tail: 2 }), [line('a2', 4), line('a1', 5)]);
          assert.deepEqual(await store.listLogs('r1', 'a1', { tail: 10 }), [
            line('a1', 1),
            line('a1', 3),
            line('a1', 5),
          ]);
          assert.deepEqual(await store.listLogs('r1', 'a1', { tail: 0 }), []);
          await assert.rejects(store.listLogs('r1', 'a1', { tail: -1 }), RangeError);
          assert.equal(await store.countLogs('r1'), 5);
          assert.equal(await store.countLogs('r1', 'a2'), 2);
          assert.equal(await store.countLogs('none'), 0);
        }));

      it("listRunLogs pages a run after a cursor, in write order, with each action's short name and item index", () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1'));
          store.putAction(makeAction('r1', 'a1', { shortName: 'fetch', itemIndex: 4 }));
          const line = (runName: string, actionName: string, n: number): LogLine => ({
            runName,
            actionName,
            attempt: 1,
            at: 1_000 - n, // out of time order on purpose: the order written wins
            stream: n % 2 === 0 ? 'stderr' : 'stdout',
            line: `${actionName} line ${n}`,
          });
          store.appendLogs([line('r1', 'a1', 1), line('r2', 'a1', 2), line('r1', 'gone', 3)]);
          await store.flush();
          store.appendLogs([line('r1', 'a1', 4), line('r2', 'a1', 5), line('r1', 'a1', 6)]);
          const all = await store.listRunLogs('r1');
          assert.deepEqual(
            all.map(({ seq: _seq, ...rest }) => rest),
            [
              { ...line('r1', 'a1', 1), shortName: 'fetch', itemIndex: 4 },
              { ...line('r1', 'gone', 3), shortName: null, itemIndex: null }, // an action not recorded
              { ...line('r1', 'a1', 4), shortName: 'fetch', itemIndex: 4 },
              { ...line('r1', 'a1', 6), shortName: 'fetch', itemIndex: 4 },
            ],
          );
          const seqs = all.map((l) => l.seq);
          assert.ok(
            seqs.every((q, i) => Number.isSafeInteger(q) && q > (seqs[i - 1] ?? 0)),
            `rising: ${seqs.join()}`,
          );
          // Pages: after each cursor, never a line twice, none left out.
          const first = await store.listRunLogs('r1', { limit: 2 });
          assert.deepEqual(first, all.slice(0, 2));
          const second = await store.listRunLogs('r1', { afterSeq: first[1]?.seq ?? -1, limit: 2 });
          assert.deepEqual(second, all.slice(2));
          assert.deepEqual(await store.listRunLogs('r1', { afterSeq: all[3]?.seq ?? -1 }), []);
          // A line written after the last page comes next.
          store.appendLogs([line('r1', 'a1', 7)]);
          const next = await store.listRunLogs('r1', { afterSeq: all[3]?.seq ?? -1 });
          assert.deepEqual(
            next.map((l) => l.line),
            ['a1 line 7'],
          );
          // Backwards from the end: the last lines before a cursor, still in write order.
          const withSeven = await store.listRunLogs('r1');
          const end = Number.MAX_SAFE_INTEGER;
          assert.deepEqual(await store.listRunLogs('r1', { beforeSeq: end, limit: 2 }), withSeven.slice(3));
          const older = await store.listRunLogs('r1', { beforeSeq: withSeven[3]?.seq ?? -1, limit: 2 });
          assert.deepEqual(older, withSeven.slice(1, 3));
          assert.deepEqual(
            await store.listRunLogs('r1', { beforeSeq: older[0]?.seq ?? -1, limit: 10 }),
            withSeven.slice(0, 1),
          );
          assert.deepEqual(await store.listRunLogs('r1', { beforeSeq: withSeven[0]?.seq ?? -1 }), []);
          // Between two cursors: the last `limit` of the lines in between.
          const between = { afterSeq: withSeven[0]?.seq ?? -1, beforeSeq: withSeven[4]?.seq ?? -1, limit: 2 };
          assert.deepEqual(await store.listRunLogs('r1', between), withSeven.slice(2, 4));
          assert.equal((await store.listRunLogs('r2', { beforeSeq: end })).length, 2);
          assert.deepEqual(await store.listRunLogs('none', { beforeSeq: end }), []);
          await assert.rejects(store.listRunLogs('r1', { beforeSeq: 1.5 }), /beforeSeq must be a non-negative integer/);
          assert.equal((await store.listRunLogs('r2')).length, 2);
          assert.deepEqual(await store.listRunLogs('none'), []);
          await assert.rejects(store.listRunLogs('r1', { afterSeq: -1 }), /afterSeq must be a non-negative integer/);
          await assert.rejects(store.listRunLogs('r1', { limit: 0 }), /limit must be an integer from 1 to 10000/);
          await assert.rejects(store.listRunLogs('r1', { limit: 10_001 }), RangeError);
        }));

      it('listRunLogs: a poller of two writers misses no line', () =>
        withTwoStores(async (a, b) => {
          await a.createRun(makeRun('r1'));
          const seen: string[] = [];
          let cursor = 0;
          const poll = async (): Promise<void> => {
            for (;;) {
              const page = await b.listRunLogs('r1', { afterSeq: cursor, limit: 7 });
              if (page.length === 0) return;
              seen.push(...page.map((l) => l.line));
              cursor = page[page.length - 1]?.seq ?? cursor;
            }
          };
          const lineOf = (actionName: string, n: number): LogLine => ({
            runName: 'r1',
            actionName,
            attempt: 1,
            at: n,
            stream: 'stdout',
            line: `${actionName} ${n}`,
          });
          for (let round = 0; round < 10; round++) {
            a.appendLogs([lineOf('x', round * 2), lineOf('x', round * 2 + 1)]);
            b.appendLogs([lineOf('y', round)]);
            await Promise.all([a.flush(), b.flush(), poll()]);
          }
          await poll();
          assert.equal(seen.length, 30);
          assert.equal(new Set(seen).size, 30);
        }));
    });

    describe('cache', () => {
      it('putCacheEntry / getCacheEntry, replacing by key', () =>
        withStore(async (store) => {
          const entry: CacheEntry = {
            key: 'k1',
            taskName: 'env.square',
            outputs: '4',
            createdAt: 100,
            runName: 'r1',
            actionName: 'a1',
          };
          store.putCacheEntry(entry);
          assert.deepEqual(await store.getCacheEntry('k1'), entry);
          assert.equal(await store.getCacheEntry('k2'), undefined);
          await store.flush();
          store.putCacheEntry({ ...entry, outputs: '5', runName: 'r2' });
          assert.deepEqual(await store.getCacheEntry('k1'), { ...entry, outputs: '5', runName: 'r2' });
        }));

      it('clearCache deletes every entry, pending ones too, and says how many', () =>
        withStore(async (store) => {
          assert.equal(await store.clearCache(), 0);
          for (const key of ['a', 'b']) store.putCacheEntry(cacheEntry(key));
          await store.flush();
          store.putCacheEntry(cacheEntry('c'));
          store.putCacheEntry(cacheEntry('a'));
          assert.equal(await store.clearCache(), 3);
          assert.equal(await store.getCacheEntry('a'), undefined);
          assert.equal(await store.getCacheEntry('c'), undefined);
          assert.equal(await store.clearCache(), 0);
          store.putCacheEntry(cacheEntry('d'));
          assert.equal((await store.getCacheEntry('d'))?.key, 'd');
        }));
    });

    describe('flush and close', () => {
      it('flush resolves, with or without pending writes', () =>
        withStore(async (store) => {
          await store.flush();
          store.putAction(makeAction('r1', 'a1'));
          store.putAttempt(makeAttempt('r1', 'a1', 1));
          store.appendLogs([{ runName: 'r1', actionName: 'a1', attempt: 1, at: 1, stream: 'stdout', line: 'x' }]);
          store.putCacheEntry(cacheEntry('k'));
          await store.flush();
          await store.flush();
          assert.equal((await store.listActions('r1')).length, 1);
        }));

      it('reads do not share state with the store', () =>
        withStore(async (store) => {
          await store.createRun(makeRun('r1', { labels: { a: '1' } }));
          const run = await store.getRun('r1');
          (run?.labels as Record<string, string>)['a'] = 'changed';
          assert.deepEqual((await store.getRun('r1'))?.labels, { a: '1' });
        }));

      it('close makes the store unusable; closing twice is fine', () =>
        withStore(async (store) => {
          store.putAction(makeAction('r1', 'a1'));
          await store.close();
          await store.close();
          await assert.rejects(store.getRun('r1'), StoreClosedError);
          await assert.rejects(store.listActions('r1'), StoreClosedError);
          await assert.rejects(store.flush(), StoreClosedError);
          await assert.rejects(store.createRun(makeRun('r2')), StoreClosedError);
          assert.throws(() => store.putAction(makeAction('r1', 'a2')), StoreClosedError);
          assert.throws(() => store.updateRun('r1', { phase: 'failed' }), StoreClosedError);
        }));
    });
  });
}

/** A stored error as the runtime writes it (no `undefined` fields: they do not survive JSON). */
export const ERROR: ActionError = {
  code: 'ValueError',
  kind: 'user',
  message: 'bad value 3',
  stack: 'ValueError: bad value 3\n    at square (wf.ts:3:9)',
  actionName: 'a1',
};

/** A run in phase `queued`, created at 1 000 by default. */
export function makeRun(name: string, overrides: Partial<RunWrite> = {}): RunWrite {
  return {
    name,
    taskName: 'env.main',
    phase: 'queued',
    mode: 'local',
    createdAt: 1_000,
    startedAt: null,
    endedAt: null,
    error: null,
    labels: {},
    options: {},
    module: null,
    owner: null,
    epoch: 1,
    heartbeatAt: null,
    leaseExpiresAt: null,
    inputs: '[[1,2,3]]',
    ...overrides,
  };
}

/** A queued child of `a0`, not in a group, by default. */
export function makeAction(runName: string, name: string, overrides: Partial<ActionWrite> = {}): ActionWrite {
  return {
    runName,
    name,
    parentName: 'a0',
    taskName: 'env.square',
    shortName: 'square',
    group: null,
    itemIndex: null,
    phase: 'queued',
    cacheHit: false,
    attempts: 0,
    startedAt: null,
    endedAt: null,
    error: null,
    ...overrides,
  };
}

/** A running attempt by default. */
export function makeAttempt(
  runName: string,
  actionName: string,
  attempt: number,
  overrides: Partial<AttemptRecord> = {},
): AttemptRecord {
  return {
    runName,
    actionName,
    attempt,
    phase: 'running',
    startedAt: 1,
    endedAt: null,
    error: null,
    worker: null,
    ...overrides,
  };
}

function cacheEntry(key: string): CacheEntry {
  return { key, taskName: 'env.t', outputs: '1', createdAt: 1, runName: 'r1', actionName: 'a1' };
}

function withoutInputs(run: RunWrite): Omit<RunWrite, 'inputs'> {
  const { inputs: _inputs, ...record } = run;
  return record;
}

function withoutIO(action: ActionWrite): Omit<ActionWrite, 'inputs' | 'inputsHash' | 'outputs'> {
  const { inputs: _inputs, inputsHash: _hash, outputs: _outputs, ...record } = action;
  return record;
}

function pick(
  run:
    | { phase: string; startedAt: number | null; endedAt: number | null; error: unknown; owner: string | null }
    | undefined,
) {
  assert.ok(run !== undefined, 'the run exists');
  return { phase: run.phase, startedAt: run.startedAt, endedAt: run.endedAt, error: run.error, owner: run.owner };
}
