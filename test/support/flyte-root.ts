/**
 * A fresh local state directory for one test file: `flyte.init` on it before the tests, `flyte.shutdown` and
 * removal after them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import * as flyte from 'flyte-ts';

/** Registers the `before`/`after` hooks; the returned function gives the directory once `before` ran. */
export function useFlyteRoot(prefix: string): () => string {
  let root: string | undefined;
  before(() => {
    root = mkdtempSync(join(tmpdir(), prefix));
    flyte.init({ root, echoLogs: false });
  });
  after(async () => {
    await flyte.shutdown();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });
  return () => {
    if (root === undefined) throw new Error('useFlyteRoot: the directory exists only once the tests run');
    return root;
  };
}
