/**
 * The doc checks of issue 16: `scripts/check-docs.ts` passes on the real `docs/`, and fails, at the right page
 * and line, on pages that break each rule (a `ts` block that does not compile, a runnable block whose output
 * differs, a broken link, a broken anchor); `npm run docs` (TypeDoc with typedoc.json) builds the reference
 * without a warning, and the same configuration fails on an undocumented export and on a broken `{@link}`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkDocs, slug, type DocProblem } from '../scripts/check-docs.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TYPEDOC = path.join(REPO, 'node_modules', 'typedoc', 'bin', 'typedoc');
const FENCE = '```';

const temps: string[] = [];
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/** Writes `pages` (name to lines) into a fresh docs folder, with a `../examples/x.ts` beside it. */
function docsFixture(pages: Record<string, readonly string[]>): string {
  const root = tempDir('flyte-docs-fixture-');
  const docs = path.join(root, 'docs');
  mkdirSync(docs);
  mkdirSync(path.join(root, 'examples'));
  writeFileSync(path.join(root, 'examples', 'x.ts'), 'export {};\n');
  for (const [name, lines] of Object.entries(pages)) writeFileSync(path.join(docs, name), `${lines.join('\n')}\n`);
  return docs;
}

/** Runs a command to its end: exit code and output. */
async function exec(args: readonly string[], cwd = REPO): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  return { code, out };
}

const show = (problems: readonly DocProblem[]): string =>
  problems.map((p) => `${path.basename(p.file)}:${p.line}: ${p.message}`).join('\n');

