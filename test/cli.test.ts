/**
 * The `flyte` command, end to end: the built binary (`dist/cli/main.js`, what `npx flyte` runs) spawned on the
 * fixture files in `test/fixtures/cli/`, each test file with its own state directory. Checks stdout, stderr and
 * exit codes of every command, good input and bad.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import {
  cliEnv,
  collect,
  ensureBuilt,
  exits,
  FIXTURES,
  parseJson,
  REPO,
  runCli,
  spawnCli,
  TASKS,
  tempDir,
  waitForOutput,
  type CliResult,
} from './support/cli.js';
import { rootEnv, sqliteOnly, storeShown } from './support/test-store.js';

/**
 * How many tests of a suite run at once: each spawns a few processes of ~0.3 s CPU, and more at once than the
 * machine has cores only makes each one slower (and a timeout likelier).
 */
const PARALLEL = Math.max(2, availableParallelism());

/** Whether this Node has `import.meta.main` (24.2 and later; not in @types/node 20's ImportMeta). */
const HAS_IMPORT_META_MAIN = typeof (import.meta as { main?: unknown }).main === 'boolean';

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };

/** Asserts the exit code, showing the output when it is not the expected one. */

/** The run name a `flyte run` printed. */
function runName(result: CliResult): string {
  const match = /^run (\S+)/m.exec(result.stdout);
  assert.ok(match, `no 'run NAME' line in:\n${result.stdout}`);
  return match[1] as string;
}

let root: string;
before(() => {
  ensureBuilt();
  root = tempDir();
});
const cli = (...args: string[]): Promise<CliResult> => runCli(args, { root });

