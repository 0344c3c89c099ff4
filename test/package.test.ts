/**
 * The package as a user gets it: `npm pack`, the tarball installed (`npm install <tarball>`) into a fresh project
 * outside the repository, then examples run there the ways the README shows them (`npx tsx FILE`,
 * `npx flyte run FILE TASK`), a compiled example with `node --enable-source-maps`, and `flyte rerun` of a run
 * made there. In that project flyte-ts is loaded from `dist/`, with source maps on under tsx, unlike the other
 * tests, which load `src/` through the `flyte-source` condition.
 *
 * The pack, the install and the example runs happen once, in `before`. Nothing of the repository's environment
 * reaches the project: no NODE_OPTIONS, no FLYTE_* or npm_* variables, no `node_modules/.bin` on the PATH.
 *
 * better-sqlite3 compiles from source here, which takes minutes: the third-party dependencies of a finished
 * install (never flyte-ts itself) are kept under os.tmpdir(), keyed by package.json's dependencies and the Node
 * version, and a later run starts its fresh project with them before it installs the tarball.
 * `FLYTE_PACKAGE_TEST_FRESH=1` installs everything from scratch (and refreshes what is kept).
 *
 * On a Node with `node:sqlite` (>= 22.13: the Node running the tests, else the binary `FLYTE_TEST_NODE24` names),
 * the tarball is also installed into a second project, from scratch, with no C++ compiler, make or Python on the
 * PATH (only node, npm, npx and sh): better-sqlite3, an optional dependency, fails to build and is left out, and
 * a run on the embedded store works on the built-in driver. Elsewhere that case is skipped, saying why.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { readdirSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pMap from 'p-map';
import { nodeSqliteAvailable } from '../src/store/sqlite/driver.js';
import { ensureBuilt, REPO } from './support/cli.js';
import { dropSchema, freshSchema, postgresSkip, urlWithSchema } from './support/postgres.js';
import { deletePrefix, redisSkip, urlWithPrefix } from './support/redis.js';

/** The pack and the install (better-sqlite3 may build from source on a slow machine). */
const INSTALL_TIMEOUT_MS = 15 * 60_000;
/** One command in the project. */
const COMMAND_TIMEOUT_MS = 120_000;

/** The examples run in the project, copied from `examples/` unchanged (they import 'flyte-ts'). */
const SYNC_EXAMPLE = 'sync-map.ts';
const ASYNC_EXAMPLE = 'async-chain.ts';
/** The sync example compiled to JavaScript with a source map. */
const COMPILED_SYNC_EXAMPLE = path.join('build', 'sync-map.js');
const SYNC_RESULT = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20];
const ASYNC_RESULT = [
  { id: 1, total: 6 },
  { id: 10, total: 33 },
  { id: 100, total: 303 },
];

/** The commands run in the project in `before`, a few at a time, by the name the tests look them up by. */
const COMMANDS = {
  tsxSync: ['npx', '--no-install', 'tsx', SYNC_EXAMPLE],
  tsxAsync: ['npx', '--no-install', 'tsx', ASYNC_EXAMPLE],
  compiledSync: ['node', '--enable-source-maps', COMPILED_SYNC_EXAMPLE],
  flyteRunSync: ['npx', '--no-install', 'flyte', 'run', '--json', SYNC_EXAMPLE, 'main', '--items', '[1,2,3]'],
  flyteRunAsync: ['npx', '--no-install', 'flyte', 'run', '--json', ASYNC_EXAMPLE, 'main', '--ids', '[1,10]'],
} as const;

let work = '';
let project = '';
let installed = '';
let packed: PackResult;
const outcomes = new Map<keyof typeof COMMANDS, CommandResult>();

interface PackResult {
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

interface CommandResult {
  readonly command: string;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of every command in the project: the caller's, less what would make it load the repository's
 * code or settings instead of the installed package's.
 */
function projectEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(NODE_OPTIONS|NODE_PATH|NODE_TEST_CONTEXT|INIT_CWD|FLYTE_.*|TSX_.*|npm_.*)$/i.test(key)) continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => !dir.includes(`node_modules${path.sep}.bin`))
    .join(path.delimiter);
  env.FLYTE_ROOT = path.join(work, 'state');
  env.NO_COLOR = '1';
  return env;
}