describe('docs', { concurrency: true }, () => {
  it('the real docs/ pass: every page, its ts blocks, runnable blocks and links', async () => {
    const report = await checkDocs();
    assert.equal(report.problems.length, 0, show(report.problems));
    assert.ok(report.pages.includes(path.join(REPO, 'docs', 'tracing.md')), report.pages.join(', '));
    assert.ok(report.tsBlocks >= 1, `ts blocks checked: ${report.tsBlocks}`);
    assert.ok(report.links >= 1, `links checked: ${report.links}`);
  });

  it('passes good pages and fails each broken rule at its page and line', async () => {
    const docs = docsFixture({
      'good.md': [
        '# Good', // 1
        '',
        '## The cache key', // 3
        '',
        `## \`flyte.map\` vs \`Promise.all\`: when to use which`, // 5
        '',
        'See [the key](#the-cache-key), [the table](good.md#flytemap-vs-promiseall-when-to-use-which),',
        '[the other page](other.md), [an example](../examples/x.ts) and [a site](https://example.com/nope).',
        '',
        `${FENCE}ts runnable`, // 10
        "import { existsSync } from 'node:fs';",
        "import * as flyte from 'flyte-ts';",
        '',
        "const env = new flyte.TaskEnvironment({ name: 'docs_fixture' });",
        'export const double = env.task(async function double(x: number) {',
        '  return x * 2;',
        '});',
        'export const main = env.task(async function main(xs: number[]) {',
        '  return flyte.map(double, xs, { concurrency: 2, returnExceptions: false });',
        '});',
        'const run = await flyte.run(main, [1, 2, 3]);',
        'console.log(await run.outputs());',
        "console.log('state in the fresh cwd:', existsSync('.flyte'));",
        'await flyte.shutdown();',
        FENCE,
        '',
        `${FENCE}text output`,
        '[ 2, 4, 6 ]',
        'state in the fresh cwd: true   ',
        FENCE,
        '',
        '- a block in a list item, with the same names as the one above (each block is its own module):',
        '',
        `  ${FENCE}ts`,
        "  import * as flyte from 'flyte-ts';",
        "  const env = new flyte.TaskEnvironment({ name: 'other' });",
        '  declare function fetchPage(u: string): Promise<string>;',
        '  export const page = env.task(fetchPage);',
        `  ${FENCE}`,
        '',
        `${FENCE}python`,
        'this is not checked = (',
        FENCE,
      ],
      'other.md': ['# Other', '', 'Back to [good](good.md#good).'],
      'compile.md': [
        '# Compile', // 1
        '',
        `${FENCE}ts`, // 3
        "import * as flyte from 'flyte-ts';",
        '',
        "const n: number = 'one';", // 6
        'flyte.map(n);', // 7
        FENCE,
        '',
        `${FENCE}ts unchecked`, // 10
        'whatever(',
        FENCE,
        '',
        '- in a list item:', // 14
        '',
        `  ${FENCE}ts`, // 16
        '  const s: string = 1;', // 17
        `  ${FENCE}`,
      ],
      'output.md': [
        '# Output', // 1
        '',
        `${FENCE}ts runnable`, // 3
        "console.log('received');",
        FENCE,
        '',
        `${FENCE}text output`, // 7
        'expected',
        FENCE,
        '',
        `${FENCE}ts runnable`, // 11
        "throw new Error('boom');",
        FENCE,
        '',
        `${FENCE}text output`,
        FENCE,
      ],
      'links.md': [
        '# Links', // 1
        '',
        'A [missing page](missing.md) and a [missing file](../examples/nope.ts).', // 3
        '',
        'A [broken anchor](good.md#the-cache-keys) and [one here](#nowhere).', // 5
      ],
    });
    // A page whose links only are checked (the repository's README.md, for the real docs/): not its blocks.
    const readme = path.join(path.dirname(docs), 'README.md');
    writeFileSync(
      readme,
      [
        '# Readme',
        '',
        '[ok](docs/good.md#the-cache-key), [gone](docs/gone.md)',
        '',
        `${FENCE}ts`,
        'not checked(',
        FENCE,
        '',
      ].join('\n'),
    );
    const all = await checkDocs({ docsDir: docs, linkOnlyPages: [readme] });
    const inReadme = all.problems.filter((p) => p.file === readme);
    assert.deepEqual(
      inReadme.map((p) => `${p.line}: ${p.message}`),
      ["3: link 'docs/gone.md': docs/gone.md does not exist"],
    );
    const report = { ...all, problems: all.problems.filter((p) => p.file !== readme) };
    const got = report.problems.map((p) => ({ at: `${path.basename(p.file)}:${p.line}`, message: p.message }));
    const expected: [string, RegExp][] = [
      [
        'compile.md:6',
        /^ts block at line 3 does not compile: TS2322: Type 'string' is not assignable to type 'number'/,
      ],
      ['compile.md:7', /^ts block at line 3 does not compile: TS2554: /],
      ['compile.md:10', /^block tagged 'ts unchecked': expected 'ts' or 'ts runnable'/],
      [
        'compile.md:17',
        /^ts block at line 16 does not compile: TS2322: Type 'number' is not assignable to type 'string'/,
      ],
      ['links.md:3', /^link 'missing\.md': missing\.md does not exist$/],
      ['links.md:3', /^link '\.\.\/examples\/nope\.ts': \.\.\/examples\/nope\.ts does not exist$/],
      [
        'links.md:5',
        /^link 'good\.md#the-cache-keys': no heading with the anchor '#the-cache-keys' in good\.md \(near: #the-cache-key\)$/,
      ],
      ['links.md:5', /^link '#nowhere': no heading with the anchor '#nowhere' in links\.md$/],
      [
        'output.md:3',
        /^ts runnable block at line 3 printed other than its text output block \(line 7\):\n {2}expected:\n {4}expected\n {2}received:\n {4}received$/,
      ],
      ['output.md:11', /^ts runnable block at line 11 exited with 1; its stderr:\n[^]*Error: boom/],
    ];
    assert.equal(got.length, expected.length, show(report.problems));
    expected.forEach(([at, message], i) => {
      assert.equal(got[i]!.at, at, show(report.problems));
      assert.match(got[i]!.message, message, show(report.problems));
    });
    assert.equal(report.tsBlocks, 6);
    assert.equal(report.runnableBlocks, 3);
  });

  it('npm run docs:check exits non-zero on a failing page and names it', async () => {
    const docs = docsFixture({ 'a.md': ['# A', '', 'To [b](b.md).'] });
    const { code, out } = await exec(['--conditions=flyte-source', '--import', 'tsx', 'scripts/check-docs.ts', docs]);
    assert.equal(code, 1, out);
    assert.match(out, /a\.md:3: link 'b\.md': b\.md does not exist/);
  });

  it('anchors follow GitHub: lower case, punctuation dropped, spaces to hyphens', () => {
    assert.equal(slug('`flyte.map` vs `Promise.all`: when to use which'), 'flytemap-vs-promiseall-when-to-use-which');
    assert.equal(slug('What survives what (faults)'), 'what-survives-what-faults');
    assert.equal(slug('sync → sync chains'), 'sync--sync-chains');
    assert.equal(slug('return_exceptions'), 'return_exceptions');
  });

  it('npm run docs: TypeDoc builds the reference with no warning', async () => {
    const out = tempDir('flyte-typedoc-');
    const result = await exec([TYPEDOC, '--options', 'typedoc.json', '--out', out]);
    assert.equal(result.code, 0, result.out);
    assert.doesNotMatch(result.out, /\[warning\]|\[error\]/, result.out);
    assert.ok(existsSync(path.join(out, 'index.html')), result.out);
  });

  it('the TypeDoc configuration fails on an undocumented export and on a broken {@link}', async () => {
    const dir = tempDir('flyte-typedoc-fixture-');
    writeFileSync(
      path.join(dir, 'index.ts'),
      [
        '/** Documented, with a link to {@link Nowhere}. */',
        'export function documented(): number {',
        '  return 1;',
        '}',
        'export const undocumented = 2;',
        '',
      ].join('\n'),
    );
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'NodeNext', skipLibCheck: true },
        files: ['index.ts'],
      }),
    );
    // The repository's configuration, over the fixture instead of src/ (none of src/'s types to leave out here).
    writeFileSync(
      path.join(dir, 'typedoc.json'),
      JSON.stringify({
        extends: [path.join(REPO, 'typedoc.json')],
        entryPoints: ['index.ts'],
        tsconfig: 'tsconfig.json',
        out: 'out',
        intentionallyNotExported: [],
      }),
    );
    const result = await exec([TYPEDOC, '--options', 'typedoc.json'], dir);
    assert.notEqual(result.code, 0, result.out);
    assert.match(result.out, /undocumented \(Variable\).*does not have any documentation/, result.out);
    assert.match(result.out, /Failed to resolve link to "Nowhere"/, result.out);
  });
});
