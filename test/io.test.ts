/**
 * `flyte.io.File` and `flyte.io.Dir` through the public API: the references themselves (paths, reading, content
 * hashes), crossing action boundaries (inputs, outputs, nested in other values, parent to child), the cache
 * keyed on content, and the validation errors for missing or wrong-kind paths.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, beforeEach, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { ON_POSTGRES, initOptions } from './support/flyte-root.js';

const env = new flyte.TaskEnvironment({ name: 'iotest' });

const calls = new Map<string, number>();
function count(name: string): void {
  calls.set(name, (calls.get(name) ?? 0) + 1);
}
const called = (name: string): number => calls.get(name) ?? 0;

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

export const describeFile = env.task(async function describeFile(f: flyte.io.File) {
  return { isFile: f instanceof flyte.io.File, path: f.path, name: f.name, text: await f.text() };
});

export const writesFile = env.task(async function writesFile(path: string, content: string) {
  writeFileSync(path, content);
  return { file: flyte.io.File.from(path), note: 'written' };
});

export const echo = env.task(async function echo<T>(value: T) {
  return value;
});

export const namesOf = env.task(async function namesOf(refs: { f: flyte.io.File; d: flyte.io.Dir }) {
  return [refs.f.path, refs.d.path];
});

export const fileSize = env.task(async function fileSize(f: flyte.io.File) {
  count(`fileSize:${f.name}`);
  return (await f.read()).length;
});

export const sizesOf = env.task(async function sizesOf(dir: flyte.io.Dir) {
  const files: flyte.io.File[] = [];
  for await (const f of dir.walk()) files.push(f);
  return Promise.all(files.map((f) => fileSize(f)));
});

export const countFiles = env.task({ cache: 'auto' }, async function countFiles(dir: flyte.io.Dir) {
  count('countFiles');
  let n = 0;
  for await (const _ of dir.walk()) n++;
  return n;
});

export const passesMissing = env.task(async function passesMissing(path: string) {
  try {
    await fileSize(flyte.io.File.from(path));
    return 'no error';
  } catch (err) {
    return err instanceof flyte.errors.RuntimeDataValidationError ? `${err.code} at ${err.path ?? '?'}` : String(err);
  }
});

export const returnsMissing = env.task(async function returnsMissing(path: string) {
  return { out: flyte.io.File.from(path) };
});

describe('flyte.io', () => {
  let root: string;
  let data: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'flyte-io-'));
    data = join(root, 'data');
    mkdirSync(data);
    // The root's SQLite, or a fresh Postgres schema under FLYTE_TEST_STORE=postgres (the SDK pass of .ci/run),
    // dropped when the file ends.
    flyte.init(initOptions(join(root, 'state')));
  });
  after(async () => {
    await flyte.shutdown();
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => calls.clear());

  /** A fresh directory under the test's data directory, filled with `files` (relative path → content). */
  function tree(name: string, files: Record<string, string>): string {
    const dir = join(data, name);
    mkdirSync(dir, { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), content);
    }
    return dir;
  }

  describe('File', () => {
    it('refers to a file by absolute path and reads it', async () => {
      const path = join(data, 'hello.txt');
      writeFileSync(path, 'hello world');
      const f = flyte.io.File.from(path);
      assert.ok(f instanceof flyte.io.File);
      assert.deepEqual([f.path, f.name], [path, 'hello.txt']);
      assert.equal((await f.read()).toString(), 'hello world');
      assert.equal(await f.text(), 'hello world');
      assert.equal(await f.hash(), sha256('hello world'));
      assert.equal(new flyte.io.File('relative/x.csv').path, resolve('relative/x.csv'));
      assert.equal(new flyte.io.File(pathToFileURL(path)).path, path);
    });

    it('hashes again after an edit, even of a file whose old hash was memoized', async () => {
      const path = join(data, 'edited.txt');
      writeFileSync(path, 'version 1');
      const old = new Date(Date.now() - 60_000);
      utimesSync(path, old, old); // old enough to be memoized
      const f = flyte.io.File.from(path);
      assert.equal(await f.hash(), sha256('version 1'));
      assert.equal(await f.hash(), sha256('version 1'));
      writeFileSync(path, 'version 2');
      assert.equal(await f.hash(), sha256('version 2'));
    });

    it('fromLocal hashes ahead, asynchronously: crossing a boundary then reads nothing', async () => {
      const path = join(data, 'ahead.txt');
      writeFileSync(path, 'hashed ahead');
      const f = await flyte.io.File.fromLocal(path);
      assert.equal(await f.hash(), sha256('hashed ahead'));
      const dir = tree('ahead-dir', { 'x.txt': 'x' });
      const d = await flyte.io.Dir.fromLocal(dir);
      assert.equal(await d.hash(), await flyte.io.Dir.from(dir).hash());
      if (ON_POSTGRES) {
        // A shared store uploads the content (asynchronously) when it crosses: the paths must still be there.
        const run = await flyte.run(namesOf, { f, d });
        assert.deepEqual(await run.outputs(), [path, dir]);
      } else {
        // The snapshot is what crosses: with the paths gone, File.from would be refused, these are not.
        rmSync(path);
        rmSync(dir, { recursive: true });
        const run = await flyte.run(namesOf, { f, d });
        assert.deepEqual(await run.outputs(), [path, dir]);
        await assert.rejects(flyte.run(echo, flyte.io.File.from(path)), /does not exist/);
      }
      await assert.rejects(flyte.io.File.fromLocal(join(data, 'never.txt')), /ENOENT/);
    });

    it('rejects bad paths at once', () => {
      assert.throws(() => flyte.io.File.from(''), TypeError);
      assert.throws(() => flyte.io.File.from(42 as unknown as string), /expected a non-empty path; received number 42/);
      assert.throws(() => flyte.io.Dir.from(new URL('https://example.com/x')), /file: URL/);
    });
  });

  describe('Dir', () => {
    it('lists its entries, walks its files and hashes (relative path, content hash) pairs', async () => {
      const dir = tree('tree', { 'b.txt': 'bee', 'a.txt': 'ay', 'sub/c.txt': 'sea', 'sub/deeper/d.txt': 'dee' });
      mkdirSync(join(dir, 'empty'));
      const d = flyte.io.Dir.from(dir);
      assert.deepEqual([d.path, d.name], [dir, 'tree']);

      const listed = await d.list();
      assert.deepEqual(
        listed.map((e) => [e.constructor.name, e.name]),
        [
          ['File', 'a.txt'],
          ['File', 'b.txt'],
          ['Dir', 'empty'],
          ['Dir', 'sub'],
        ],
      );
      assert.ok(listed[0] instanceof flyte.io.File && listed[2] instanceof flyte.io.Dir);

      const walked: string[] = [];
      for await (const f of d.walk()) walked.push(f.path.slice(dir.length + 1));
      assert.deepEqual(walked, ['a.txt', 'b.txt', 'sub/c.txt', 'sub/deeper/d.txt']);

      const expected = sha256(
        JSON.stringify([
          ['a.txt', sha256('ay')],
          ['b.txt', sha256('bee')],
          ['sub/c.txt', sha256('sea')],
          ['sub/deeper/d.txt', sha256('dee')],
        ]),
      );
      assert.equal(await d.hash(), expected);
    });

    it('hashes by content and relative names: a copy hashes the same, a rename or an edit does not', async () => {
      const dir = tree('original', { 'x.txt': 'x', 'y/z.txt': 'z' });
      const copy = join(data, 'copy');
      cpSync(dir, copy, { recursive: true });
      const h = await flyte.io.Dir.from(dir).hash();
      assert.equal(await flyte.io.Dir.from(copy).hash(), h);

      mkdirSync(join(copy, 'nothing-inside'));
      assert.equal(await flyte.io.Dir.from(copy).hash(), h, 'empty directories do not count');

      renameSync(join(copy, 'x.txt'), join(copy, 'w.txt'));
      const renamed = await flyte.io.Dir.from(copy).hash();
      assert.notEqual(renamed, h);

      writeFileSync(join(copy, 'y/z.txt'), 'zz');
      assert.notEqual(await flyte.io.Dir.from(copy).hash(), renamed);
    });
  });

  describe('across action boundaries', () => {
    it('passes a File to a task and records it as an input', async () => {
      const path = join(data, 'input.txt');
      writeFileSync(path, 'input text');
      const run = await flyte.run(describeFile, flyte.io.File.from(path));
      assert.deepEqual(await run.outputs(), { isFile: true, path, name: 'input.txt', text: 'input text' });
      const [recorded] = (await run.action('a0').inputs()) as [flyte.io.File];
      assert.ok(recorded instanceof flyte.io.File);
      assert.equal(recorded.path, path);
    });

    it('returns a File from a task', async () => {
      const path = join(data, 'output.txt');
      const run = await flyte.run(writesFile, path, 'made by a task');
      const out = await run.outputs();
      assert.ok(out.file instanceof flyte.io.File);
      assert.equal(out.file.path, path);
      assert.equal(await out.file.text(), 'made by a task');
    });

    it('keeps files and directories nested in other values', async () => {
      const a = join(data, 'nested-a.txt');
      writeFileSync(a, 'a');
      const dir = tree('nested-dir', { 'k.txt': 'k' });
      const fa = flyte.io.File.from(a);
      const value = { list: [fa, fa], byName: new Map([['dir', flyte.io.Dir.from(dir)]]), set: new Set([fa]) };
      const run = await flyte.run(echo, value);
      const out = (await run.outputs()) as typeof value;
      assert.ok(out.list[0] instanceof flyte.io.File && out.list[0].path === a);
      assert.equal(out.list[0], out.list[1], 'a repeated reference stays one object');
      const d = out.byName.get('dir');
      assert.ok(d instanceof flyte.io.Dir && d.path === dir);
      assert.ok([...out.set][0] instanceof flyte.io.File);
    });

    it('passes the files of a Dir on to child actions', async () => {
      const dir = tree('sizes', { 'one.txt': '1', 'three.txt': '333', 'sub/two.txt': '22' });
      const run = await flyte.run(sizesOf, flyte.io.Dir.from(dir));
      assert.deepEqual(await run.outputs(), [1, 2, 3]);
      const children = (await run.actions()).filter((x) => x.taskName === 'iotest.fileSize');
      assert.equal(children.length, 3);
      const [input] = (await run.action(children[0]!.name).inputs()) as [flyte.io.File];
      assert.ok(input instanceof flyte.io.File);
    });

    it('caches on directory content: a copy elsewhere hits, an added file misses', async () => {
      const dir = tree('cached', { 'p.txt': 'p', 'q/r.txt': 'r' });
      const copy = join(data, 'cached-copy');
      cpSync(dir, copy, { recursive: true });
      const first = await flyte.run(countFiles, flyte.io.Dir.from(dir));
      assert.equal(await first.outputs(), 2);
      const second = await flyte.run(countFiles, flyte.io.Dir.from(copy));
      assert.equal(await second.outputs(), 2);
      assert.equal((await second.action('a0').record())?.cacheHit, true);
      assert.equal(called('countFiles'), 1);

      writeFileSync(join(copy, 's.txt'), 's');
      const third = await flyte.run(countFiles, flyte.io.Dir.from(copy));
      assert.equal(await third.outputs(), 3);
      assert.equal((await third.action('a0').record())?.cacheHit, false);
      assert.equal(called('countFiles'), 2);
    });
  });

  describe('validation', () => {
    it('refuses a missing file when it crosses a boundary, naming the argument and the path', async () => {
      const missing = join(data, 'missing.txt');
      await assert.rejects(flyte.run(describeFile, flyte.io.File.from(missing)), (err: unknown) => {
        assert.ok(err instanceof flyte.errors.RuntimeDataValidationError);
        assert.equal(err.path, 'args[0]');
        assert.ok(err.message.includes(missing), err.message);
        assert.match(err.message, /does not exist/);
        return true;
      });
      await assert.rejects(
        flyte.run(echo, { inputs: [flyte.io.File.from(missing)] }),
        (err: unknown) => err instanceof flyte.errors.RuntimeDataValidationError && err.path === 'args[0].inputs[0]',
      );
      await assert.rejects(
        flyte.run(echo, flyte.io.Dir.from(join(data, 'no-such-dir'))),
        /a directory that does not exist/,
      );
    });

    it('refuses a missing file passed to a child, and one returned as an output', async () => {
      const missing = join(data, 'gone.txt');
      const parent = await flyte.run(passesMissing, missing);
      assert.equal(await parent.outputs(), 'RuntimeDataValidationError at args[0]');

      const run = await flyte.run(returnsMissing, missing);
      await assert.rejects(
        run.outputs(),
        (err: unknown) => err instanceof flyte.errors.RuntimeDataValidationError && err.path === 'output.out',
      );
    });

    it('says which kind to use when a File names a directory or a Dir names a file', async () => {
      const file = join(data, 'plain.txt');
      writeFileSync(file, 'plain');
      await assert.rejects(flyte.run(echo, flyte.io.File.from(data)), /use flyte\.io\.Dir/);
      await assert.rejects(flyte.run(echo, flyte.io.Dir.from(file)), /use flyte\.io\.File/);
    });

    it('refuses a Blob, pointing to flyte.io.File', async () => {
      await assert.rejects(
        flyte.run(echo, new Blob(['bytes'])),
        (err: unknown) =>
          err instanceof flyte.errors.RuntimeDataValidationError && /flyte\.io\.File\.from\(path\)/.test(err.message),
      );
    });
  });
});
