/**
 * Values past `maxInlineIoBytes`, and `flyte.io.File` / `Dir`, through the run store's BlobStore, end to end: on
 * SQLite (`<root>/values/`) and on Postgres (its `blobs` tables, no shared directory needed).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import { dropSchema, freshSchema, peekPostgres, postgresSkip, urlWithSchema } from './support/postgres.js';

const env = new flyte.TaskEnvironment({ name: 'offload' });
const LIMIT = 1000;
const calls = new Map<string, number>();
const count = (name: string): void => {
  calls.set(name, (calls.get(name) ?? 0) + 1);
};
let failParent = false;

/** A value whose encoding is far past LIMIT. */
function bigValue(seed: number): { seed: number; rows: { i: number; label: string; at: Date }[] } {
  return { seed, rows: Array.from({ length: 300 }, (_, i) => ({ i, label: `row ${i} of ${seed}`, at: new Date(i) })) };
}

export const grow = env.task({ maxInlineIoBytes: LIMIT }, async function grow(input: { seed: number }) {
  count('grow');
  return bigValue(input.seed);
});

export const grownCached = env.task(
  { maxInlineIoBytes: LIMIT, cache: 'auto' },
  async function grownCached(seed: number) {
    count('grownCached');
    return bigValue(seed);
  },
);

export const measure = env.task(
  { maxInlineIoBytes: LIMIT },
  async function measure(value: ReturnType<typeof bigValue>) {
    return { rows: value.rows.length, last: value.rows.at(-1)?.label, dated: value.rows[5]?.at instanceof Date };
  },
);

export const parent = env.task({ maxInlineIoBytes: LIMIT }, async function parent(seed: number) {
  const big = await grow({ seed });
  if (failParent) throw new Error('the parent fails after its child succeeded');
  return measure(big);
});

export const makeFiles = env.task(async function makeFiles(dir: string) {
  mkdirSync(join(dir, 'tree', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'report.txt'), 'made on machine A');
  writeFileSync(join(dir, 'tree', 'one.txt'), '1');
  writeFileSync(join(dir, 'tree', 'sub', 'two.txt'), '22');
  return { file: await flyte.io.File.fromLocal(join(dir, 'report.txt')), dir: flyte.io.Dir.from(join(dir, 'tree')) };
});

export const readFiles = env.task(async function readFiles(files: { file: flyte.io.File; dir: flyte.io.Dir }) {
  const texts: string[] = [];
  for await (const f of files.dir.walk()) texts.push(await f.text());
  return { report: await files.file.text(), texts };
});

/** A trace whose output is a File: its record must wait for the file's upload (Postgres). */
export const tracedFile = env.task(async function tracedFile(dir: string) {
  const file = await flyte.trace(async function snapshot(d: string) {
    writeFileSync(join(d, 'traced.txt'), 'written inside a trace');
    return flyte.io.File.fromLocal(join(d, 'traced.txt'));
  })(dir);
  return file.text();
});

interface Target {
  readonly name: string;
  /** `flyte.init` options on a fresh root, the same store (a second machine, when `root` is new). */
  init(root: string): void;
  /** Deletes the blobs the store holds (to test a missing one). */
  dropBlobs(root: string): Promise<void>;
  /** How many blobs the store holds. */
  blobCount(root: string): Promise<number>;
  cleanup(): Promise<void>;
}

function sqliteTarget(): Target {
  return {
    name: 'sqlite',
    init: (root) => flyte.init({ root, echoLogs: false }),
    dropBlobs: (root) => {
      for (const f of readdirSync(join(root, 'values'))) unlinkSync(join(root, 'values', f));
      return Promise.resolve();
    },
    blobCount: (root) =>
      Promise.resolve(existsSync(join(root, 'values')) ? readdirSync(join(root, 'values')).length : 0),
    cleanup: () => Promise.resolve(),
  };
}

