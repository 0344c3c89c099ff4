/**
 * `npm run docs:check`: the checks that keep `docs/*.md` from rotting (issue 16), by the convention of docs/:
 *
 * - every fenced block tagged `ts` is type-checked, each block its own ES module, all of them in one TypeScript
 *   program with the repository's compiler options (strict; `flyte-ts` resolves to the sources through the
 *   package's `flyte-source` condition, as in the tests);
 * - every block tagged `ts runnable` is also run (`node --conditions=flyte-source --import tsx`, a fresh
 *   temporary directory as its cwd and state, no services), and its stdout must equal the `text output` block
 *   that follows it (trailing whitespace aside);
 * - every relative link or image of a page must name a file that exists, and a `#anchor` into a Markdown file
 *   must match one of its headings (GitHub's slugs).
 *
 * The pages are read with marked's lexer. Each problem names the page, the line and what failed (a compiler
 * diagnostic at the page's line it comes from); the script exits 1 when there is any.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { lexer, type Token, type Tokens } from 'marked';
import ts from 'typescript';
import { runTsx } from './run-tsx.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** A runnable block still running after this long is killed (the convention asks for less than 5 s). */
const RUN_TIMEOUT_MS = 30_000;
/** Runnable blocks run at once. */
const RUN_PARALLEL = 2;
/** Languages of the TypeScript family: a block tagged with one must be `ts` or `ts runnable` (none goes unchecked). */
const TS_FAMILY = /^(ts|typescript|tsx|mts|cts)$/;

/** One thing wrong with the docs, at a line of a page. */
export interface DocProblem {
  /** The page (or, for a compiler diagnostic outside the blocks, the source file), absolute. */
  readonly file: string;
  /** 1-based line in `file`. */
  readonly line: number;
  /** What failed, e.g. `ts block at line 12 does not compile: TS2304: Cannot find name 'x'.` */
  readonly message: string;
}

/** What {@link checkDocs} checked, and what it found. */
export interface DocsReport {
  /** The pages read. */
  readonly pages: readonly string[];
  /** `ts` blocks type-checked. */
  readonly tsBlocks: number;
  /** `ts runnable` blocks run. */
  readonly runnableBlocks: number;
  /** Relative links and images checked. */
  readonly links: number;
  /** Every problem found, by page and line. */
  readonly problems: readonly DocProblem[];
}

/** Options of {@link checkDocs}. */
export interface CheckDocsOptions {
  /** The folder whose `*.md` pages are checked. @default the repository's `docs/` */
  readonly docsDir?: string;
  /** Run the `ts runnable` blocks (type-checking and links are always checked). @default true */
  readonly run?: boolean;
  /**
   * Pages whose links (only: not their code blocks) are checked too.
   * @default the repository's README.md when `docsDir` is the default, else none
   */
  readonly linkOnlyPages?: readonly string[];
}

/** A fenced code block of a page. */
interface Block {
  readonly page: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The info string's words, e.g. `['ts', 'runnable']`. */
  readonly tags: readonly string[];
  readonly code: string;
}

/** A link or image of a page. */
interface Link {
  readonly page: string;
  readonly line: number;
  readonly href: string;
}

/** A page, lexed: its blocks, links and the anchors its headings define. */
interface Page {
  readonly file: string;
  readonly blocks: Block[];
  readonly links: Link[];
  readonly anchors: Set<string>;
}

/**
 * Checks the pages of `docsDir`: type-checks their `ts` blocks, runs their `ts runnable` blocks against their
 * `text output` blocks, and checks their links and anchors.
 *
 * @example
 * ```ts
 * const report = await checkDocs({ docsDir: 'docs' });
 * for (const p of report.problems) console.error(`${p.file}:${p.line}: ${p.message}`);
 * ```
 */