/** Runs `command ...args` in `cwd` to its end (its exit code is the caller's to check). */
function run(
  command: string,
  args: readonly string[],
  cwd = project,
  timeoutMs = COMMAND_TIMEOUT_MS,
  extraEnv: NodeJS.ProcessEnv = {},
) {
  const shown = [command, ...args].join(' ');
  return new Promise<CommandResult>((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd, env: { ...projectEnv(), ...extraEnv }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') {
          reject(new Error(`${shown}: ${err.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        } else resolve({ command: shown, code: err === null ? 0 : (err.code as number), stdout, stderr });
      },
    );
  });
}

/** Fails unless the command exited 0. */
function assertOk(result: CommandResult): CommandResult {
  assert.equal(
    result.code,
    0,
    `${result.command} exited ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
  );
  return result;
}

/** Runs a command that must exit 0. */
async function ok(command: string, args: readonly string[], cwd = project, timeoutMs = COMMAND_TIMEOUT_MS) {
  return assertOk(await run(command, args, cwd, timeoutMs));
}

/** What one of {@link COMMANDS} did; fails unless it exited 0. */
function outcome(name: keyof typeof COMMANDS): CommandResult {
  const result = outcomes.get(name);
  assert.ok(result !== undefined, `${name} did not run`);
  return assertOk(result);
}

/** The value after `label: ` on the line of `stdout` that starts with it. */
function line(result: CommandResult, label: string): string {
  const found = result.stdout.split('\n').find((l) => l.startsWith(`${label}: `));
  assert.ok(found !== undefined, `no "${label}:" line\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  return found.slice(label.length + 2);
}

/** The module a run recorded (what `flyte rerun` and pool threads import), from `flyte get run`. */
async function recordedModule(runName: string): Promise<unknown> {
  const got = await ok('npx', ['--no-install', 'flyte', 'get', 'run', runName, '-o', 'json']);
  return (JSON.parse(got.stdout) as { run: { module?: unknown } }).run.module;
}

/** Every file under `dir`, recursively. */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? walk(full) : [full];
  });
}

/** Where the third-party dependencies of a finished install are kept, keyed by what decides what they are. */
function keptDependencies(): string {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies?: unknown };
  const key = createHash('sha256')
    .update(JSON.stringify([pkg.dependencies, process.version, process.platform, process.arch]))
    .digest('hex')
    .slice(0, 16);
  return path.join(os.tmpdir(), `flyte-ts-package-test-deps-${key}`);
}

/** Keeps the project's `node_modules` less flyte-ts, for the next run (written aside, then renamed into place). */
function keepDependencies(target: string): void {
  const aside = `${target}.${process.pid}`;
  try {
    rmSync(target, { recursive: true, force: true });
    cpSync(path.join(project, 'node_modules'), aside, { recursive: true, verbatimSymlinks: true });
    for (const own of ['flyte-ts', path.join('.bin', 'flyte'), '.package-lock.json']) {
      rmSync(path.join(aside, own), { recursive: true, force: true });
    }
    renameSync(aside, target);
  } catch {
    // Only a speed-up for the next run: a concurrent run may have kept its own copy first.
    rmSync(aside, { recursive: true, force: true });
  }
}

before(
  async () => {
    ensureBuilt();
    work = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'flyte-ts-package-')));
    // dist/ is fresh (ensureBuilt); packing without `prepare` keeps other test files' dist/ from being rebuilt
    // under them.
    const pack = await ok('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], REPO);
    packed = (JSON.parse(pack.stdout) as PackResult[])[0] as PackResult;
    project = path.join(work, 'project');
    mkdirSync(project);
    writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({
        name: 'flyte-ts-package-test',
        private: true,
        type: 'module',
        allowScripts: { 'better-sqlite3': true, esbuild: true },
      }),
    );
    const kept = keptDependencies();
    const fresh = process.env.FLYTE_PACKAGE_TEST_FRESH === '1' || !existsSync(kept);
    if (!fresh) cpSync(kept, path.join(project, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    await ok(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, packed.filename)],
      project,
      INSTALL_TIMEOUT_MS,
    );
    if (fresh) keepDependencies(kept);
    installed = path.join(project, 'node_modules', 'flyte-ts');
    for (const file of [SYNC_EXAMPLE, ASYNC_EXAMPLE]) {
      copyFileSync(path.join(REPO, 'examples', file), path.join(project, file));
    }
    await ok('npx', [
      '--no-install',
      'esbuild',
      SYNC_EXAMPLE,
      '--format=esm',
      '--platform=node',
      '--sourcemap',
      `--outfile=${COMPILED_SYNC_EXAMPLE}`,
    ]);
    await pMap(
      Object.entries(COMMANDS) as [keyof typeof COMMANDS, readonly string[]][],
      async ([name, [command, ...args]]) => outcomes.set(name, await run(command as string, args)),
      { concurrency: 2 },
    );
  },
  { timeout: INSTALL_TIMEOUT_MS + 5 * 60_000 },
);

after(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds LICENSE, CHANGELOG.md, README.md, dist/ and src/, and no tests', () => {
    const files = new Set(packed.files.map((f) => f.path));
    for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json', 'dist/index.js', 'dist/cli/main.js']) {
      assert.ok(files.has(file), `the tarball lacks ${file}`);
    }
    assert.ok(files.has('src/index.ts'), 'the tarball lacks src/ (the source maps and the UI assets point into it)');
    assert.ok(files.has('src/ui/static/app.js'), 'the tarball lacks the UI assets under src/ui/static/');
    assert.deepEqual(
      [...files].filter((f) => /^(test|bench|examples|scripts)\//.test(f) || f.includes('node_modules/')),
      [],
    );
    assert.equal(lstatSync(installed).isSymbolicLink(), false, 'flyte-ts must be installed, not linked to the repo');
    assert.ok(readFileSync(path.join(installed, 'LICENSE'), 'utf8').includes('Apache License'));
  });

  it('leaves out its optional peer @opentelemetry/api: the examples below run without it', () => {
    const pkg = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as {
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    assert.equal(pkg.peerDependenciesMeta?.['@opentelemetry/api']?.optional, true);
    assert.equal(existsSync(path.join(installed, '..', '@opentelemetry', 'api')), false);
  });

  it('has source maps whose sources are all in the package', () => {
    const maps = walk(path.join(installed, 'dist')).filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 10, `expected the source maps of dist/; found ${maps.length}`);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources, sourceRoot } = JSON.parse(readFileSync(map, 'utf8')) as {
        sources: string[];
        sourceRoot?: string;
      };
      for (const source of sources) {
        const file = path.resolve(path.dirname(map), sourceRoot ?? '', source);
        if (!existsSync(file)) missing.push(`${path.relative(installed, map)} -> ${source}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it('has every file its exports map and bin name', () => {
    const pkg = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as {
      exports: Record<string, string | Record<string, string>>;
      bin: Record<string, string>;
    };
    const targets = [
      ...Object.values(pkg.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t))),
      ...Object.values(pkg.bin),
    ];
    assert.deepEqual(
      targets.filter((t) => !existsSync(path.join(installed, t))),
      [],
    );
  });

  it('resolves every `flyte-ts` import of the TSDoc examples from the installed project', async () => {
    const specifiers = new Set<string>();
    for (const file of walk(path.join(installed, 'src')).filter((f) => f.endsWith('.ts'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/^\s*\*.*\bfrom '(flyte-ts(?:\/[^']*)?)'/gm)) {
        specifiers.add(m[1] as string);
      }
    }
    assert.ok(
      specifiers.has('flyte-ts'),
      `expected the examples to import 'flyte-ts'; found ${[...specifiers].join(', ')}`,
    );
    const script =
      'const failed = []; for (const s of JSON.parse(process.argv[1])) { try { await import(s); }' +
      ' catch (err) { failed.push(`${s}: ${err.code ?? err.message}`); } } console.log(JSON.stringify(failed));';
    const result = await ok('node', ['--input-type=module', '-e', script, JSON.stringify([...specifiers])]);
    assert.deepEqual(JSON.parse(result.stdout), []);
  });

  it("serves the UI from the installed package through 'flyte-ts/ui'", async () => {
    const script =
      "const { startUiServer } = await import('flyte-ts/ui');" +
      ' const ui = await startUiServer({ port: 0, log: () => undefined });' +
      " const statuses = []; for (const p of ['/', '/static/app.js']) statuses.push((await fetch(new URL(p, ui.url))).status);" +
      ' await ui.close(); console.log(JSON.stringify(statuses));';
    const result = await ok('node', ['--input-type=module', '-e', script]);
    assert.deepEqual(JSON.parse(result.stdout), [200, 200]);
  });
});