function postgresTarget(): Target {
  const schema = freshSchema();
  return {
    name: 'postgres',
    init: (root) => flyte.init({ root, store: urlWithSchema(schema), echoLogs: false }),
    dropBlobs: async () => {
      await peekPostgres(`DELETE FROM "${schema}".blob_chunks`);
      await peekPostgres(`DELETE FROM "${schema}".blobs`);
    },
    blobCount: async () =>
      Number((await peekPostgres<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".blobs`))[0]?.n),
    cleanup: () => dropSchema(schema),
  };
}

const skipPg = await postgresSkip();

for (const [make, skip] of [
  [sqliteTarget, false],
  [postgresTarget, skipPg],
] as const) {
  describe(`values through the BlobStore (${make === sqliteTarget ? 'sqlite' : 'postgres'})`, { skip }, () => {
    let target: Target;
    let root: string;
    const scratch: string[] = [];
    const tmp = (prefix: string): string => {
      const d = mkdtempSync(join(tmpdir(), prefix));
      scratch.push(d);
      return d;
    };
    before(() => {
      target = make();
      root = tmp('flyte-offload-');
      target.init(root);
    });
    after(async () => {
      await flyte.shutdown();
      await target.cleanup();
      for (const d of scratch) rmSync(d, { recursive: true, force: true });
    });

    it('offloads big inputs and outputs and reads them back through run.outputs() and inputs()', async () => {
      const input = { seed: 1, pad: 'p'.repeat(5000) };
      const before = await target.blobCount(root).catch(() => 0); // Postgres: not migrated yet
      const run = await flyte.run(grow, input);
      assert.deepStrictEqual(await run.outputs(), bigValue(1));
      assert.deepStrictEqual(await run.action('a0').inputs(), [input]);
      assert.ok((await target.blobCount(root)) >= before + 2, 'the input and the output went to the blob store');
      // A big value passed to a child and returned by it.
      const nested = await flyte.run(parent, 2);
      assert.deepStrictEqual(await nested.outputs(), { rows: 300, last: 'row 299 of 2', dated: true });
    });

    it('answers a cache hit with an offloaded output', async () => {
      const ran = calls.get('grownCached') ?? 0;
      const first = await flyte.run(grownCached, 3);
      await first.outputs();
      const second = await flyte.run(grownCached, 3);
      assert.deepStrictEqual(await second.outputs(), bigValue(3));
      assert.equal((await second.action('a0').record())?.cacheHit, true);
      assert.deepStrictEqual(await second.outputs(), await first.outputs());
      assert.equal(calls.get('grownCached'), ran + 1, 'run once, then answered from the cache');
    });

    it('recovers a child output that was offloaded, without running the child again', async () => {
      failParent = true;
      const failed = await flyte.run(parent, 4);
      await assert.rejects(failed.outputs(), /the parent fails/);
      const grew = calls.get('grow') ?? 0;
      failParent = false;
      const recovered = await flyte.rerun(failed.name, { recover: true });
      assert.deepStrictEqual(await recovered.outputs(), { rows: 300, last: 'row 299 of 4', dated: true });
      assert.equal(calls.get('grow'), grew, 'the succeeded child was not run again');
    });

    it('reads Files and Dirs back from another root (another machine), and passes them on', async () => {
      const work = tmp('flyte-offload-files-');
      const made = await flyte.run(makeFiles, work);
      await made.outputs();
      await flyte.shutdown();
      if (target.name === 'postgres') {
        // Another machine: nothing shared but the database; the files and the first root are gone.
        rmSync(work, { recursive: true, force: true });
        rmSync(root, { recursive: true, force: true });
        root = tmp('flyte-offload-other-');
      }
      target.init(root);
      const out = (await (await flyte.getRun(made.name)).outputs()) as { file: flyte.io.File; dir: flyte.io.Dir };
      assert.ok(out.file instanceof flyte.io.File && out.dir instanceof flyte.io.Dir);
      assert.equal(await out.file.text(), 'made on machine A');
      const passed = await flyte.run(readFiles, out);
      assert.deepStrictEqual(await passed.outputs(), { report: 'made on machine A', texts: ['1', '22'] });
    });

    it('records a trace whose output is a File once the file is stored, readable from another root', async () => {
      const work = tmp('flyte-offload-trace-');
      const run = await flyte.run(tracedFile, work);
      assert.equal(await run.outputs(), 'written inside a trace');
      const step = (await run.actions()).find((a) => a.taskName === 'trace:snapshot');
      assert.equal(step?.phase, 'succeeded');
      await flyte.shutdown();
      if (target.name === 'postgres') {
        rmSync(work, { recursive: true, force: true });
        rmSync(root, { recursive: true, force: true });
        root = tmp('flyte-offload-trace-other-');
      }
      target.init(root);
      const file = (await (await flyte.getRun(run.name)).action(step.name).outputs()) as flyte.io.File;
      assert.equal(await file.text(), 'written inside a trace');
    });

    it('says clearly when an offloaded value is missing from the store', async () => {
      const run = await flyte.run(grow, { seed: 5 });
      await run.outputs();
      await target.dropBlobs(root);
      const again = await flyte.getRun(run.name);
      await assert.rejects(
        again.outputs(),
        (err: unknown) =>
          err instanceof flyte.errors.RuntimeDataValidationError &&
          /offloaded value [0-9a-f]{64} is missing/.test(err.message),
      );
    });
  });
}
