/**
 * `FLYTE_LOG_FORMAT=json`: the CLI and the workers print JSON lines (time, level, logger, message, run, action,
 * and the line's fields) instead of human lines; `text` (the default) stays as it was; any other value is bad
 * usage. The logger itself (src/internal/log.ts) in process; the commands spawned as the user runs them: a local
 * `flyte run`, and `flyte worker` processes on real Postgres + Redis serving a `flyte run --remote`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Logger, logSettingsFromEnv } from '../src/internal/log.js';
import { hidePasswords } from '../src/internal/secrets.js';
import { ensureBuilt, exits, REPO, runCli, TASKS, tempDir } from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from './support/redis.js';
import { startWorker, stopWorkers, type WorkerProcess } from './support/workers.js';

interface JsonLine {
  time: string;
  level: string;
  logger: string;
  message: string;
  run?: string;
  action?: string;
  [field: string]: unknown;
}

const LEVELS = ['debug', 'info', 'warn', 'error'];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Every line of `text` as a JSON log line: fails naming the first line that is not one. */
function jsonLines(text: string, where: string): JsonLine[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      let line: JsonLine;
      try {
        line = JSON.parse(l) as JsonLine;
      } catch {
        assert.fail(`${where}: not a JSON line: ${l}\n--- all of it:\n${text}`);
      }
      assert.match(line.time, ISO, `${where}: time of ${l}`);
      assert.ok(LEVELS.includes(line.level), `${where}: level of ${l}`);
      assert.equal(typeof line.logger, 'string', `${where}: logger of ${l}`);
      assert.equal(typeof line.message, 'string', `${where}: message of ${l}`);
      assert.ok(!l.includes(String.fromCharCode(27)), `${where}: no colours in ${l}`);
      return line;
    });
}