describe('flyte run', { concurrency: PARALLEL }, () => {
  it('runs a task by name with a named argument, printing the run name, its URL and the outputs', async () => {
    const r = await cli('run', TASKS, 'double', '--x', '21');
    exits(r, 0);
    const name = runName(r);
    assert.match(r.stdout, new RegExp(`^url http://127\\.0\\.0\\.1:8080/runs/${name}$`, 'm'));
    assert.match(r.stdout, new RegExp(`✓ ${name} succeeded in \\d+ms`));
    assert.match(r.stdout, /^outputs: 42$/m);
    assert.equal(r.stderr, '');
  });

  it('loads TypeScript that type stripping cannot run (enum, parameter properties, .js names of .ts files), also on pool threads', async () => {
    // Node 24 strips types by itself; a task file must still load through tsx there, as on Node 20.
    const r = await cli('run', join(FIXTURES, 'beyond-stripping.ts'), 'weighAll', '--grams', '[250,1500]');
    exits(r, 0);
    assert.match(r.stdout, /^outputs: \["250 g","1\.5 kg"\]$/m);
    assert.equal(r.stderr, '');
  });

  it('takes arguments positionally, and leaves out parameters that have defaults', async () => {
    const [both, one] = await Promise.all([cli('run', TASKS, 'add', '5', '7'), cli('run', TASKS, 'add', '5')]);
    exits(both, 0);
    assert.match(both.stdout, /^outputs: 12$/m);
    exits(one, 0);
    assert.match(one.stdout, /^outputs: 6$/m);
  });

  it('finds a task by export name, function name or fully qualified name', async () => {
    const results = await Promise.all([
      cli('run', TASKS, 'double', '1'),
      cli('run', TASKS, 'cli_fixture.double', '2'),
      cli('run', join('test', 'fixtures', 'cli', 'tasks.ts'), 'double', '3'),
    ]);
    results.forEach((r, i) => {
      exits(r, 0);
      assert.match(r.stdout, new RegExp(`^outputs: ${(i + 1) * 2}$`, 'm'));
    });
  });

  it('passes plain strings as strings, JSON as values, and a bare flag as true', async () => {
    const [plain, flag, quoted] = await Promise.all([
      cli('run', TASKS, 'greet', '--name', 'world'),
      cli('run', TASKS, 'greet', '--name', 'world', '--excited'),
      cli('run', TASKS, 'greet', '--name', '"42"'),
    ]);
    assert.match(plain.stdout, /^outputs: "hello world"$/m);
    assert.match(flag.stdout, /^outputs: "hello world!"$/m);
    // A string parameter takes the text as given, quotes included.
    assert.match(quoted.stdout, /^outputs: "hello \\"42\\""$/m);
  });

  it('binds rest and destructured parameters', async () => {
    const [rest, restByName, shape] = await Promise.all([
      cli('run', TASKS, 'sumAll', 'total', '1', '2', '3'),
      cli('run', TASKS, 'sumAll', '--label', 't', '--values', '[4,5]'),
      cli('run', TASKS, 'describeShape', '--arg0', '{"w":2,"h":3}'),
    ]);
    assert.match(rest.stdout, /^outputs: "total=6"$/m);
    assert.match(restByName.stdout, /^outputs: "t=9"$/m);
    assert.match(shape.stdout, /^outputs: 6$/m);
  });

  it('runs sync tasks, whose bodies run on worker threads that load the TypeScript file again', async () => {
    const r = await cli('run', TASKS, 'syncTwice', '21');
    exits(r, 0);
    assert.match(r.stdout, /^outputs: 42$/m);
  });

  it('loads plain JavaScript files too', async () => {
    const r = await cli('run', join(FIXTURES, 'plain.js'), 'shout', '--text', 'hi');
    exits(r, 0);
    assert.match(r.stdout, /^outputs: "HI"$/m);
  });

  it('--json prints exactly one JSON document: run, phase, outputs, counts', async () => {
    const r = await cli('run', '--json', TASKS, 'fanout', '--n', '12');
    exits(r, 0);
    const doc = parseJson<{
      run: string;
      url: string;
      phase: string;
      outputs: unknown;
      counts: Record<string, number>;
    }>(r);
    assert.equal(doc.phase, 'succeeded');
    assert.deepEqual(doc.outputs, { n: 12, total: 506 });
    assert.equal(doc.counts.total, 13);
    assert.equal(doc.counts.succeeded, 13);
    assert.match(doc.url, new RegExp(`/runs/${doc.run}$`));
  });

  it('--json turns values JSON lacks into JSON: dates, BigInt, Set, Map, undefined', async () => {
    const r = await cli('run', '--json', TASKS, 'rich');
    exits(r, 0);
    assert.deepEqual(parseJson<{ outputs: unknown }>(r).outputs, {
      when: '1970-01-01T00:00:00.000Z',
      big: '10',
      tags: ['a', 'b'],
      map: { k: 1 },
      nothing: null,
    });
  });

  it('--json keeps task logs off stdout', async () => {
    const r = await cli('run', '--json', TASKS, 'chatty', '2');
    exits(r, 0);
    assert.equal(parseJson<{ outputs: unknown }>(r).outputs, 2);
  });

  it('--name names the run; a taken name is bad usage', async () => {
    const first = await cli('run', '--name', 'named-run-1', TASKS, 'double', '1');
    exits(first, 0);
    assert.equal(runName(first), 'named-run-1');
    const again = await cli('run', '--name', 'named-run-1', TASKS, 'double', '1');
    exits(again, 2);
    assert.match(again.stderr, /--name: .*named-run-1.* already exists/);
  });

  it('a task that throws: exit 1, the error with the failing action and its task', async () => {
    const r = await cli('run', TASKS, 'boom', '--message', 'this input');
    exits(r, 1);
    const name = runName(r);
    assert.match(r.stderr, new RegExp(`✗ ${name} failed in \\d+ms`));
    assert.match(r.stderr, /error in action [0-9a-z]+ \(explode\): ValueError: cannot handle this input/);
    assert.match(r.stderr, /at .*tasks\.ts:\d+:\d+/, 'the user frame of the stack is shown');
    assert.doesNotMatch(r.stderr, /dist[\\/]internal/, 'frames of flyte-ts itself are not');
    const json = await cli('run', '--json', TASKS, 'boom', '--message', 'x');
    exits(json, 1);
    const doc = parseJson<{
      phase: string;
      error: { code: string; message: string; actionName: string; taskName: string };
    }>(json);
    assert.equal(doc.phase, 'failed');
    assert.equal(doc.error.code, 'ValueError');
    assert.equal(doc.error.taskName, 'explode');
    assert.match(doc.error.actionName, /^[0-9a-z]+$/);
    assert.notEqual(doc.error.actionName, 'a0');
  });

  it('echoes task logs in plain mode and records them', async () => {
    const r = await cli('run', TASKS, 'chatty', '2');
    exits(r, 0);
    assert.match(r.stdout, /^line 1 of 2$/m);
    assert.match(r.stderr, /^and one on stderr$/m);
    const logs = await cli('get', 'logs', runName(r));
    exits(logs, 0);
    assert.match(logs.stdout, /\d\d:\d\d:\d\d\.\d{3} chatty a0 #1 line 1 of 2/);
    assert.match(logs.stdout, /a0 #1 and one on stderr/);
  });

  it('prints the progress of fan-outs as plain lines when stdout is not a terminal', async () => {
    const r = await cli('run', TASKS, 'fanout', '--n', '20');
    exits(r, 0);
    assert.match(
      r.stdout,
      /^\[\d+(ms|\.\ds)\] cli_fixture\.square_map {2}20\/20 done {2}0 running {2}0 failed {2}0 cached$/m,
    );
    assert.match(r.stdout, /^outputs: \{"n":20,"total":2470\}$/m);
  });

  it('checks arguments against the task inputs schema before the run: exit 2 naming the parameter', async () => {
    const bad = await cli('run', TASKS, 'validated', '--items', '[1.5]', '--factor', '2');
    exits(bad, 2);
    assert.match(bad.stderr, /argument --items\[0\]: .*int/i);
    const negative = await cli('run', TASKS, 'validated', '[1]', '-2');
    exits(negative, 2);
    assert.match(negative.stderr, /argument --factor: /);
    const good = await cli('run', TASKS, 'validated', '[1,2]', '3');
    exits(good, 0);
    assert.match(good.stdout, /^outputs: \[3,6\]$/m);
  });

  it('Ctrl-C (SIGINT) aborts the run, records it as aborted and exits 130', async () => {
    const child = spawnCli(['run', TASKS, 'sleepy', '--ms', '30000'], { root });
    const done = collect(child);
    const [, name] = await waitForOutput(child, /^run (\S+)$/m);
    child.kill('SIGINT');
    const r = await done;
    exits(r, 130);
    assert.match(r.stderr, /interrupted: aborting the run/);
    assert.match(r.stderr, new RegExp(`${name} aborted`));
    const get = await cli('get', 'run', name as string, '-o', 'json');
    assert.equal(parseJson<{ run: { phase: string } }>(get).run.phase, 'aborted');
  });

  it('SIGTERM aborts the run the same way, with its own reason', async () => {
    const child = spawnCli(['run', TASKS, 'sleepy', '--ms', '30000'], { root });
    const done = collect(child);
    const [, name] = await waitForOutput(child, /^run (\S+)$/m);
    child.kill('SIGTERM');
    const r = await done;
    exits(r, 130);
    const get = await cli('get', 'run', name as string, '-o', 'json');
    const rec = parseJson<{ run: { phase: string; error: { message: string } } }>(get).run;
    assert.equal(rec.phase, 'aborted');
    assert.match(rec.error.message, /terminated \(SIGTERM\)/);
  });
});

describe('flyte run: a module that starts runs of its own', { concurrency: PARALLEL }, () => {
  it('warns when importing the file started a run (a top-level flyte.run), naming it', async () => {
    const own = tempDir();
    const r = await runCli(['run', join(FIXTURES, 'top-level-run.ts'), 'double', '3'], { root: own });
    exits(r, 0);
    assert.match(r.stdout, /^outputs: 6$/m);
    const runs = parseJson<{ name: string }[]>(await runCli(['get', 'runs', '-o', 'json'], { root: own }));
    assert.equal(runs.length, 2, 'the import ran one, the command another');
    const first = runs.find((run) => run.name !== runName(r))?.name ?? assert.fail('the run of the import');
    assert.match(
      r.stderr,
      new RegExp(`^flyte: warning: importing \\S+top-level-run\\.ts started a run of its own \\(${first}\\)`, 'm'),
    );
    assert.match(r.stderr, /if \(import\.meta\.url === pathToFileURL\(process\.argv\[1\]\)\.href\)/);
    if (HAS_IMPORT_META_MAIN)
      assert.match(r.stderr, /when it is the entry point: if \(import\.meta\.main\) \{ \.\.\. \}/);
    else assert.doesNotMatch(r.stderr, /import\.meta\.main/);
  });

  it('Node 24 has import.meta.main and Node 20 has not (what the guard tests below rely on)', () => {
    const major = Number(process.versions.node.split('.')[0]);
    if (major >= 24) assert.equal(HAS_IMPORT_META_MAIN, true, `Node ${process.versions.node}`);
    if (major === 20) assert.equal(HAS_IMPORT_META_MAIN, false, `Node ${process.versions.node}`);
  });

  it('a file guarded by import.meta.main runs once under flyte run; as a script, only where Node has it', async () => {
    const own = tempDir();
    const file = join(FIXTURES, 'main-guard.ts');
    const r = await runCli(['run', file, 'triple', '5'], { root: own });
    exits(r, 0);
    assert.match(r.stdout, /^outputs: 15$/m);
    assert.equal(r.stderr, '', 'importing the file started no run');
    const script = await collect(
      spawn(process.execPath, ['--import', 'tsx', file], { cwd: REPO, env: cliEnv(rootEnv(own)) }),
    );
    assert.equal(script.code, 0, script.stderr);
    const runs = parseJson<unknown[]>(await runCli(['get', 'runs', '-o', 'json'], { root: own }));
    if (HAS_IMPORT_META_MAIN) {
      assert.match(script.stdout, /^15$/m);
      assert.equal(runs.length, 2, 'the command ran one, the script another');
    } else {
      assert.equal(script.stdout, '', 'import.meta.main is undefined on this Node: the guard is false');
      assert.equal(runs.length, 1, 'only the command ran one');
    }
  });

  it('the README quickstart, with its entry-point guard, runs once under flyte run and as a script', async () => {
    const own = tempDir();
    const file = join(FIXTURES, 'quickstart.ts');
    const r = await runCli(['run', file, 'main', '--items', '[1,2,3,4]'], { root: own });
    exits(r, 0);
    assert.match(r.stdout, /^outputs: 20$/m);
    assert.equal(r.stderr, '');
    const script = await collect(
      spawn(process.execPath, ['--import', 'tsx', file], { cwd: REPO, env: cliEnv(rootEnv(own)) }),
    );
    assert.equal(script.code, 0, script.stderr);
    assert.match(script.stdout, /^20$/m);
    const runs = parseJson<unknown[]>(await runCli(['get', 'runs', '-o', 'json'], { root: own }));
    assert.equal(runs.length, 2, 'one run each');
  });
});

describe('flyte run: bad usage exits 2 with a message that says what was expected', { concurrency: PARALLEL }, () => {
  it('a missing file', async () => {
    const r = await cli('run', 'no/such/file.ts', 'main');
    exits(r, 2);
    assert.match(r.stderr, /flyte: error: file not found: no\/such\/file\.ts/);
    assert.equal(r.stdout, '');
  });

  it('an unknown task lists the tasks that exist (and only tasks)', async () => {
    const r = await cli('run', TASKS, 'nope');
    exits(r, 2);
    assert.match(r.stderr, /no task 'nope' in .*tasks\.ts; tasks in this file: .*cli_fixture\.double/);
    assert.match(r.stderr, /cli_fixture\.fanout/);
    assert.doesNotMatch(r.stderr, /helper/);
    const missing = await cli('run', TASKS);
    exits(missing, 2);
    assert.match(missing.stderr, /missing TASK: .*cli_fixture\.add/);
    const none = await cli('run', join(FIXTURES, 'no-tasks.ts'), 'notATask');
    exits(none, 2);
    assert.match(none.stderr, /it exports no tasks/);
  });

  it('a malformed JSON argument names the parameter and what was expected', async () => {
    const r = await cli('run', join(FIXTURES, 'plain.js'), 'shout', '--text', '{"oops"');
    exits(r, 2);
    assert.match(
      r.stderr,
      /argument --text: expected a JSON object \(it starts with '\{'\) but it does not parse: .*received '\{"oops"'/,
    );
    const typed = await cli('run', TASKS, 'fanout', '--n', '{"oops"');
    exits(typed, 2);
    assert.match(typed.stderr, /argument --n: expected a number; received '\{"oops"'/);
  });

  it('a missing argument, an unknown one, one too many, a misplaced run option', async () => {
    const [missing, unknown, extra, misplaced] = await Promise.all([
      cli('run', TASKS, 'double'),
      cli('run', TASKS, 'double', '--y', '1'),
      cli('run', TASKS, 'double', '1', '2'),
      cli('run', TASKS, 'double', '1', '--json'),
    ]);
    exits(missing, 2);
    assert.match(missing.stderr, /missing argument --x \(parameter 1 of double\(x\)\)/);
    exits(unknown, 2);
    assert.match(unknown.stderr, /unknown argument --y: double\(x\) takes --x/);
    exits(extra, 2);
    assert.match(extra.stderr, /too many arguments: double\(x\) takes 1 parameter; received an extra value '2'/);
    exits(misplaced, 2);
    assert.match(misplaced.stderr, /options of flyte run itself go before FILE/);
  });

  it('--local with --remote, an invalid run name', async () => {
    const [both, badName] = await Promise.all([
      cli('run', '--local', '--remote', TASKS, 'double', '1'),
      cli('run', '--name', 'Not A Name!', TASKS, 'double', '1'),
    ]);
    exits(both, 2);
    assert.match(both.stderr, /--local and --remote exclude each other/);
    exits(badName, 2);
    assert.match(badName.stderr, /--name: /);
  });

  it('--remote without a distributed backend is bad usage (exit 2) saying what is missing', async () => {
    const r = await cli('run', '--remote', TASKS, 'double', '1');
    exits(r, 2);
    assert.match(r.stderr, /--remote needs a distributed engine, and none is configured: pass --engine/);
  });

  it('a file that throws while loading: exit 1 with its error', async () => {
    const r = await cli('run', join(FIXTURES, 'throws-on-import.ts'), 'never');
    exits(r, 1);
    assert.match(r.stderr, /cannot load .*throws-on-import\.ts: importing it threw Error: this module refuses to load/);
    assert.match(r.stderr, /throws-on-import\.ts:\d+/);
  });
});

describe('flyte run: arguments are converted to the declared parameter types', { concurrency: PARALLEL }, () => {
  const TYPED = join(FIXTURES, 'typed.ts');
  const typed = (...args: string[]): Promise<CliResult> => cli('run', '--json', TYPED, ...args);
  const outputs = (r: CliResult): unknown => {
    exits(r, 0);
    return parseJson<{ outputs: unknown }>(r).outputs;
  };

  it('a number parameter takes 3 and -1.5, and refuses abc and "12" with exit 2', async () => {
    const [three, negative, abc, quoted] = await Promise.all([
      typed('count', '--n', '3'),
      typed('count', '--n', '-1.5'),
      typed('count', '--n', 'abc'),
      typed('count', '--n', '"12"'),
    ]);
    assert.deepEqual(outputs(three), { n: 3, kinds: ['number'] });
    assert.deepEqual(outputs(negative), { n: -1.5, kinds: ['number'] });
    exits(abc, 2);
    assert.match(abc.stderr, /argument --n: expected a number; received 'abc'/);
    assert.equal(abc.stdout, '');
    exits(quoted, 2);
    assert.match(quoted.stderr, /argument --n: expected a number; received '"12"'/);
  });

  it('a string parameter takes the text as given: 007 stays 007, "12" keeps its quotes', async () => {
    const [zeros, quoted, tagged] = await Promise.all([
      typed('ident', '--id', '007'),
      typed('ident', '--id', '"12"'),
      typed('ident', '42', '--tag', 'null'),
    ]);
    assert.deepEqual(outputs(zeros), { id: '007', tag: null, kinds: ['string', 'object'] });
    assert.deepEqual(outputs(quoted), { id: '"12"', tag: null, kinds: ['string', 'object'] });
    assert.deepEqual(outputs(tagged), { id: '42', tag: null, kinds: ['string', 'object'] });
  });

  it('a literal union takes its members and refuses anything else', async () => {
    const [fast, slow3, medium, four] = await Promise.all([
      typed('pick', 'fast'),
      typed('pick', '--mode', 'slow', '--level', '3'),
      typed('pick', '--mode', 'medium'),
      typed('pick', 'slow', '4'),
    ]);
    assert.equal(outputs(fast), 'fast:1');
    assert.equal(outputs(slow3), 'slow:3');
    exits(medium, 2);
    assert.match(medium.stderr, /argument --mode: expected one of 'fast', 'slow'; received 'medium'/);
    exits(four, 2);
    assert.match(four.stderr, /argument level: expected one of 1, 2, 3; received '4'/);
  });

  it('an array of numbers is checked item by item; an optional x?: T may be left out', async () => {
    const [sum, scaled, bad, notJson] = await Promise.all([
      typed('total', '[1,2,3]'),
      typed('total', '--xs', '[1,2]', '--scale', '2'),
      typed('total', '--xs', '[1,"a"]'),
      typed('total', '--xs', '1,2'),
    ]);
    assert.equal(outputs(sum), 6);
    assert.equal(outputs(scaled), 6);
    exits(bad, 2);
    assert.match(
      bad.stderr,
      /argument --xs: expected a JSON array number\[\]; received '\[1,"a"\]' \(at \[1\]: expected a number, got "a"\)/,
    );
    exits(notJson, 2);
    assert.match(notJson.stderr, /argument --xs: expected a JSON array number\[\]; received '1,2' \(it is not JSON/);
  });

  it('nested objects of interfaces declared in the file, and inline object types, are checked field by field', async () => {
    const good = JSON.stringify({
      name: 'tri',
      points: [
        { x: 0, y: 0 },
        { x: 1, y: 0, label: 'b' },
      ],
      closed: true,
    });
    const [shape, missing, inline, extra] = await Promise.all([
      typed('shape', good),
      typed('shape', '--s', '{"name":"t","points":[{"x":1}],"closed":true}'),
      typed('inline', '--opts', '{"depth":2,"tags":["a"]}'),
      typed('inline', '--opts', '{"depth":2,"tags":["a"],"color":1}'),
    ]);
    assert.equal(outputs(shape), 'tri:2:true');
    exits(missing, 2);
    assert.match(
      missing.stderr,
      /argument --s: expected a JSON object \{ name: string; points: .*\(at \.points\[0\]\.y: missing/,
    );
    assert.equal(outputs(inline), 3);
    exits(extra, 2);
    assert.match(extra.stderr, /\(at \.color: not a field of \{ depth: number; tags: string\[\] \}\)/);
  });

  it('a boolean parameter takes true/false or the bare flag, which does not swallow the next value', async () => {
    const [bare, before, explicit, bad] = await Promise.all([
      typed('toggle', 'hi', '--loud'),
      typed('toggle', '--loud', 'hi'),
      typed('toggle', 'hi', '--loud', 'false'),
      typed('toggle', 'hi', '--loud=yes'),
    ]);
    assert.equal(outputs(bare), 'HI');
    assert.equal(outputs(before), 'HI');
    assert.equal(outputs(explicit), 'hi');
    exits(bad, 2);
    assert.match(bad.stderr, /argument --loud: expected true or false; received 'yes'/);
  });

  it('finds the types of arrow tasks named by options.name, and of a same-named task in another environment', async () => {
    const [arrow, badArrow, other] = await Promise.all([
      typed('arrowed', '2', 'w'),
      typed('arrowed', '--k', 'x', '--word', 'w'),
      typed('cli_typed_other.count', '007'),
    ]);
    assert.equal(outputs(arrow), 'w2');
    exits(badArrow, 2);
    assert.match(badArrow.stderr, /argument --k: expected a number; received 'x'/);
    assert.deepEqual(outputs(other), { n: '007', kinds: ['string'] });
  });

  it('with no known type (unknown, or a .js file) a value is JSON where it parses, else the string', async () => {
    const [json, text, js] = await Promise.all([
      typed('loose', '"12"'),
      typed('loose', 'abc'),
      cli('run', '--json', join(FIXTURES, 'plain.js'), 'shout', '--text', '"quiet"'),
    ]);
    assert.deepEqual(outputs(json), { value: '12', kinds: ['string'] });
    assert.deepEqual(outputs(text), { value: 'abc', kinds: ['string'] });
    assert.equal(outputs(js), 'QUIET');
  });
});

describe('flyte get', () => {
  let ok: string;
  let failed: string;
  let retried: string;
  before(async () => {
    const results = await Promise.all([
      cli('run', TASKS, 'pipeline', '8'),
      cli('run', TASKS, 'boom', 'x'),
      cli('run', TASKS, 'flaky', '2'),
    ]);
    [ok, failed, retried] = results.map(runName) as [string, string, string];
  });

  it('get runs: a table of recent runs, newest first; --phase, --limit, --output json', async () => {
    const table = await cli('get', 'runs');
    exits(table, 0);
    assert.match(table.stdout, /^NAME +TASK +PHASE +STARTED +DURATION +ACTIONS$/m);
    assert.match(
      table.stdout,
      new RegExp(
        `^${ok} +cli_fixture\\.pipeline +succeeded +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +\\S+ +19/19$`,
        'm',
      ),
    );
    assert.match(table.stdout, new RegExp(`^${failed} +cli_fixture\\.boom +failed .* 3/3 \\(2 failed\\)$`, 'm'));
    const onlyFailed = parseJson<{ name: string; phase: string; counts: { total: number } }[]>(
      await cli('get', 'runs', '--phase', 'failed', '--output', 'json'),
    );
    assert.ok(onlyFailed.length >= 1);
    assert.ok(onlyFailed.every((r) => r.phase === 'failed'));
    assert.ok(onlyFailed.some((r) => r.name === failed && r.counts.total === 3));
    const one = parseJson<unknown[]>(await cli('get', 'runs', '--limit', '1', '-o', 'json'));
    assert.equal(one.length, 1);
  });

  it('get runs: bad --phase, --limit, --output are usage errors', async () => {
    const [phase, limit, output] = await Promise.all([
      cli('get', 'runs', '--phase', 'done'),
      cli('get', 'runs', '--limit', 'zero'),
      cli('get', 'runs', '--output', 'yaml'),
    ]);
    exits(phase, 2);
    assert.match(phase.stderr, /--phase: expected one of .*succeeded.*; received 'done'/);
    exits(limit, 2);
    assert.match(limit.stderr, /--limit: expected a positive integer; received 'zero'/);
    exits(output, 2);
    assert.match(output.stderr, /'yaml' is invalid\. Allowed choices are table, json/);
  });

  it('get run: the record and the tree, with the map and the group folded into one line each', async () => {
    const r = await cli('get', 'run', ok);
    exits(r, 0);
    assert.match(r.stdout, new RegExp(`^run +${ok}$`, 'm'));
    assert.match(r.stdout, /^phase +succeeded$/m);
    assert.match(r.stdout, /^actions +19: 19\/19 done {2}0 running {2}0 failed {2}0 cached$/m);
    assert.match(r.stdout, /^✓ pipeline a0 /m);
    assert.match(r.stdout, /^├─ ✓ double [0-9a-z]+ +\d+ms$/m);
    assert.match(r.stdout, /^├─ ✓ prepare +█{20} {2}3\/3 done {2}0 running {2}0 failed {2}0 cached/m);
    assert.match(r.stdout, /^├─ ✓ cli_fixture\.square_map +█{20} {2}8\/8 done/m);
    assert.match(r.stdout, /^└─ ✓ sleepy ×6 +█{20} {2}6\/6 done/m);
    const json = parseJson<{
      run: { name: string };
      counts: { total: number };
      tree: { action: { name: string }; children: { kind: string; label?: string }[] };
    }>(await cli('get', 'run', ok, '-o', 'json'));
    assert.equal(json.run.name, ok);
    assert.equal(json.counts.total, 19);
    assert.equal(json.tree.action.name, 'a0');
    assert.deepEqual(
      json.tree.children.map((c) => c.kind),
      ['action', 'fold', 'fold', 'fold'],
    );
  });

  it('get run of a failed run shows the error and the failing action', async () => {
    const r = await cli('get', 'run', failed);
    exits(r, 0);
    assert.match(r.stdout, /^phase +failed$/m);
    assert.match(r.stdout, /^error +ValueError: cannot handle x \(action [0-9a-z]+\)$/m);
    assert.match(r.stdout, /✗ explode [0-9a-z]+ +\d+ms {2}ValueError: cannot handle x/);
  });

  it('get action: the record, the attempts and the error', async () => {
    const r = await cli('get', 'action', retried, 'a0');
    exits(r, 0);
    assert.match(r.stdout, /^task +cli_fixture\.flaky \(flaky\)$/m);
    assert.match(r.stdout, /^attempts +3$/m);
    assert.match(r.stdout, /^ATTEMPT +PHASE +STARTED +DURATION +WORKER +ERROR$/m);
    // The worker of a local run's attempts is the process that ran it: the `flyte run` that made the run.
    assert.match(r.stdout, /^1 +failed .* \S+:\d+ +Error: attempt 1 fails$/m);
    assert.match(r.stdout, /^3 +succeeded /m);
    const json = parseJson<{ action: { attempts: number }; attempts: { phase: string; worker: string | null }[] }>(
      await cli('get', 'action', retried, 'a0', '-o', 'json'),
    );
    assert.equal(json.action.attempts, 3);
    assert.equal(new Set(json.attempts.map((a) => a.worker)).size, 1, 'one process ran every attempt');
    assert.match(json.attempts[0]?.worker ?? '', /^.+:\d+$/);
    assert.deepEqual(
      json.attempts.map((a) => a.phase),
      ['failed', 'failed', 'succeeded'],
    );
  });

  it('get io: decoded inputs and outputs of the root or of one action', async () => {
    const r = await cli('get', 'io', ok);
    exits(r, 0);
    assert.match(r.stdout, /^inputs +\[8\]$/m);
    assert.match(r.stdout, /^outputs +\{/m);
    const json = parseJson<{ action: string; inputs: unknown; outputs: { first: number } }>(
      await cli('get', 'io', ok, 'a0', '-o', 'json'),
    );
    assert.equal(json.action, 'a0');
    assert.deepEqual(json.inputs, [8]);
    assert.equal(json.outputs.first, 16);
    const failedIo = await cli('get', 'io', failed);
    assert.match(failedIo.stdout, /^error +ValueError: cannot handle x$/m);
  });

  it('get logs: empty runs say so on stderr; --output json gives the lines', async () => {
    const r = await cli('get', 'logs', ok);
    exits(r, 0);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`no logs for run ${ok}`));
    assert.deepEqual(parseJson<unknown[]>(await cli('get', 'logs', ok, '-o', 'json')), []);
  });

  it('an unknown run or action: exit 1 saying where it looked', async () => {
    const [run, action, io, logs] = await Promise.all([
      cli('get', 'run', 'no-such-run'),
      cli('get', 'action', ok, 'zzz'),
      cli('get', 'io', 'no-such-run'),
      cli('get', 'logs', ok, 'zzz'),
    ]);
    for (const r of [run, io]) {
      exits(r, 1);
      assert.match(r.stderr, new RegExp(`no run named 'no-such-run' in ${storeShown(root)}`));
    }
    for (const r of [action, logs]) {
      exits(r, 1);
      assert.match(r.stderr, new RegExp(`run '${ok}' has no action 'zzz'`));
    }
  });
});

describe('flyte abort, rerun, delete', () => {
  it('abort run: a run that ended is left alone; an unknown run is exit 1', async () => {
    const done = runName(await cli('run', TASKS, 'double', '1'));
    const r = await cli('abort', 'run', done);
    exits(r, 0);
    assert.match(r.stdout, new RegExp(`run ${done} already ended \\(succeeded\\); nothing to abort`));
    const unknown = await cli('abort', 'run', 'no-such-run');
    exits(unknown, 1);
    assert.match(unknown.stderr, /no run named no-such-run/);
  });

  it('rerun: runs the root again with the recorded inputs and follows it', async () => {
    const first = await cli('run', TASKS, 'add', '2', '3');
    const r = await cli('rerun', runName(first), '--name', 'rerun-of-add');
    exits(r, 0);
    assert.equal(runName(r), 'rerun-of-add');
    assert.match(r.stdout, /^outputs: 5$/m);
    const json = parseJson<{ outputs: unknown }>(await cli('rerun', runName(first), '--json'));
    assert.equal(json.outputs, 5);
  });

  it('rerun: an unknown run is exit 1; --recover with --name is bad usage', async () => {
    const unknown = await cli('rerun', 'no-such-run');
    exits(unknown, 1);
    assert.match(unknown.stderr, /cannot rerun no-such-run: no run named no-such-run/);
    const done = runName(await cli('run', TASKS, 'double', '1'));
    const both = await cli('rerun', done, '--recover', '--name', 'x-1');
    exits(both, 2);
    assert.match(both.stderr, /`name` cannot be combined with `recover`/);
  });

  it('delete local-cache: forgets cached outputs, so the next run computes again', async () => {
    const dir = tempDir();
    const run = (...args: string[]): Promise<CliResult> => runCli(args, { root: dir });
    exits(await run('run', TASKS, 'cachedTriple', '3'), 0);
    const cached = await run('run', '--json', TASKS, 'cachedTriple', '3');
    assert.equal(parseJson<{ counts: { cached: number } }>(cached).counts.cached, 1);
    const r = await run('delete', 'local-cache');
    exits(r, 0);
    assert.match(r.stdout, new RegExp(`^deleted 1 cache entry from ${storeShown(dir)}$`, 'm'));
    const after = await run('run', '--json', TASKS, 'cachedTriple', '3');
    assert.equal(parseJson<{ counts: { cached: number } }>(after).counts.cached, 0);
  });
});

describe('configuration: flags > environment > config file', { concurrency: PARALLEL }, () => {
  const rootsAreFiles = sqliteOnly('checks the flyte.db file each root setting leads to');
  it('reads root from flyte.config.json, FLYTE_ROOT over it, --root over both', { skip: rootsAreFiles }, async () => {
    const project = tempDir();
    writeFileSync(
      join(project, 'flyte.config.json'),
      JSON.stringify({ root: 'from-file', uiUrl: 'http://ui.example:9000' }),
    );
    const envRoot = join(project, 'from-env');
    const flagRoot = join(project, 'from-flag');
    const opts = { cwd: project };
    const fromFile = await runCli(['run', TASKS, 'double', '1'], opts);
    exits(fromFile, 0);
    assert.ok(existsSync(join(project, 'from-file', 'flyte.db')));
    assert.match(fromFile.stdout, /^url http:\/\/ui\.example:9000\/runs\//m);
    exits(await runCli(['run', TASKS, 'double', '1'], { ...opts, root: envRoot }), 0);
    assert.ok(existsSync(join(envRoot, 'flyte.db')));
    exits(await runCli(['run', '--root', flagRoot, TASKS, 'double', '1'], { ...opts, root: envRoot }), 0);
    assert.ok(existsSync(join(flagRoot, 'flyte.db')));
    const listed = await runCli(['get', 'runs', '-o', 'json', '--root', flagRoot], opts);
    assert.equal(parseJson<unknown[]>(listed).length, 1);
    const fromGlobal = await runCli(['--root', envRoot, 'get', 'runs', '-o', 'json'], opts);
    assert.equal(parseJson<unknown[]>(fromGlobal).length, 1);
  });

  it('reads .flyte/config.json, and --config FILE', async () => {
    const project = tempDir();
    mkdirSync(join(project, '.flyte'));
    writeFileSync(join(project, '.flyte', 'config.json'), JSON.stringify({ uiUrl: 'http://hidden.example' }));
    writeFileSync(join(project, 'other.json'), JSON.stringify({ uiUrl: 'http://other.example' }));
    const hidden = await runCli(['run', TASKS, 'double', '1'], { cwd: project });
    assert.match(hidden.stdout, /^url http:\/\/hidden\.example\/runs\//m);
    const named = await runCli(['run', '--config', 'other.json', TASKS, 'double', '1'], { cwd: project });
    assert.match(named.stdout, /^url http:\/\/other\.example\/runs\//m);
  });

  it('a bad config file or store is bad usage, naming the problem', async () => {
    const project = tempDir();
    writeFileSync(join(project, 'flyte.config.json'), JSON.stringify({ rooot: 'x' }));
    const key = await runCli(['get', 'runs'], { cwd: project });
    exits(key, 2);
    assert.match(key.stderr, /flyte\.config\.json: unknown key 'rooot'; expected root, store, engine, uiUrl/);
    writeFileSync(join(project, 'flyte.config.json'), '{ not json');
    const json = await runCli(['get', 'runs'], { cwd: project });
    exits(json, 2);
    assert.match(json.stderr, /flyte\.config\.json: expected JSON/);
    const missing = await runCli(['get', 'runs', '--config', 'nope.json'], { cwd: project });
    exits(missing, 2);
    assert.match(missing.stderr, /config file not found: .*nope\.json/);
    const store = await runCli(['get', 'runs', '--store', 'bogus:thing'], { root: tempDir() });
    exits(store, 2);
    assert.match(
      store.stderr,
      /cannot open the run store bogus:thing \(from --store\): store must be .*received 'bogus:thing'/,
    );
  });

  it(
    'a store that cannot be opened: exit 2, one line naming the store and the setting it came from',
    { skip: sqliteOnly('SQLite files that are not databases; cli-postgres covers an unreachable Postgres') },
    async () => {
      const project = tempDir();
      const file = join(project, 'regular-file');
      writeFileSync(file, 'not a database, and not a directory either\n');
      const oneLine = (r: CliResult, pattern: RegExp): void => {
        exits(r, 2);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
        assert.match(r.stderr.trimEnd(), pattern);
      };
      const esc = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      const [underFile, notDb, fromConfig, fromRoot] = await Promise.all([
        runCli(['get', 'runs', '--store', `sqlite:${file}/x.db`], { cwd: project }),
        runCli(['get', 'runs'], { cwd: project, env: { FLYTE_STORE: `sqlite:${file}` } }),
        (async () => {
          const configured = tempDir();
          writeFileSync(join(configured, 'flyte.config.json'), JSON.stringify({ store: `sqlite:${file}` }));
          return runCli(['get', 'runs'], { cwd: configured });
        })(),
        runCli(['run', TASKS, 'double', '1'], { cwd: project, root: file }),
      ]);
      oneLine(
        underFile,
        new RegExp(`^flyte: error: cannot open the run store sqlite:${esc(file)}/x\\.db \\(from --store\\): \\S`),
      );
      oneLine(
        notDb,
        new RegExp(
          `^flyte: error: cannot open the run store sqlite:${esc(file)} \\(from FLYTE_STORE\\): file is not a database$`,
        ),
      );
      oneLine(fromConfig, /\(from "store" in \S+flyte\.config\.json\): file is not a database$/);
      oneLine(
        fromRoot,
        new RegExp(
          `^flyte: error: cannot open the run store sqlite:${esc(file)}/flyte\\.db \\(from the default store under FLYTE_ROOT\\): `,
        ),
      );
    },
  );
});

describe('flyte --help, --version, unknown commands', { concurrency: PARALLEL }, () => {
  it('--version prints the package version', async () => {
    const r = await cli('--version');
    exits(r, 0);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('--help of every command, with examples', async () => {
    const commands = [
      [],
      ['run'],
      ['get'],
      ['get', 'runs'],
      ['get', 'run'],
      ['get', 'action'],
      ['get', 'io'],
      ['get', 'logs'],
      ['abort'],
      ['abort', 'run'],
      ['abort', 'action'],
      ['rerun'],
      ['delete'],
      ['delete', 'local-cache'],
    ];
    const results = await Promise.all(commands.map((c) => cli(...c, '--help')));
    results.forEach((r, i) => {
      const what = `flyte ${commands[i]!.join(' ')} --help`;
      assert.equal(r.code, 0, what);
      assert.match(r.stdout, /^Usage: flyte/m, what);
      assert.match(r.stdout, /Examples:\n {2}\$ flyte /, what);
    });
    assert.match(results[1]!.stdout, /Ctrl-C aborts the run/);
    assert.match(
      results[3]!.stdout.replace(/\s+/g, ' '),
      /--phase <phase> only runs in this phase \(queued, running, succeeded, failed, aborted, timed_out, orphaned\)/,
    );
    assert.match(results[0]!.stdout, /Exit codes: 0 ok, 1 failed run or not found, 2 bad usage, 130 interrupted/);
  });

  it('an unknown command or option, or no command at all: exit 2 with usage', async () => {
    const [command, option, nothing] = await Promise.all([cli('frobnicate'), cli('get', 'runs', '--frob'), cli()]);
    exits(command, 2);
    assert.match(command.stderr, /^flyte: error: unknown command 'frobnicate'$/m);
    exits(option, 2);
    assert.match(option.stderr, /^flyte: error: unknown option '--frob'$/m);
    const missing = await cli('get', 'run');
    exits(missing, 2);
    assert.match(missing.stderr, /^flyte: error: missing required argument 'name'$/m);
    exits(nothing, 2);
    assert.match(nothing.stderr, /^Usage: flyte/m);
  });
});