describe('examples in a project that installed the tarball', () => {
  it('runs a sync example with `npx tsx` (flyte-ts from dist/, source-mapped) and records its module', async () => {
    const result = outcome('tsxSync');
    assert.equal(line(result, 'result'), JSON.stringify(SYNC_RESULT));
    assert.equal(await recordedModule(line(result, 'run')), path.join(project, SYNC_EXAMPLE));
  });

  it('runs an async example with `npx tsx`', async () => {
    const result = outcome('tsxAsync');
    assert.equal(line(result, 'result'), JSON.stringify(ASYNC_RESULT));
    assert.equal(await recordedModule(line(result, 'run')), path.join(project, ASYNC_EXAMPLE));
  });

  it('runs a compiled sync example with `node --enable-source-maps` and records the compiled file', async () => {
    const result = outcome('compiledSync');
    assert.equal(line(result, 'result'), JSON.stringify(SYNC_RESULT));
    assert.equal(await recordedModule(line(result, 'run')), path.join(project, COMPILED_SYNC_EXAMPLE));
  });

  it('runs the sync and the async example with `npx flyte run`', () => {
    const sync = JSON.parse(outcome('flyteRunSync').stdout) as { outputs: unknown };
    assert.deepEqual(sync.outputs, [2, 4, 6]);
    const async = JSON.parse(outcome('flyteRunAsync').stdout) as { outputs: unknown };
    assert.deepEqual(async.outputs, ASYNC_RESULT.slice(0, 2));
  });

  it('reads a recorded run back from the installed package, whole and a page at a time (run.actions())', async () => {
    const original = line(outcome('tsxSync'), 'run');
    writeFileSync(
      path.join(project, 'read-back.mjs'),
      [
        "import * as flyte from 'flyte-ts';",
        'const run = await flyte.getRun(process.argv[2]);',
        'const all = await run.actions();',
        'const pages = [];',
        'for await (const page of run.actions().pages(2)) pages.push(page.map((a) => a.name));',
        'console.log(JSON.stringify({ all: all.map((a) => a.name), pages }));',
        'await flyte.shutdown();',
      ].join('\n'),
    );
    const result = await ok('node', ['read-back.mjs', original]);
    const got = JSON.parse(result.stdout.trim().split('\n').pop()!) as { all: string[]; pages: string[][] };
    assert.ok(got.all.length > 2, `the sync example records its children: ${got.all.join(', ')}`);
    assert.deepEqual(got.pages.flat(), got.all, 'the pages hold every action once, in creation order');
    assert.ok(got.pages.every((p) => p.length <= 2));
  });

  it('reruns the `npx tsx` sync run with `npx flyte rerun`', async () => {
    const original = line(outcome('tsxSync'), 'run');
    const result = await ok('npx', ['--no-install', 'flyte', 'rerun', '--json', original]);
    const rerun = JSON.parse(result.stdout) as { run: string; phase: string; outputs: unknown };
    assert.equal(rerun.phase, 'succeeded');
    assert.deepEqual(rerun.outputs, SYNC_RESULT);
    assert.equal(await recordedModule(rerun.run), path.join(project, SYNC_EXAMPLE));
  });
});