export async function checkDocs(options: CheckDocsOptions = {}): Promise<DocsReport> {
  const docsDir = path.resolve(options.docsDir ?? path.join(REPO, 'docs'));
  const files = readdirSync(docsDir)
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => path.join(docsDir, f));
  const pages = new Map<string, Page>();
  for (const file of files) pages.set(file, readPage(file));
  const problems: DocProblem[] = [];
  const blocks = [...pages.values()].flatMap((p) => p.blocks);
  const tsBlocks = blocks.filter((b) => TS_FAMILY.test(b.tags[0] ?? ''));
  for (const b of tsBlocks) {
    const [tag, ...flags] = b.tags;
    if (tag !== 'ts' || flags.some((f) => f !== 'runnable')) {
      problems.push({
        file: b.page,
        line: b.line,
        message: `block tagged '${b.tags.join(' ')}': expected 'ts' or 'ts runnable' (every TypeScript block is checked)`,
      });
    }
  }
  const checked = tsBlocks.filter((b) => b.tags[0] === 'ts' && b.tags.slice(1).every((f) => f === 'runnable'));
  const runnable = checked.filter((b) => b.tags.includes('runnable'));
  const outputs = pairOutputs(blocks, problems);
  const linkOnly = (options.linkOnlyPages ?? (options.docsDir === undefined ? [path.join(REPO, 'README.md')] : []))
    .map((f) => path.resolve(f))
    .map((f) => pages.get(f) ?? readPage(f));
  let links = 0;
  for (const page of [...pages.values(), ...linkOnly]) {
    for (const link of page.links) {
      if (checkLink(link, pages, problems)) links++;
    }
  }
  // Inside the repository (git-ignored, like the tests' other temporary fixtures), so that a block's
  // `import 'flyte-ts'` resolves to the package itself and its other imports to the repository's node_modules.
  const fixtures = path.join(REPO, 'test', 'fixtures');
  mkdirSync(fixtures, { recursive: true });
  const work = mkdtempSync(path.join(fixtures, '.tmp-docs-'));
  try {
    const files = writeBlocks(work, checked);
    problems.push(...typecheck(files));
    if (options.run ?? true) {
      const queue = runnable.map((b) => () => runBlock(b, files, outputs.get(b), problems));
      await Promise.all(Array.from({ length: RUN_PARALLEL }, () => drain(queue)));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  return {
    pages: files,
    tsBlocks: checked.length,
    runnableBlocks: (options.run ?? true) ? runnable.length : 0,
    links,
    problems,
  };
}

/** Lexes a page: its fenced blocks and links, each with its line, and the anchors of its headings. */
function readPage(file: string): Page {
  const source = readFileSync(file, 'utf8').replace(/\r\n?/g, '\n');
  const page: Page = { file, blocks: [], links: [], anchors: new Set() };
  const slugs = new Map<string, number>();
  let cursor = 0;
  const lineAt = (offset: number): number => source.slice(0, offset).split('\n').length;
  /** Where `raw` starts, searching from the cursor (its first line when a list item's indent was stripped). */
  const locate = (raw: string): number => {
    let at = source.indexOf(raw, cursor);
    if (at < 0) at = source.indexOf(raw.split('\n')[0]!.trim(), cursor);
    return at < 0 ? cursor : at;
  };
  const walk = (tokens: readonly Token[]): void => {
    for (const token of tokens) {
      const at = locate(token.raw);
      const line = lineAt(at);
      cursor = at;
      if (token.type === 'code' && (token as Tokens.Code).codeBlockStyle !== 'indented') {
        const code = token as Tokens.Code;
        page.blocks.push({ page: file, line, tags: (code.lang ?? '').split(/\s+/).filter(Boolean), code: code.text });
      } else if (token.type === 'link' || token.type === 'image') {
        page.links.push({ page: file, line, href: (token as Tokens.Link).href });
      } else if (token.type === 'html') {
        for (const m of token.raw.matchAll(/\b(href|src|id|name)\s*=\s*"([^"]*)"/g)) {
          if (m[1] === 'href' || m[1] === 'src') page.links.push({ page: file, line, href: m[2]! });
          else page.anchors.add(m[2]!);
        }
      } else if (token.type === 'heading') {
        const base = slug(plainText((token as Tokens.Heading).tokens));
        const seen = slugs.get(base) ?? 0;
        slugs.set(base, seen + 1);
        page.anchors.add(seen === 0 ? base : `${base}-${seen}`);
      }
      for (const children of childTokens(token)) walk(children);
      if (!('tokens' in token) && !('items' in token)) cursor = at + token.raw.length;
    }
  };
  walk(lexer(source));
  return page;
}

