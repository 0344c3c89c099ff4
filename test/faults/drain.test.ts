/**
 * Fault suite, drain (issue 12, item 7): SIGTERM on a worker hands its waiting parent back to the queue at once,
 * while its busy leaf gets the grace to finish.
 *
 * Worker A (concurrency 1, a grace and locks of 120 s, so that neither a grace nor a lock timeout can explain a
 * quick takeover) holds the parent (waiting on three children) and runs leaf 0 behind a gate the test holds shut.
 * Worker B runs leaves 1 and 2. Then A gets SIGTERM: with the gate still shut, B must take the parent over (a
 * wait bounded by the test's deadline, far below the grace; no timed assertion). Then the gate opens, leaf 0
 * ends on A within its grace, A exits 0, and the parent on B collects it (re-attached, not run again).
 *
 * (A job fetched with no slot for it is handed back at once too, but a worker's blocking fetch waits for room
 * first, so that state only arises in a race; the engine tests cover the gate.)
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import * as flyte from '../../src/index.js';
import { REPO, tempDir } from '../support/cli.js';
import {
  auditRun,
  executionLogPath,
  readExecutions,
  repeated,
  startedAfterEnd,
  untilLogged,
} from '../support/faults.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from '../support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from '../support/redis.js';
import { startWorker } from '../support/workers.js';
import type * as DrainTasks from '../fixtures/faults/drain.js';

const FIXTURE = join(REPO, 'test', 'fixtures', 'faults', 'drain.ts');
const skip = (await postgresSkip()) || (await redisSkip());

describe('fault suite: drain', { skip, timeout: 120_000 }, () => {
  const schema = freshSchema();
  const prefix = `flyte_test_faults_drain_${process.pid}`;

  after(async () => {
    await flyte.shutdown();
    await dropSchema(schema);
    await deletePrefix(prefix);
  });

  it('SIGTERM hands a waiting parent back at once; the busy leaf finishes in its grace', async (t: TestContext) => {
    const store = urlWithSchema(schema);
    const engine = urlWithPrefix(prefix);
    const tasks = (await import(FIXTURE)) as typeof DrainTasks;
    flyte.init({ root: tempDir(), store, engine, echoLogs: false });
    const log = executionLogPath();
    const gateDir = tempDir('flyte-drain-gate-');
    const common = { modules: [FIXTURE], store, engine, lockMs: 120_000 };
    const a = await startWorker({
      ...common,
      concurrency: 1,
      grace: 120_000,
      env: { FLYTE_FAULT_LOG: log, FLYTE_FAULT_GATE: gateDir },
    });
    const open = (): void => writeFileSync(join(gateDir, 'open'), '');
    let b: Awaited<ReturnType<typeof startWorker>> | undefined;
    try {
      const run = await flyte.run(tasks.drainParent, 3);
      await untilLogged(log, (e) => e.some((x) => x.event === 'start' && x.key === 'leaf-0'));
      // A holds two jobs (the parent, waiting, and leaf 0, busy); its blocking fetch waits for room, so leaves 1
      // and 2 wait in the queue, for B.
      b = await startWorker({ ...common, concurrency: 4, env: { FLYTE_FAULT_LOG: log } });
      const bPid = b.pid;
      await untilLogged(log, (e) => e.filter((x) => x.event === 'end' && x.pid === bPid).length === 2);
      const termAt = Date.now();
      a.child.kill('SIGTERM');
      const handedBack = await untilLogged(
        log,
        (e) => e.some((x) => x.event === 'start' && x.key === 'drainParent' && x.pid === bPid),
        60_000,
      );
      const takenOverAt = Date.now();
      assert.ok(
        !handedBack.some((x) => x.event === 'end' && x.key === 'leaf-0'),
        'leaf 0 is still running on A behind its gate',
      );
      open();
      assert.equal(await a.exited(), 0, a.output());
      const aExitedAt = Date.now();
      assert.equal(await run.outputs(), 1 + 2 + 3);
      const audit = await auditRun(run);
      assert.deepEqual(audit.phases, { succeeded: 4 }, 'every action succeeded, none lost');
      const executions = readExecutions(log);
      assert.deepEqual(repeated(executions, 'end'), [], '0 duplicated completions');
      assert.deepEqual(startedAfterEnd(executions), [], '0 re-executions of bodies that had returned');
      const leaf0 = executions.filter((x) => x.key === 'leaf-0');
      assert.ok(
        leaf0.every((x) => x.pid === a.pid),
        `leaf 0 ran on A only (its grace): ${JSON.stringify(leaf0)}`,
      );
      t.diagnostic(
        `SIGTERM to the waiting parent taken over on B: ${takenOverAt - termAt} ms ` +
          `(grace and locks 120 000 ms); A exited ${aExitedAt - takenOverAt} ms after its gate opened`,
      );
    } finally {
      open();
      await a.stop('SIGTERM');
      if (b !== undefined) assert.equal(await b.stop('SIGTERM'), 0, b.output());
    }
  });
});