/**
 * The Node binary for the install without a compiler: this one if it has node:sqlite, else `FLYTE_TEST_NODE24`
 * (checked); otherwise why the case is skipped.
 */
function nodeWithSqlite(): { readonly node: string } | { readonly skip: string } {
  if (nodeSqliteAvailable()) return { node: process.execPath };
  const other = process.env['FLYTE_TEST_NODE24'];
  if (other === undefined || other === '') {
    return {
      skip:
        `this Node (${process.versions.node}) has no node:sqlite (Node >= 22.13); set FLYTE_TEST_NODE24 to the ` +
        'path of a newer node binary to run it',
    };
  }
  return { node: other };
}

/** The first `name` on the PATH, with its symbolic links resolved. */
function onPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    if (dir !== '' && existsSync(file)) return realpathSync(file);
  }
  throw new Error(`no ${name} on the PATH`);
}

const withSqlite = nodeWithSqlite();

describe(
  'an install on Node >= 22.13 with no C++ compiler',
  { skip: 'skip' in withSqlite ? withSqlite.skip : false },
  () => {
    let bare = '';
    let bin = '';
    let install: CommandResult & { readonly seconds: number };
    /** The environment of the bare project: only `bin` on the PATH, its own state directory. */
    const bareEnv = (): NodeJS.ProcessEnv => ({ PATH: bin, FLYTE_ROOT: path.join(work, 'bare-state') });

    before(
      async () => {
        if (!('node' in withSqlite)) return;
        bin = path.join(work, 'bare-bin');
        mkdirSync(bin);
        // npm runs install scripts with `sh`; node-gyp would need python, make and a compiler: none is here.
        const tools = { node: withSqlite.node, npm: onPath('npm'), npx: onPath('npx'), sh: realpathSync('/bin/sh') };
        for (const [name, target] of Object.entries(tools)) symlinkSync(target, path.join(bin, name));
        bare = path.join(work, 'bare-project');
        mkdirSync(bare);
        writeFileSync(
          path.join(bare, 'package.json'),
          JSON.stringify({ name: 'flyte-ts-bare-test', private: true, type: 'module' }),
        );
        copyFileSync(path.join(REPO, 'examples', SYNC_EXAMPLE), path.join(bare, SYNC_EXAMPLE));
        const started = Date.now();
        const result = await run(
          'npm',
          ['install', '--no-audit', '--no-fund', path.join(work, packed.filename)],
          bare,
          INSTALL_TIMEOUT_MS,
          bareEnv(),
        );
        install = { ...result, seconds: (Date.now() - started) / 1000 };
      },
      { timeout: INSTALL_TIMEOUT_MS + 60_000 },
    );

    it('has no compiler, make or python on the PATH, and the Node it was given', async () => {
      const probe = await run(
        'sh',
        ['-c', 'command -v cc gcc g++ c++ make python3 python'],
        bare,
        COMMAND_TIMEOUT_MS,
        bareEnv(),
      );
      assert.notEqual(probe.code, 0, `found a build tool: ${probe.stdout}`);
      assert.equal(probe.stdout.trim(), '');
      const version = await run('node', ['-p', 'process.versions.node'], bare, COMMAND_TIMEOUT_MS, bareEnv());
      assert.ok(
        nodeSqliteAvailable(assertOk(version).stdout.trim()),
        `node:sqlite needs Node >= 22.13: ${version.stdout}`,
      );
    });

    it('installs the tarball, leaving better-sqlite3 out when it cannot be built', (t) => {
      assertOk(install);
      t.diagnostic(`npm install took ${install.seconds.toFixed(1)} s`);
      const better = existsSync(path.join(bare, 'node_modules', 'better-sqlite3'));
      // A prebuilt binary may have been downloaded (prebuild-install, where GitHub is reachable): then it stays.
      t.diagnostic(better ? 'better-sqlite3 was installed from a prebuilt binary' : 'better-sqlite3 was left out');
      assert.ok(existsSync(path.join(bare, 'node_modules', 'flyte-ts', 'dist', 'index.js')));
    });

    it('runs an example on the embedded store, on node:sqlite where better-sqlite3 was left out', async () => {
      assertOk(install);
      const result = assertOk(
        await run('npx', ['--no-install', 'tsx', SYNC_EXAMPLE], bare, COMMAND_TIMEOUT_MS, bareEnv()),
      );
      assert.equal(line(result, 'result'), JSON.stringify(SYNC_RESULT));
      const runs = await run('npx', ['--no-install', 'flyte', 'get', 'runs', '-o', 'json'], bare, COMMAND_TIMEOUT_MS, {
        ...bareEnv(),
        FLYTE_SQLITE_DRIVER: 'node',
      });
      assert.deepEqual(
        (JSON.parse(assertOk(runs).stdout) as { name: string; phase: string }[]).map((r) => [r.name, r.phase]),
        [[line(result, 'run'), 'succeeded']],
        'node:sqlite reads the run back',
      );
    });

    it('says what to install when better-sqlite3 is chosen but missing', async (t) => {
      assertOk(install);
      if (existsSync(path.join(bare, 'node_modules', 'better-sqlite3'))) {
        t.skip('better-sqlite3 was installed from a prebuilt binary');
        return;
      }
      const result = await run('npx', ['--no-install', 'flyte', 'get', 'runs'], bare, COMMAND_TIMEOUT_MS, {
        ...bareEnv(),
        FLYTE_SQLITE_DRIVER: 'better-sqlite3',
      });
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /better-sqlite3 is not installed/);
      assert.match(result.stderr, /npm install better-sqlite3/);
      assert.match(result.stderr, /driver=node|FLYTE_SQLITE_DRIVER=node/);
    });
  },
);

