/**
 * `npm run ui:screenshots`: records a few runs in a temporary state directory (the seed-like pipeline with a
 * 1 000-item map, a failed run, a run still going), serves the web UI over them and takes screenshots with
 * Debian's headless Chromium:
 *
 * - `docs/screenshots/runs.png`: the run list;
 * - `docs/screenshots/run.png`: a run page, the map open and a failed member selected;
 * - `docs/screenshots/run-live.png`: a run page while the run goes on;
 * - `docs/screenshots/causes.png`: a 10 000-item map's causes of failure, one picked: its members, `task #i`;
 * - `docs/screenshots/run-logs.png`: a running run's logs, every action's lines, followed live, one item selected.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as flyte from 'flyte-ts';
import { startUiServer } from '../src/ui/server.js';
import { browserMissing, launchBrowser, tempRoot } from '../test/support/ui.js';
import { TEXTS, chatty, flaky, gated, hostile, pipeline, score, square, uiGates } from '../test/support/ui-seed.js';

const OUT = resolve(fileURLToPath(new URL('../docs/screenshots/', import.meta.url)));
const WAIT = { timeout: 15_000 };

async function main(): Promise<void> {
  const missing = browserMissing();
  if (missing !== undefined) throw new Error(missing);
  mkdirSync(OUT, { recursive: true });
  const root = tempRoot('flyte-ui-shots-');
  const ui = await startUiServer({ port: 0, pollIntervalMs: 200 });
  flyte.init({ root: root.path, echoLogs: false, uiUrl: ui.url });
  const browser = await launchBrowser({ width: 1440, height: 900 });
  try {
    // Some history for the list: small runs, a failure, the pipeline, and one still running.
    for (let i = 0; i < 3; i++) await (await flyte.run(square, i + 2)).wait();
    await (await flyte.run(hostile, '<b>hello</b>')).wait();
    await (await flyte.run(score, { id: 13, text: 'beta' })).wait();
    await (await flyte.withRunContext({ name: 'nightly-scoring-0411' }).run(pipeline, TEXTS, 200)).wait();
    // The second pipeline finds its preprocessing in the cache; its items take 40-80 ms each.
    const seed = await flyte.withRunContext({ name: 'nightly-scoring-0412' }).run(pipeline, TEXTS, 1000, 40);
    await seed.wait();
    const live = await flyte.withRunContext({ name: 'backfill-2024-q4' }).run(gated, 'shots', 12);
    for (let i = 0; i < 7; i++) uiGates.open(`shots:${i}`);

    const page = await browser.context.newPage();
    await page.goto(ui.url);
    await page.locator('tr[data-run="nightly-scoring-0412"]').waitFor(WAIT);
    await page.locator('tr[data-run="backfill-2024-q4"]').filter({ hasText: '✓ 7' }).waitFor(WAIT);
    await page.setViewportSize({ width: 1440, height: 640 });
    await page.screenshot({ path: join(OUT, 'runs.png'), animations: 'disabled' });
    await page.setViewportSize({ width: 1440, height: 900 });

    await page.goto(seed.url);
    const map = page.locator('[data-testid=group-row][data-group="ui_demo.score_map"]');
    await map.getByRole('button', { name: /Expand/ }).click();
    await page.locator('[data-testid=group-range]').filter({ hasText: '1–100 of 1,000' }).waitFor(WAIT);
    await page.locator('.row-action', { hasText: '#13' }).click();
    await page.locator('[data-testid=action-panel] [data-testid=error]').waitFor(WAIT);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(OUT, 'run.png'), animations: 'disabled' });

    await page.goto(live.url);
    await page.locator('[data-testid=group-row]').filter({ hasText: '✓ 7' }).waitFor(WAIT);
    await page
      .locator('[data-testid=group-row]')
      .getByRole('button', { name: /Expand/ })
      .click();
    await page.locator('[data-testid=group-range]').filter({ hasText: '1–12 of 12' }).waitFor(WAIT);
    await page.waitForTimeout(1500); // let the running bars grow a little
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(OUT, 'run-live.png'), animations: 'disabled' });

    uiGates.openAll();
    await live.wait();

    // A run whose items log while it goes on: its logs, followed live; a name picked selects its item.
    const talking = await flyte.withRunContext({ name: 'ingest-shards-0412' }).run(chatty, 'logs', 12);
    const logLine = (text: string) =>
      page.locator('[data-testid=run-log-lines] .log-line').filter({ has: page.getByText(text, { exact: true }) });
    await page.goto(`${talking.url}?view=logs`);
    await logLine('item 11 waiting').waitFor(WAIT);
    for (const i of [3, 0, 7, 1, 5, 2, 9]) {
      uiGates.open(`logs:${i}`);
      await logLine(`item ${i} done`).waitFor(WAIT);
    }
    await logLine('item 5 done').locator('.log-who').click();
    await page.locator('[data-testid=action-panel] [data-testid=value-outputs]').waitFor(WAIT);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(OUT, 'run-logs.png'), animations: 'disabled' });
    uiGates.openAll();
    await talking.wait();

    const crawl = await flyte.withRunContext({ name: 'crawl-catalog-0412' }).run(flaky, 10_000);
    await crawl.wait();
    await page.goto(crawl.url);
    const causes = page.locator('[data-testid=cause-list] [data-testid=cause]');
    await causes.nth(2).waitFor(WAIT);
    await causes.filter({ hasText: 'HTTP 503' }).click();
    await page.locator('[data-testid=group-range]').filter({ hasText: '1–100 of 500' }).waitFor(WAIT);
    await page.locator('.row-action', { hasText: '#21' }).first().click();
    await page.locator('[data-testid=action-panel] [data-testid=error]').waitFor(WAIT);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(OUT, 'causes.png'), animations: 'disabled' });
    console.log(`screenshots written to ${OUT}: runs.png, run.png, run-live.png, run-logs.png, causes.png`);
  } finally {
    uiGates.openAll();
    await browser.close();
    await ui.close();
    await flyte.shutdown();
    root.dispose();
  }
}

await main();
