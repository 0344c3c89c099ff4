/**
 * The CLI and the UI on a Postgres store: `--store postgres://…` / `FLYTE_STORE`, a server that cannot be reached
 * (one line, exit 2, no password), and runs another process recorded there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { ensureBuilt, parseJson, runCli, spawnCli, collect, waitForOutput, type CliResult } from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';

const skip = await postgresSkip();

const env = new flyte.TaskEnvironment({ name: 'cli_pg' });
const square = env.task(async function square(x: number) {
  return x * x;
});

before(() => ensureBuilt());

function oneLine(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr.trimEnd(), pattern);
  assert.ok(!r.stderr.includes('s3cret'), r.stderr);
}

describe('flyte on a Postgres store that cannot be reached', () => {
  it('exit 2, one line naming the store (password hidden) and the setting it came from', async () => {
    const url = 'postgres://me:s3cret@127.0.0.1:1/flyte?schema=x';
    const [flag, fromEnv] = await Promise.all([
      runCli(['get', 'runs', '--store', url]),
      runCli(['get', 'runs'], { env: { FLYTE_STORE: url } }),
    ]);
    const shown = 'postgres://me:\\*\\*\\*@127\\.0\\.0\\.1:1/flyte\\?schema=x';
    oneLine(flag, new RegExp(`^flyte: error: cannot open the run store ${shown} \\(from --store\\): \\S`));
    oneLine(fromEnv, new RegExp(`^flyte: error: cannot open the run store ${shown} \\(from FLYTE_STORE\\): \\S`));
  });
});

describe('flyte on a Postgres store', { skip }, () => {
  const schema = freshSchema();
  const url = urlWithSchema(schema);
  let runName = '';

  before(async () => {
    // This process records the run; the spawned CLI reads it from Postgres.
    flyte.init({ store: url, echoLogs: false });
    const run = await flyte.run(square, 7);
    assert.equal(await run.outputs(), 49);
    runName = run.name;
    await flyte.shutdown();
  });
  after(() => dropSchema(schema));

  it('`flyte get runs --store postgres://…` lists a run another process recorded', async () => {
    const r = await runCli(['get', 'runs', '--store', url, '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const runs = parseJson<{ runs?: { name: string; phase: string }[] } | { name: string; phase: string }[]>(r);
    const list = Array.isArray(runs) ? runs : (runs.runs ?? []);
    assert.deepEqual(
      list.map((x) => [x.name, x.phase]),
      [[runName, 'succeeded']],
    );
  });

  it('`flyte ui --store postgres://…` shows a run another process recorded', async () => {
    const child = spawnCli(['ui', '--store', url, '--port', '0']);
    const done = collect(child);
    try {
      const [, address] = await waitForOutput(child, /(http:\/\/127\.0\.0\.1:\d+)/);
      const res = await fetch(`${address}/api/runs`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { runs: { name: string; phase: string }[] };
      assert.deepEqual(
        body.runs.map((x) => [x.name, x.phase]),
        [[runName, 'succeeded']],
      );
    } finally {
      child.kill('SIGINT');
      await done;
    }
  });
});