const distributedSkip = (await postgresSkip()) || (await redisSkip());

describe('distributed mode in a project that installed the tarball', { skip: distributedSkip }, () => {
  const schema = freshSchema();
  const prefix = `flyte_test_package_${process.pid}`;
  /** What the README's Distributed section exports before `npx flyte worker` and `npx flyte run --remote`. */
  const services = { FLYTE_STORE: urlWithSchema(schema), FLYTE_ENGINE: urlWithPrefix(prefix) };
  const workers: { child: ChildProcess; output: () => string; exited: Promise<number | null> }[] = [];

  /**
   * `flyte worker --module …` in the project, resolved once it printed its status line. It is the bin `npx flyte
   * worker` runs, started directly: npx does not pass a SIGTERM on to it (Ctrl-C in a terminal signals both).
   */
  async function startProjectWorker(): Promise<void> {
    const child = spawn(
      path.join(project, 'node_modules', '.bin', 'flyte'),
      ['worker', '--module', SYNC_EXAMPLE, '--module', ASYNC_EXAMPLE, '--concurrency', '2'],
      { cwd: project, env: { ...projectEnv(), ...services }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    workers.push({ child, output: () => text, exited });
    for (const deadline = Date.now() + COMMAND_TIMEOUT_MS; !/flyte worker \S+: environments/.test(text);) {
      assert.ok(child.exitCode === null, `the worker exited (${child.exitCode}) before its status line:\n${text}`);
      assert.ok(Date.now() < deadline, `the worker printed no status line:\n${text}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  after(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await dropSchema(schema);
    await deletePrefix(prefix);
  });

  it('runs both examples on two `npx flyte worker` processes with `npx flyte run --remote`, then drains them', async () => {
    await Promise.all([startProjectWorker(), startProjectWorker()]);
    const [sync, async] = await Promise.all([
      run(
        'npx',
        ['--no-install', 'flyte', 'run', '--remote', '--json', SYNC_EXAMPLE, 'main', '--items', '[1,2,3]'],
        project,
        COMMAND_TIMEOUT_MS,
        services,
      ),
      run(
        'npx',
        ['--no-install', 'flyte', 'run', '--remote', '--json', ASYNC_EXAMPLE, 'main', '--ids', '[1,10]'],
        project,
        COMMAND_TIMEOUT_MS,
        services,
      ),
    ]);
    assert.deepEqual((JSON.parse(assertOk(sync).stdout) as { outputs: unknown }).outputs, [2, 4, 6]);
    assert.deepEqual((JSON.parse(assertOk(async).stdout) as { outputs: unknown }).outputs, ASYNC_RESULT.slice(0, 2));
    const runs = JSON.parse(
      assertOk(
        await run('npx', ['--no-install', 'flyte', 'get', 'runs', '-o', 'json'], project, COMMAND_TIMEOUT_MS, services),
      ).stdout,
    ) as { mode: string }[];
    assert.deepEqual(
      runs.map((r) => r.mode),
      ['remote', 'remote'],
    );
    // SIGTERM drains each worker: exit 0.
    for (const w of workers) w.child.kill('SIGTERM');
    const codes = await Promise.all(workers.map((w) => w.exited));
    assert.deepEqual(codes, [0, 0], workers.map((w) => w.output()).join('\n'));
  });
});
