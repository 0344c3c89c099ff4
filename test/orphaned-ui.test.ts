/**
 * An orphaned run in the UI, in headless Chromium: a driver SIGKILLed in the middle of a fan-out leaves actions
 * `running` in the store. Its page shows them orphaned, with the time the driver was last seen, no "Abort action"
 * button, and durations that stop at that time.
 *
 * Needs Debian's chromium (see test/support/ui.ts): without it this fails under CI=true, and is skipped elsewhere.
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as flyte from 'flyte-ts';
import type { Page } from 'playwright-core';
import { startUiServer, type UiServer } from '../src/ui/server.js';
import { runAndKill } from './support/crash.js';
import { initOptions, rootEnv } from './support/test-store.js';
import { browserMissing, launchBrowser, tempRoot, type TestBrowser } from './support/ui.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-counted.ts', import.meta.url));
const WAIT = { timeout: 10_000 };
const missing = browserMissing();

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('an orphaned run in the UI', { skip: missing }, () => {
  const root = tempRoot('flyte-orphaned-ui-');
  const counts = join(root.path, 'counts.txt');
  let ui: UiServer;
  let browser: TestBrowser;
  let page: Page;
  let name = '';

  before(async () => {
    // A short lease, so that the driver renews it (and is "seen") often; killed once some 50 items ran.
    name = await runAndKill(
      FIXTURE,
      ['4000', '10', 'slow'],
      { ...rootEnv(root.path), FLYTE_COUNTS: counts, FLYTE_LEASE_MS: '600' },
      () => existsSync(counts) && statSync(counts).size >= 200,
    );
    ui = await startUiServer({ port: 0, pollIntervalMs: 100, log: () => undefined });
    flyte.init(initOptions(root.path, { uiUrl: ui.url }));
    browser = await launchBrowser();
    page = await browser.context.newPage();
  });

  after(async () => {
    await browser?.close();
    await ui?.close();
    await flyte.shutdown();
    root.dispose();
  });

  it('shows the running actions orphaned, last seen, without Abort action, and durations that stop', async () => {
    await page.goto(`${ui.url}/runs/${name}`);
    const rootRow = page.locator('.row-action[data-action="a0"]');
    await rootRow.waitFor(WAIT);
    await page.locator('.run-page[data-phase="orphaned"]').waitFor(WAIT);
    await page.locator('[data-testid="action-panel"][data-action="a0"]').waitFor(WAIT);
    assert.equal((await rootRow.locator('.cell.status').innerText()).trim(), 'Orphaned');

    const panel = page.locator('[data-testid="action-panel"]');
    assert.equal(await panel.getByRole('button', { name: 'Abort action' }).count(), 0);
    assert.match(await panel.locator('[data-testid="action-last-seen"]').innerText(), /last seen \d\d:\d\d:\d\d/);
    assert.match(await panel.locator('.badge').first().innerText(), /Orphaned/);

    const header = page.locator('[data-testid="run-last-seen"]');
    assert.match((await header.textContent()) ?? '', /Last seen\s*\d\d:\d\d:\d\d/);
    assert.match((await header.getAttribute('title')) ?? '', /UTC$/);

    const durations = async (): Promise<string[]> => [
      await rootRow.locator('.cell.num').innerText(),
      await page
        .locator('.run-facts > div')
        .filter({ has: page.locator('.fact-label', { hasText: 'Duration' }) })
        .innerText(),
      await panel.locator('dl.facts').innerText(),
    ];
    const first = await durations();
    await wait(1200);
    assert.deepEqual(await durations(), first);
  });

  it('aborts the orphaned run from its page: it is recorded as aborted', async () => {
    await page.goto(`${ui.url}/runs/${name}`);
    await page.locator('.run-page[data-phase="orphaned"]').waitFor(WAIT);
    await page.locator('.run-actions').getByRole('button', { name: 'Abort', exact: true }).click();
    await page.getByRole('button', { name: 'Yes, abort' }).click();
    await page.locator('.run-page[data-phase="aborted"]').waitFor(WAIT);
    const run = await flyte.getRun(name);
    assert.equal((await run.record()).phase, 'aborted');
    const unfinished = (await run.actions()).filter((a) => a.phase === 'running' || a.phase === 'queued');
    assert.equal(unfinished.length, 0, 'its unfinished actions are recorded as aborted too');
  });
});
