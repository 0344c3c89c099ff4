/**
 * `flyte ui` started as a user starts it: the built binary (`node dist/cli/main.js ui`), without tsx loaded in
 * the test's process, over runs that the built binary recorded from TypeScript task files. Rerun and Recover are
 * pressed in headless Chromium; the runs they start must load the `.ts` module again and succeed.
 *
 * Needs Debian's chromium (see test/support/ui.ts): without it these tests fail under CI=true, and are skipped
 * elsewhere.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { FIXTURES, TASKS, collect, ensureBuilt, runCli, spawnCli, tempDir, waitForOutput } from './support/cli.js';
import { browserMissing, launchBrowser, type TestBrowser } from './support/ui.js';
import { sqliteOnly } from './support/test-store.js';

const missing = browserMissing();
const WAIT = { timeout: 20_000 };
const GATED = join(FIXTURES, 'gated.ts');

/** The run name a `flyte run` printed. */
function runName(stdout: string): string {
  const match = /^run (\S+)/m.exec(stdout);
  assert.ok(match, `no 'run NAME' line in:\n${stdout}`);
  return match[1] as string;
}

/** The error the run page shows after a button was pressed, if any. */
async function errorShown(page: Page): Promise<string | undefined> {
  const alert = page.locator('.action-error');
  return (await alert.count()) === 0 ? undefined : await alert.innerText();
}

describe('flyte ui from the built binary, over runs of .ts files', { skip: missing }, () => {
  let root: string;
  let ui: ChildProcess;
  let url: string;
  let browser: TestBrowser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    ensureBuilt();
    root = tempDir();
    ui = spawnCli(['ui', '--port', '0'], { root });
    url = (await waitForOutput(ui, /http:\/\/127\.0\.0\.1:\d+/))[0];
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await browser?.close();
    if (ui !== undefined && ui.exitCode === null) {
      const done = collect(ui);
      ui.kill('SIGINT');
      await done;
    }
  });

  it('reruns a run of a task defined in a .ts file: the new run succeeds', async () => {
    const first = await runCli(['run', TASKS, 'double', '21'], { root });
    assert.equal(first.code, 0, first.stderr);
    const name = runName(first.stdout);
    await page.goto(`${url}/runs/${name}`);
    await page.locator('.run-page[data-phase=succeeded]').waitFor(WAIT);
    await page.getByRole('button', { name: 'Rerun', exact: true }).click();
    // Either the page goes to the new run or it shows why it could not start one.
    await page
      .locator('.action-error')
      .or(page.locator('[data-testid=run-name]').filter({ hasNotText: name }))
      .first()
      .waitFor(WAIT);
    assert.equal(await errorShown(page), undefined);
    await page.locator('.run-page[data-phase=succeeded]').waitFor(WAIT);
    const rerun = decodeURIComponent(new URL(page.url()).pathname.slice('/runs/'.length));
    const io = await runCli(['get', 'io', rerun, '-o', 'json'], { root });
    assert.equal((JSON.parse(io.stdout) as { outputs: unknown }).outputs, 42);
  });

  it('recovers a failed run of a task defined in a .ts file: the same run then succeeds', async () => {
    const marker = join(root, 'needed-file');
    const failed = await runCli(['run', GATED, 'recoverable', '--path', marker], { root });
    assert.equal(failed.code, 1, failed.stderr);
    const name = runName(failed.stdout);
    await page.goto(`${url}/runs/${name}`);
    await page.locator('.run-page[data-phase=failed]').waitFor(WAIT);
    writeFileSync(marker, '');
    await page.getByRole('button', { name: 'Recover', exact: true }).click();
    await page.locator('.run-page[data-phase=succeeded], .action-error').first().waitFor(WAIT);
    assert.equal(await errorShown(page), undefined);
    await page.locator('.run-page[data-phase=succeeded]').waitFor(WAIT);
    assert.equal(page.url(), `${url}/runs/${name}`);
    const io = await runCli(['get', 'io', name, '-o', 'json'], { root });
    assert.equal((JSON.parse(io.stdout) as { outputs: unknown }).outputs, '6 found');
  });

  it('had no errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});

describe('run.url while a flyte ui serves the store', () => {
  before(() => ensureBuilt());

  const addressFile = sqliteOnly('flyte ui leaves its address beside the SQLite file (src/cli/ui-address.ts)');
  it(
    'runs started while it serves link to its address; after it stops, to the default again',
    { skip: addressFile },
    async (t) => {
      const root = tempDir();
      const ui = spawnCli(['ui', '--port', '0'], { root });
      // Stopped in any case: a failed assertion must not leave the server running (and the test file with it).
      t.after(() => {
        ui.kill('SIGKILL');
      });
      const url = (await waitForOutput(ui, /http:\/\/127\.0\.0\.1:\d+/))[0];
      assert.notEqual(url, 'http://127.0.0.1:8080');
      const during = await runCli(['run', TASKS, 'double', '1'], { root });
      assert.match(during.stdout, new RegExp(`^url ${url}/runs/${runName(during.stdout)}$`, 'm'));
      // The user's own setting wins.
      const own = await runCli(['run', TASKS, 'double', '1'], { root, env: { FLYTE_UI_URL: 'http://ui.example' } });
      assert.match(own.stdout, /^url http:\/\/ui\.example\/runs\/\S+$/m);
      // Another store is another UI's business.
      const other = await runCli(['run', TASKS, 'double', '1'], { root: tempDir() });
      assert.match(other.stdout, /^url http:\/\/127\.0\.0\.1:8080\/runs\/\S+$/m);

      const stopped = collect(ui);
      ui.kill('SIGINT');
      assert.equal((await stopped).code, 0);
      const after = await runCli(['run', TASKS, 'double', '1'], { root });
      assert.match(after.stdout, /^url http:\/\/127\.0\.0\.1:8080\/runs\/\S+$/m);
    },
  );
});