/** The nested token lists of a token: inline tokens, list items, table cells. */
function childTokens(token: Token): Token[][] {
  if (token.type === 'list') return [(token as Tokens.List).items];
  if (token.type === 'table') {
    const table = token as Tokens.Table;
    return [...table.header, ...table.rows.flat()].map((cell) => cell.tokens);
  }
  return 'tokens' in token && Array.isArray(token.tokens) ? [token.tokens] : [];
}

/** The text a heading shows (code spans' text included, markup left out). */
function plainText(tokens: readonly Token[]): string {
  return tokens
    .map((t) => {
      if ('tokens' in t && Array.isArray(t.tokens)) return plainText(t.tokens);
      if (t.type === 'html') return '';
      return 'text' in t && typeof t.text === 'string' ? t.text : '';
    })
    .join('');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`. */
export function slug(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/**
 * Pairs each `ts runnable` block with the `text output` block right after it; a runnable block without one, or
 * an output block after anything else, is a problem.
 */
function pairOutputs(blocks: readonly Block[], problems: DocProblem[]): Map<Block, Block> {
  const pairs = new Map<Block, Block>();
  blocks.forEach((b, i) => {
    const next = blocks[i + 1];
    const isOutput = (x: Block | undefined): boolean => x?.tags[0] === 'text' && x.tags[1] === 'output';
    if (b.tags[0] === 'ts' && b.tags.includes('runnable')) {
      if (next !== undefined && next.page === b.page && isOutput(next)) pairs.set(b, next);
      else
        problems.push({
          file: b.page,
          line: b.line,
          message: "ts runnable block: expected a 'text output' block right after it",
        });
    }
    const before = blocks[i - 1];
    if (isOutput(b) && !(before?.page === b.page && before.tags[0] === 'ts' && before.tags.includes('runnable'))) {
      problems.push({
        file: b.page,
        line: b.line,
        message: "text output block: expected right after a 'ts runnable' block",
      });
    }
  });
  return pairs;
}

/** Checks one link; true when it was a link to check (not an external URL). */
function checkLink(link: Link, pages: ReadonlyMap<string, Page>, problems: DocProblem[]): boolean {
  const { href } = link;
  if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//')) return false;
  const hash = href.indexOf('#');
  const target = decodeURIComponent(hash < 0 ? href : href.slice(0, hash));
  const anchor = hash < 0 ? undefined : decodeURIComponent(href.slice(hash + 1));
  const file = target === '' ? link.page : path.resolve(path.dirname(link.page), target);
  const fail = (what: string): void => {
    problems.push({ file: link.page, line: link.line, message: `link '${href}': ${what}` });
  };
  if (!existsSync(file)) {
    fail(`${path.relative(path.dirname(link.page), file) || file} does not exist`);
  } else if (anchor !== undefined && file.endsWith('.md')) {
    const anchors = (pages.get(file) ?? readPage(file)).anchors;
    if (!anchors.has(anchor)) {
      const near = [...anchors].filter((a) => a.includes(anchor) || anchor.includes(a)).slice(0, 3);
      fail(
        `no heading with the anchor '#${anchor}' in ${path.basename(file)}${near.length > 0 ? ` (near: ${near.map((a) => `#${a}`).join(', ')})` : ''}`,
      );
    }
  }
  return true;
}