describe('the logger', () => {
  const capture = (options: ConstructorParameters<typeof Logger>[0] = {}) => {
    const lines: string[] = [];
    return { lines, log: new Logger({ now: () => Date.UTC(2026, 4, 1, 9), ...options, write: (l) => lines.push(l) }) };
  };

  it('text: the message as it is; `flyte: warning:` / `flyte: error:` before problems; a name before every line', () => {
    const { lines, log } = capture({ paint: { red: (s) => `<r>${s}</r>`, yellow: (s) => `<y>${s}</y>` } });
    log.info('run started', { run: 'r1' });
    log.warn('careful');
    log.error('broken', { code: 7 });
    const worker = log.child({ name: 'flyte worker', worker: 'h:1' });
    worker.info('drained');
    worker.error('drain failed: x');
    log.debug('not shown at info');
    assert.deepEqual(lines, [
      'run started',
      '<y>flyte: warning:</y> careful',
      '<r>flyte: error:</r> broken',
      'flyte worker: drained',
      '<r>flyte worker: error:</r> drain failed: x',
    ]);
  });

  it('json: time, level, logger, message, run, action, then the fields; errors and bigints as JSON can hold them', () => {
    const { lines, log } = capture({ format: 'json', level: 'debug', paint: { red: () => 'X', yellow: () => 'Y' } });
    const child = log.child({ name: 'flyte worker', run: 'r1' });
    child.debug('claimed', { action: 'a0', n: 3n, skipped: undefined });
    child.warn('store down', { error: Object.assign(new Error('ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    log.info('a task line', { time: Date.UTC(2026, 0, 2), run: 'r2' });
    assert.deepEqual(
      lines.map((l) => JSON.parse(l) as unknown),
      [
        {
          time: '2026-05-01T09:00:00.000Z',
          level: 'debug',
          logger: 'flyte worker',
          message: 'claimed',
          run: 'r1',
          action: 'a0',
          n: '3',
        },
        {
          time: '2026-05-01T09:00:00.000Z',
          level: 'warn',
          logger: 'flyte worker',
          message: 'store down',
          run: 'r1',
          error: { name: 'Error', message: 'ECONNREFUSED', code: 'ECONNREFUSED' },
        },
        { time: '2026-01-02T00:00:00.000Z', level: 'info', logger: 'flyte', message: 'a task line', run: 'r2' },
      ],
    );
    assert.deepEqual(Object.keys(JSON.parse(lines[0] ?? '{}') as object).slice(0, 6), [
      'time',
      'level',
      'logger',
      'message',
      'run',
      'action',
    ]);
  });

  it('a field that cannot be serialized keeps the line, without its fields', () => {
    const { lines, log } = capture({ format: 'json' });
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    log.info('odd', { run: 'r1', cycle });
    const line = JSON.parse(lines[0] ?? '') as JsonLine;
    assert.equal(line.message, 'odd');
    assert.equal(line.run, 'r1');
    assert.match(String(line.fieldsError), /circular/i);
  });

  it('levels filter; `to(..., { allLevels })` does not (command results)', () => {
    const { lines, log } = capture({ level: 'error' });
    log.warn('dropped');
    log.to((l) => lines.push(`out:${l}`), { allLevels: true }).info('result');
    log.to((l) => lines.push(`out:${l}`)).info('dropped too');
    assert.deepEqual(lines, ['out:result']);
  });

  it('passwords in URLs are masked, in messages and string fields, in both formats', () => {
    assert.equal(hidePasswords('cannot reach redis://:s3cret@cache:6379/0'), 'cannot reach redis://:***@cache:6379/0');
    assert.equal(
      hidePasswords('postgres://me:pw@db/x and postgres://me@db/y'),
      'postgres://me:***@db/x and postgres://me@db/y',
    );
    const text = capture();
    text.log.info('store postgres://me:hunter2@db/flyte');
    const json = capture({ format: 'json' });
    json.log.info('store postgres://me:hunter2@db/flyte', { store: 'postgres://me:hunter2@db/flyte' });
    assert.deepEqual(text.lines, ['store postgres://me:***@db/flyte']);
    assert.doesNotMatch(json.lines.join('\n'), /hunter2/);
  });

  it('reads FLYTE_LOG_FORMAT and FLYTE_LOG_LEVEL; anything else is refused, saying what was expected', () => {
    assert.deepEqual(logSettingsFromEnv({}), { format: 'text', level: 'info' });
    assert.deepEqual(logSettingsFromEnv({ FLYTE_LOG_FORMAT: '', FLYTE_LOG_LEVEL: '' }), {
      format: 'text',
      level: 'info',
    });
    assert.deepEqual(logSettingsFromEnv({ FLYTE_LOG_FORMAT: 'json', FLYTE_LOG_LEVEL: 'debug' }), {
      format: 'json',
      level: 'debug',
    });
    assert.throws(() => logSettingsFromEnv({ FLYTE_LOG_FORMAT: 'JSON' }), {
      name: 'RangeError',
      message: "FLYTE_LOG_FORMAT: expected 'text' or 'json'; received 'JSON'",
    });
    assert.throws(() => logSettingsFromEnv({ FLYTE_LOG_LEVEL: 'loud' }), {
      message: "FLYTE_LOG_LEVEL: expected 'debug', 'info', 'warn' or 'error'; received 'loud'",
    });
  });
});

describe('FLYTE_LOG_FORMAT=json: flyte run (local)', () => {
  const root = tempDir();
  const flyte = (args: readonly string[], env: Record<string, string | undefined> = { FLYTE_LOG_FORMAT: 'json' }) =>
    runCli(args, { root, env });
  before(() => ensureBuilt());

  it('prints JSON lines: the start, the task lines with their run and action, the end with the outputs', async () => {
    const r = await flyte(['run', TASKS, 'chatty', '--lines', '2']);
    exits(r, 0);
    const out = jsonLines(r.stdout, 'stdout');
    const err = jsonLines(r.stderr, 'stderr');
    const name = out[0]?.run ?? '';
    assert.match(name, /^[a-z]+-[a-z]+-[0-9a-f]{6}$/);
    assert.deepEqual(
      out.map((l) => [l.logger, l.level, l.message, l.run, l.action]),
      [
        ['flyte', 'info', `run ${name} started`, name, undefined],
        ['task', 'info', 'line 1 of 2', name, 'a0'],
        ['task', 'info', 'line 2 of 2', name, 'a0'],
        ['flyte', 'info', out[3]?.message, name, undefined],
      ],
    );
    assert.match(out[0]?.url as string, new RegExp(`/runs/${name}$`));
    assert.equal(out[1]?.stream, 'stdout');
    assert.equal(out[1]?.attempt, 1);
    assert.match(out[3]?.message ?? '', new RegExp(`^${name} succeeded in \\S+$`));
    assert.equal(out[3]?.phase, 'succeeded');
    assert.equal(out[3]?.outputs, 2);
    assert.equal(typeof out[3]?.durationMs, 'number');
    assert.deepEqual(
      err.map((l) => [l.logger, l.level, l.message, l.run, l.action, l.stream]),
      [['task', 'warn', 'and one on stderr', name, 'a0', 'stderr']],
    );
  });

  it('progress of a fan-out as JSON lines with its counts; the output is JSON for jq', async () => {
    const r = await flyte(['run', TASKS, 'fanout', '--n', '3']);
    exits(r, 0);
    const out = jsonLines(r.stdout, 'stdout');
    jsonLines(r.stderr, 'stderr');
    const progress = out.filter((l) => l.group !== undefined);
    assert.ok(progress.length > 0, r.stdout);
    const last = progress[progress.length - 1];
    assert.equal(last?.parent, 'a0');
    assert.deepEqual((last?.counts as { total: number; succeeded: number }).succeeded, 3);
    assert.deepEqual(out[out.length - 1]?.outputs, { n: 3, total: 5 });
  });

  it('a failed run: an error line with the failing action, its task and the error', async () => {
    const r = await flyte(['run', TASKS, 'boom', '--message', 'hi']);
    exits(r, 1);
    jsonLines(r.stdout, 'stdout');
    const err = jsonLines(r.stderr, 'stderr');
    const end = err[err.length - 1];
    assert.equal(end?.level, 'error');
    assert.match(end?.message ?? '', /^\S+ failed in \S+$/);
    assert.equal(end?.phase, 'failed');
    assert.match(end?.action ?? '', /^a[0-9a-f]+$/);
    assert.equal(end?.task, 'explode');
    assert.equal((end?.error as { code: string; message: string }).message, 'cannot handle hi');
  });

  it('usage errors, Commander errors and warnings are JSON lines too; passwords stay hidden', async () => {
    const missing = await flyte(['run', 'no/such/file.ts', 'x']);
    exits(missing, 2);
    assert.deepEqual(
      jsonLines(missing.stderr, 'stderr').map((l) => [l.level, l.message]),
      [['error', `file not found: no/such/file.ts (looked for ${join(REPO, 'no', 'such', 'file.ts')})`]],
    );
    const unknown = await flyte(['frobnicate']);
    exits(unknown, 2);
    assert.deepEqual(jsonLines(unknown.stderr, 'stderr')[0]?.message, "unknown command 'frobnicate'");
    const warned = await flyte([
      'run',
      join(REPO, 'test', 'fixtures', 'cli', 'top-level-run.ts'),
      'double',
      '--x',
      '1',
    ]);
    const warning = jsonLines(warned.stderr, 'stderr').find((l) => l.level === 'warn');
    assert.match(warning?.message ?? '', /started a run of its own/, warned.stderr);
    const secret = await flyte(['get', 'runs', '--store', 'postgres://me:hunter2@127.0.0.1:1/nowhere']);
    exits(secret, 2);
    const [line] = jsonLines(secret.stderr, 'stderr');
    assert.match(line?.message ?? '', /^cannot open the run store postgres:\/\/me:\*\*\*@127\.0\.0\.1:1\/nowhere/);
    assert.doesNotMatch(secret.stderr, /hunter2/);
  });

  it('process warnings are JSON lines of level warn, with the run and action of the task that emitted one', async () => {
    const r = await flyte(['run', join(REPO, 'test', 'fixtures', 'cli', 'warns.ts'), 'warns']);
    exits(r, 0);
    const name = jsonLines(r.stdout, 'stdout')[0]?.run;
    const warning = jsonLines(r.stderr, 'stderr').find((l) => l.code === 'FLYTE_TEST_WARNING');
    assert.deepEqual(
      [warning?.level, warning?.message, warning?.run, warning?.action],
      ['warn', 'something odd', name, 'a0'],
    );
    assert.doesNotMatch(r.stderr, /\(node:\d+\)/);
  });

  it('data the user asked for stays as it is: --json documents, -o json', async () => {
    const r = await flyte(['run', '--json', TASKS, 'double', '--x', '4']);
    exits(r, 0);
    assert.equal((JSON.parse(r.stdout) as { outputs: number }).outputs, 8);
    const runs = await flyte(['get', 'runs', '-o', 'json']);
    exits(runs, 0);
    assert.ok(Array.isArray(JSON.parse(runs.stdout)));
  });

  it('the default and FLYTE_LOG_FORMAT=text print the human lines', async () => {
    for (const env of [{}, { FLYTE_LOG_FORMAT: 'text' }]) {
      const r = await flyte(['run', TASKS, 'chatty', '--lines', '1'], env);
      exits(r, 0);
      assert.match(r.stdout, /^run \S+\nurl \S+$/m);
      assert.match(r.stdout, /^line 1 of 1$/m);
      assert.match(r.stdout, /^outputs: 1$/m);
      assert.match(r.stderr, /^and one on stderr$/m);
      assert.doesNotMatch(r.stdout + r.stderr, /"level"/);
    }
  });

  it('an unknown format or level is bad usage (exit 2), saying what was expected and what was received', async () => {
    const format = await flyte(['get', 'runs'], { FLYTE_LOG_FORMAT: 'xml' });
    exits(format, 2);
    assert.equal(format.stderr, "flyte: error: FLYTE_LOG_FORMAT: expected 'text' or 'json'; received 'xml'\n");
    assert.equal(format.stdout, '');
    const level = await flyte(['get', 'runs'], { FLYTE_LOG_LEVEL: 'verbose' });
    exits(level, 2);
    assert.equal(
      level.stderr,
      "flyte: error: FLYTE_LOG_LEVEL: expected 'debug', 'info', 'warn' or 'error'; received 'verbose'\n",
    );
  });
});

const skip = (await postgresSkip()) || (await redisSkip());
const REMOTE_TASKS = join(REPO, 'test', 'fixtures', 'remote', 'cli-tasks.ts');

describe('FLYTE_LOG_FORMAT=json: flyte worker and flyte run --remote', { skip }, () => {
  const schema = freshSchema();
  const store = urlWithSchema(schema);
  const prefix = `flyte_test_log_format_${process.pid}`;
  const engine = urlWithPrefix(prefix);
  const root = tempDir();
  let workers: WorkerProcess[] = [];

  before(async () => {
    ensureBuilt();
    workers = [
      await startWorker({
        modules: [REMOTE_TASKS],
        store,
        engine,
        concurrency: 2,
        fromBin: true,
        env: { FLYTE_LOG_FORMAT: 'json', FLYTE_LOG_LEVEL: 'debug' },
      }),
    ];
  });

  after(async () => {
    const drained = await stopWorkers(workers);
    await dropSchema(schema);
    await deletePrefix(prefix);
    drained();
  });

  it('the worker prints JSON lines: its start, each action as it runs and ends, the task lines, its drain', async () => {
    const r = await runCli(['run', '--remote', REMOTE_TASKS, 'sumOfSquares', '--items', '[1,2,3]'], {
      root,
      env: { FLYTE_STORE: store, FLYTE_ENGINE: engine, FLYTE_LOG_FORMAT: 'json' },
      timeoutMs: 90_000,
    });
    exits(r, 0);
    // The submitter: the start, the worker's task line (read from the store), the progress and the end.
    const out = jsonLines(r.stdout, 'run stdout');
    jsonLines(r.stderr, 'run stderr');
    const name = out[0]?.run ?? '';
    assert.equal(out[0]?.message, `run ${name} started`);
    const echoed = out.find((l) => l.logger === 'task');
    assert.deepEqual([echoed?.message, echoed?.run, echoed?.action], ['summing 3 squares', name, 'a0']);
    assert.equal(out[out.length - 1]?.outputs, 14);

    const [worker] = workers;
    assert.ok(worker);
    assert.equal(await worker.stop('SIGTERM'), 0);
    const lines = jsonLines(worker.output(), 'worker output');
    const started = lines[0];
    assert.match(started?.message ?? '', /^flyte worker \S+: environments remote_cli; queues /);
    assert.deepEqual(started?.environments, ['remote_cli']);
    assert.equal(started?.concurrency, 2);
    assert.equal(started?.store, store.replace(/^(postgres:\/\/[^:/@]*:)[^@]*@/, '$1***@'));
    const task = lines.find((l) => l.logger === 'task');
    assert.deepEqual(
      [task?.message, task?.run, task?.action, task?.stream],
      ['summing 3 squares', name, 'a0', 'stdout'],
    );
    // Debug lines: the root and its three children, each running and then succeeded, with their run and action.
    const phases = lines.filter((l) => l.level === 'debug' && l.run === name);
    const ended = phases.filter((l) => l.phase === 'succeeded').map((l) => l.action);
    assert.equal(ended.length, 4, worker.output());
    assert.ok(ended.includes('a0'));
    assert.ok(phases.every((l) => l.logger === 'flyte worker' && typeof l.action === 'string'));
    assert.equal(phases.filter((l) => l.phase === 'running').length, 4);
    const drain = lines.filter((l) => l.logger === 'flyte worker' && l.level === 'info').map((l) => l.message);
    assert.match(drain.join('\n'), /^SIGTERM: draining \(no new jobs; 0 held, handed back after \d+ ms\)\ndrained$/m);
  });
});
