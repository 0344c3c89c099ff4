/**
 * The CLI on remote runs, as a user drives it: `flyte run --remote` submits to `flyte worker` processes and
 * follows the run from the store (plain lines, `--json`, exit codes, Ctrl-C), and `flyte get`, `flyte abort`,
 * `flyte rerun` and `flyte ui` work on what the workers recorded, including which worker ran each attempt.
 * Real Redis, real Postgres, real worker processes; the test's own schema and key prefix, removed afterwards.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  cliEnv,
  collect,
  ensureBuilt,
  exits,
  parseJson,
  REPO,
  runCli,
  spawnCli,
  tempDir,
  waitForOutput,
  type CliResult,
} from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from './support/redis.js';
import { Terminals, tmuxSkip } from './support/terminal.js';
import { startWorker, stopWorkers, type WorkerProcess } from './support/workers.js';

const TASKS = join(REPO, 'test', 'fixtures', 'remote', 'cli-tasks.ts');

const skip = (await postgresSkip()) || (await redisSkip());

interface RunJson {
  run: string;
  phase: string;
  outputs?: unknown;
  error?: { message: string; actionName: string } | null;
  counts: { total: number; succeeded: number };
}

describe('flyte run --remote, get, abort, rerun and ui on remote runs', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_cli_remote_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  const root = tempDir();
  let workers: WorkerProcess[] = [];
  let workerNames: string[] = [];
  /** A succeeded remote run of sumOfSquares([1, 2, 3]). */
  let done = '';

  /** `flyte ARGS` on the test's store (`FLYTE_STORE`) and, unless `withEngine` is false, engine (`FLYTE_ENGINE`). */
  const cli = (args: readonly string[], withEngine = true): Promise<CliResult> =>
    runCli(args, {
      root,
      env: { FLYTE_STORE: store, FLYTE_ENGINE: withEngine ? engine : undefined },
      timeoutMs: 90_000,
    });
  const spawnRemote = (args: readonly string[]) =>
    spawnCli(['run', '--remote', '--store', store, '--engine', engine, ...args], {
      root,
      env: { FLYTE_ENGINE: undefined },
    });

  before(async () => {
    ensureBuilt();
    // The built bin, as `npx flyte worker` runs it (the other remote tests run the sources under tsx).
    workers = await Promise.all(
      [1, 2].map(() => startWorker({ modules: [TASKS], store, engine, concurrency: 2, fromBin: true })),
    );
    workerNames = workers.map((w) => `${os.hostname()}:${w.pid}`);
  });

  after(async () => {
    const drained = await stopWorkers(workers);
    await dropSchema(schema);
    await deletePrefix(prefix);
    drained();
  });

  it('flyte run --remote --json prints the outputs and exits 0; the run is remote', async () => {
    const r = await cli(['run', '--remote', '--json', TASKS, 'sumOfSquares', '--items', '[1,2,3]']);
    exits(r, 0);
    const json = parseJson<RunJson>(r);
    assert.equal(json.phase, 'succeeded');
    assert.equal(json.outputs, 14);
    assert.equal(json.counts.total, 4);
    assert.equal(json.counts.succeeded, 4);
    done = json.run;
    const record = parseJson<{ run: { mode: string } }>(await cli(['get', 'run', done, '-o', 'json'], false));
    assert.equal(record.run.mode, 'remote');
  });

  it('plain output: the run name, the progress from the store, the worker logs and the outputs', async () => {
    const r = await cli(['run', '--remote', TASKS, 'sumOfSquares', '--items', '[4,5]']);
    exits(r, 0);
    assert.match(r.stdout, /^run \S+$/m);
    assert.match(r.stdout, /^summing 2 squares$/m, 'the task body logged this on a worker');
    assert.match(r.stdout, /square.*2\/2|2 succeeded|✓ 2/);
    assert.match(r.stdout, /^outputs: 41$/m);
  });

  it('a failing remote run exits 1 with the error', async () => {
    const plain = await cli(['run', '--remote', TASKS, 'explode', '--x', '7']);
    exits(plain, 1);
    assert.match(plain.stderr, /failed/);
    assert.match(plain.stderr, /cannot handle 7/);
    const json = await cli(['run', '--remote', '--json', TASKS, 'explode', '--x', '8']);
    exits(json, 1);
    const body = parseJson<RunJson>(json);
    assert.equal(body.phase, 'failed');
    assert.match(body.error?.message ?? '', /cannot handle 8/);
  });

  it('--remote without an engine is a usage error saying what is missing', async () => {
    const r = await cli(['run', '--remote', TASKS, 'square', '--x', '2'], false);
    exits(r, 2);
    assert.match(r.stderr, /--remote needs a distributed engine.*--engine redis:\/\//);
  });

  it('flyte get run / action / io / logs show what the workers recorded, with the worker of each attempt', async () => {
    const run = await cli(['get', 'run', done], false);
    exits(run, 0);
    assert.match(run.stdout, /^phase +succeeded$/m);
    assert.match(run.stdout, /sumOfSquares/);
    assert.match(run.stdout, /square/);
    const action = await cli(['get', 'action', done, 'a0', '-o', 'json'], false);
    exits(action, 0);
    const { attempts } = parseJson<{ attempts: { worker: string | null }[] }>(action);
    assert.equal(attempts.length, 1);
    assert.ok(
      workerNames.includes(attempts[0]?.worker ?? ''),
      `${attempts[0]?.worker} is one of ${workerNames.join(', ')}`,
    );
    const table = await cli(['get', 'action', done, 'a0'], false);
    assert.match(table.stdout, new RegExp(`^1 +succeeded .* (${workerNames.join('|')}) *$`, 'm'));
    const io = await cli(['get', 'io', done, '-o', 'json'], false);
    exits(io, 0);
    assert.deepEqual(parseJson<{ outputs: unknown }>(io).outputs, 14);
    const logs = await cli(['get', 'logs', done], false);
    exits(logs, 0);
    assert.match(logs.stdout, /summing 3 squares/);
  });

  it('the UI API names the worker of each attempt', async () => {
    const child = spawnCli(['ui', '--store', store, '--port', '0'], { root, env: { FLYTE_ENGINE: undefined } });
    const exited = collect(child);
    try {
      const [, address] = await waitForOutput(child, /(http:\/\/127\.0\.0\.1:\d+)/);
      const actions = (await (await fetch(`${address}/api/runs/${done}/actions?limit=100`)).json()) as {
        actions?: { name: string }[];
      };
      const names = (actions.actions ?? []).map((a) => a.name);
      assert.ok(names.length >= 1, JSON.stringify(actions));
      for (const name of ['a0', ...names.filter((n) => n !== 'a0')]) {
        const res = await fetch(`${address}/api/runs/${done}/actions/${name}`);
        assert.equal(res.status, 200);
        const detail = (await res.json()) as { attempts: { worker: string | null }[] };
        assert.equal(detail.attempts.length, 1, name);
        assert.ok(workerNames.includes(detail.attempts[0]?.worker ?? ''), `${name}: ${detail.attempts[0]?.worker}`);
      }
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });

  it('flyte abort run ends a running remote run aborted; its follower exits 1', async () => {
    const follower = spawnRemote([TASKS, 'sleeper']);
    const followed = collect(follower, 90_000);
    const [, name] = await waitForOutput(follower, /^run (\S+)$/m);
    await waitForOutput(follower, /^sleeping until aborted$/m);
    const r = await cli(['abort', 'run', name as string, '--reason', 'enough'], false);
    exits(r, 0);
    assert.match(r.stdout, /aborted/);
    const end = await followed;
    exits(end, 1);
    assert.match(end.stderr, /aborted/);
    const json = parseJson<{ run: { phase: string } }>(await cli(['get', 'run', name as string, '-o', 'json'], false));
    assert.equal(json.run.phase, 'aborted');
  });

  it('Ctrl-C in flyte run --remote aborts the remote run and exits 130', async () => {
    const follower = spawnRemote([TASKS, 'sleeper']);
    const followed = collect(follower, 90_000);
    const [, name] = await waitForOutput(follower, /^run (\S+)$/m);
    await waitForOutput(follower, /^sleeping until aborted$/m);
    follower.kill('SIGINT');
    const end = await followed;
    exits(end, 130);
    const json = parseJson<{ run: { phase: string } }>(await cli(['get', 'run', name as string, '-o', 'json'], false));
    assert.equal(json.run.phase, 'aborted');
  });

  it(
    'on a terminal, the live view of a remote run is fed from the store: the tree, the counts, the log tail',
    {
      skip: tmuxSkip(),
    },
    async () => {
      const terminals = new Terminals(() => cliEnv({ NO_COLOR: undefined, FLYTE_ROOT: root }));
      try {
        const gate = join(root, 'gate-live');
        const term = terminals.start([
          'run',
          '--remote',
          '--store',
          store,
          '--engine',
          engine,
          TASKS,
          'heldSquares',
          '--gate',
          gate,
          '--n',
          '5',
          '--free',
          '2',
        ]);
        // While the workers hold the map: one folded line with the 2 free items done and the others running (how
        // many at once is the workers' business: with a parent waiting on 2 × 2 slots, 2 or 3), with an ETA once
        // it has run a second, and the root's log line.
        const during = await term.waitFor(
          /remote_cli\.heldSquare_map +\S+ +2\/5 done {2}[123] running {2}0 failed {2}0 cached {2}ETA \d+s /,
          30_000,
        );
        assert.match(during, /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] run \S+ {2}running/m);
        await term.waitFor(/a0 │ holding 3 of 5 squares$/m);
        writeFileSync(gate, '');
        const screen = await term.waitFor(/\[exit \d+\]/, 30_000);
        assert.match(screen, /\[exit 0\]/);
        assert.match(
          screen,
          /^└─ ✓ remote_cli\.heldSquare_map +█{20} {2}5\/5 done {2}0 running {2}0 failed {2}0 cached {2}\S+$/m,
        );
        assert.match(screen, /^outputs: 55$/m);
      } finally {
        terminals.close();
      }
    },
  );

  it('flyte rerun of a remote run starts a new remote run; --recover is refused', async () => {
    const r = await cli(['rerun', done, '--json']);
    exits(r, 0);
    const json = parseJson<RunJson>(r);
    assert.notEqual(json.run, done);
    assert.equal(json.outputs, 14);
    const again = parseJson<{ run: { mode: string } }>(await cli(['get', 'run', json.run, '-o', 'json'], false));
    assert.equal(again.run.mode, 'remote');
    const recover = await cli(['rerun', done, '--recover']);
    exits(recover, 1);
    assert.match(recover.stderr, /remote run; recovering remote runs is not supported yet/);
  });
});