/** Writes each block as its own module (`<page>-<line>.ts`); the map gives each file's block. */
function writeBlocks(dir: string, blocks: readonly Block[]): Map<string, Block> {
  const files = new Map<string, Block>();
  for (const b of blocks) {
    const file = path.join(dir, `${path.basename(b.page, '.md')}-${b.line}.ts`);
    // `export {}` makes a block without imports a module too: its names do not clash with other blocks'.
    writeFileSync(file, `${b.code}\nexport {};\n`);
    files.set(file, b);
  }
  return files;
}

/** Type-checks every block in one program, with the repository's compiler options. */
function typecheck(files: ReadonlyMap<string, Block>): DocProblem[] {
  if (files.size === 0) return [];
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(REPO, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (config === undefined) throw new Error('tsconfig.json: could not be read');
  const options: ts.CompilerOptions = { ...config.options, noEmit: true, declaration: false, sourceMap: false };
  const program = ts.createProgram([...files.keys()], options);
  const byFile = new Map([...files].map(([f, b]) => [path.normalize(f), b]));
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    if (d.file === undefined || d.start === undefined) return { file: REPO, line: 1, message: text };
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const block = byFile.get(path.normalize(d.file.fileName));
    if (block === undefined) return { file: d.file.fileName, line: line + 1, message: text };
    return {
      file: block.page,
      line: block.line + 1 + line,
      message: `ts block at line ${block.line} does not compile: ${text}`,
    };
  });
}

/** Runs the queued jobs one after the other. */
async function drain(queue: (() => Promise<void>)[]): Promise<void> {
  for (let job = queue.shift(); job !== undefined; job = queue.shift()) await job();
}

/** Runs a runnable block in a fresh temporary directory and compares its stdout with its output block. */
async function runBlock(
  block: Block,
  files: ReadonlyMap<string, Block>,
  output: Block | undefined,
  problems: DocProblem[],
): Promise<void> {
  const file = [...files].find(([, b]) => b === block)![0];
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'flyte-docs-run-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, FLYTE_ROOT: path.join(cwd, '.flyte') };
    for (const name of ['NODE_TEST_CONTEXT', 'FLYTE_STORE', 'FLYTE_ENGINE', 'FLYTE_CONFIG', 'FLYTE_UI_URL']) {
      delete env[name];
    }
    const { code, signal, stdout, stderr } = await runTsx(file, { cwd, env, timeoutMs: RUN_TIMEOUT_MS });
    const fail = (message: string): void => {
      problems.push({
        file: block.page,
        line: block.line,
        message: `ts runnable block at line ${block.line} ${message}`,
      });
    };
    if (code !== 0) {
      const why = signal === 'SIGKILL' ? `was killed after ${RUN_TIMEOUT_MS} ms` : `exited with ${code ?? signal}`;
      fail(`${why}; its stderr:\n${indent(stderr.trimEnd().split('\n').slice(-15).join('\n'))}`);
      return;
    }
    if (output === undefined) return;
    const expected = normalize(output.code);
    const received = normalize(stdout);
    if (expected !== received) {
      fail(
        `printed other than its text output block (line ${output.line}):\n  expected:\n${indent(expected)}\n  received:\n${indent(received)}`,
      );
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

/** Output as compared: trailing whitespace of each line, and trailing blank lines, dropped. */
function normalize(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
    .trimEnd();
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

/** Prints the report; exits 1 when there is a problem. */
async function main(): Promise<void> {
  const docsDir = process.argv[2];
  const report = await checkDocs(docsDir === undefined ? {} : { docsDir });
  for (const p of report.problems) {
    console.error(`${path.relative(process.cwd(), p.file) || p.file}:${p.line}: ${p.message}`);
  }
  const summary = `${report.pages.length} pages, ${report.tsBlocks} ts blocks type-checked, ${report.runnableBlocks} run, ${report.links} links`;
  if (report.problems.length > 0) {
    console.error(`docs:check: ${report.problems.length} problems (${summary})`);
    process.exitCode = 1;
  } else {
    console.log(`docs:check: ok (${summary})`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
