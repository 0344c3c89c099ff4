/**
 * The web UI end to end, in headless Chromium: the run list, a run's folded tree (a 1 000-item map), an action's
 * inputs, outputs, logs and attempts, a running run updating live and aborted from its page, rerun, `run.url`,
 * escaping of hostile values, a run's logs followed live and paged (100 000 lines), and the token when the server
 * is exposed.
 *
 * Needs Debian's chromium (see test/support/ui.ts): without it these tests fail under CI=true, and are skipped
 * elsewhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import type { Locator, Page } from 'playwright-core';
import { startUiServer, type UiServer } from '../src/ui/server.js';
import { assertShownWithin, browserMissing, launchBrowser, tempRoot, type TestBrowser } from './support/ui.js';
import { initOptions } from './support/test-store.js';
import {
  FLAKY_CAUSES,
  TEXTS,
  chatty,
  flaky,
  gated,
  gatedTolerant,
  hostile,
  loud,
  pipeline,
  square,
  uiGates,
  wide,
} from './support/ui-seed.js';

const missing = browserMissing();
const WAIT = { timeout: 10_000 };

/** What the tests read of a row in the page (the DOM types are not in the tests' lib). */
interface RowElement {
  querySelector(selector: string): { readonly textContent: string | null } | null;
}

/** Waits until `row`'s text matches `pattern` (a page of rows is replaced once its new data arrives). */
async function rowText(row: Locator, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + WAIT.timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = await row.innerText();
    if (pattern.test(text)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.match(text, pattern);
}

describe('web UI in Chromium', { skip: missing }, () => {
  const root = tempRoot();
  let ui: UiServer;
  let browser: TestBrowser;
  let page: Page;
  let seed: flyte.Run;
  let hostileRun: flyte.Run;
  const pageErrors: string[] = [];

  before(async () => {
    ui = await startUiServer({ port: 0, pollIntervalMs: 100, log: () => undefined });
    flyte.init(initOptions(root.path, { uiUrl: ui.url }));
    seed = await flyte.withRunContext({ name: 'seed-pipeline' }).run(pipeline, TEXTS, 1000);
    hostileRun = await flyte
      .withRunContext({ name: 'hostile-values' })
      .run(hostile, '<script>document.body.dataset.xss="1"</script>');
    await Promise.all([seed.wait(), hostileRun.wait()]);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    uiGates.openAll();
    await browser?.close();
    await ui?.close();
    await flyte.shutdown();
    root.dispose();
  });

  it('lists the runs with task, phase and counts, and filters them by phase and task', async () => {
    await page.goto(ui.url);
    const row = page.locator('tr[data-run="seed-pipeline"]');
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), /pipeline\s+ui_demo/);
    assert.match(await row.innerText(), /Succeeded/);
    assert.match(await row.innerText(), /1,006\/1,006/);
    assert.match(await row.innerText(), /✓ 995/);
    assert.match(await row.innerText(), /✗ 11/);

    await page.selectOption('select[name=phase]', 'failed');
    await page.getByText('No runs match these filters.').waitFor(WAIT);
    assert.match(page.url(), /phase=failed/);
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.fill('input[name=task]', 'ui_demo.hostile');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('tr[data-run="seed-pipeline"]').waitFor({ state: 'detached', ...WAIT });
    assert.equal(await page.locator('tbody tr').count(), 1);
    assert.equal(await page.locator('tbody tr').getAttribute('data-run'), 'hostile-values');
  });

  it('pages through many runs', async () => {
    const runs = await Promise.all(Array.from({ length: 25 }, (_, i) => flyte.run(square, i)));
    await Promise.all(runs.map((r) => r.wait()));
    await page.goto(ui.url);
    await page.locator('tbody tr').nth(24).waitFor(WAIT);
    assert.equal(await page.locator('tbody tr').count(), 25);
    await page.getByRole('button', { name: 'Older ›' }).click();
    await page.locator('tr[data-run="seed-pipeline"]').waitFor(WAIT);
    assert.equal(await page.locator('tbody tr').count(), 2);
    assert.match(page.url(), /offset=25/);
  });

  it('opens a run from the list: the tree folds the group and the 1 000-item map into one node each, with counts', async () => {
    await page.goto(`${ui.url}/?task=ui_demo.pipeline`);
    await page.getByRole('link', { name: 'seed-pipeline' }).click();
    await page.locator('[data-testid=run-name]').waitFor(WAIT);
    assert.equal(new URL(page.url()).pathname, '/runs/seed-pipeline');

    const groups = page.locator('[data-testid=group-row]');
    await groups.nth(1).waitFor(WAIT);
    assert.equal(await groups.count(), 2);
    const map = page.locator('[data-testid=group-row][data-group="ui_demo.score_map"]');
    const mapText = await map.innerText();
    assert.match(mapText, /1,000 actions/);
    assert.match(mapText, /✓ 989/);
    assert.match(mapText, /✗ 11/);
    assert.match(mapText, /100%/);
    assert.match(await page.locator('[data-testid=group-row][data-group=preprocess]').innerText(), /4 actions/);
    // The trace is a child of the root too; only the root, the two groups and the trace are rows: nothing of the
    // 1 000 members was loaded.
    assert.equal(await page.locator('.row-action').count(), 2);
    assert.match(await page.locator('.row-action').nth(1).innerText(), /trace\s+summarize/);

    // Open the map: a page of 100 members, then the next page, then only the failed ones.
    await map.getByRole('button', { name: /Expand/ }).click();
    await page.locator('[data-testid=group-range]').filter({ hasText: '1–100 of 1,000' }).waitFor(WAIT);
    assert.equal(await page.locator('.row-action').count(), 102);
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.locator('[data-testid=group-range]').filter({ hasText: '101–200 of 1,000' }).waitFor(WAIT);
    await page
      .locator('[data-testid=group-toolbar]')
      .getByRole('button', { name: /Failed/ })
      .click();
    await page.locator('[data-testid=group-range]').filter({ hasText: '1–11 of 11' }).waitFor(WAIT);
    assert.equal(await page.locator('.row-action').count(), 2 + 11);
    assert.match(await page.locator('.row-action').nth(1).innerText(), /score[\s\S]*×2[\s\S]*Failed/);
  });

  it("shows an action's error, attempts, logs, inputs and outputs", async () => {
    // The first failed member (from the previous test's filter).
    await page.locator('.row-action').nth(1).click();
    const panel = page.locator('[data-testid=action-panel]');
    await panel.locator('[data-testid=error]').waitFor(WAIT);
    assert.match(await panel.innerText(), /score/);
    assert.match(await panel.locator('[data-testid=error]').innerText(), /item 13 has no score: text too short/);
    assert.match(await panel.locator('[data-testid=error]').innerText(), /Stack/);
    assert.match(page.url(), /\?action=/);

    await panel.getByRole('tab', { name: /Attempts/ }).click();
    assert.match(await panel.locator('.attempts').innerText(), /1\s+Failed[\s\S]*2\s+Failed/);

    await panel.getByRole('tab', { name: /Logs/ }).click();
    assert.match(await panel.locator('[data-testid=logs]').innerText(), /item 13: no model score for "beta"/);

    await panel.getByRole('tab', { name: /Inputs & outputs/ }).click();
    assert.match(await panel.locator('[data-testid=value-inputs]').innerText(), /arg 0\s*\{ id: 13, text: 'beta' \}/);
    assert.match(await panel.locator('[data-testid=value-outputs]').innerText(), /the action did not succeed/);

    // The root: its arguments one by one, its output decoded (a Set and a Date included), its logs.
    await page.locator('.row-action[data-action=a0]').click();
    await page.locator('[data-testid=action-panel][data-action=a0]').waitFor(WAIT);
    await panel.getByRole('tab', { name: /Inputs & outputs/ }).click();
    const inputs = await panel.locator('[data-testid=value-inputs]').innerText();
    assert.match(inputs, /arg 0\s*\[ ' {2}Alpha', 'BETA ', ' Gamma ', 'delta' \]/);
    assert.match(inputs, /arg 1\s*1000/);
    const outputs = await panel.locator('[data-testid=value-outputs]').innerText();
    assert.match(outputs, /failed: 11/);
    assert.match(outputs, /tags: Set\(1\) \{ 'ui' \}/);
    assert.match(outputs, /at: 1970-01-01T00:00:00\.000Z/);
    await panel.getByRole('tab', { name: /Logs/ }).click();
    assert.match(
      await panel.locator('[data-testid=logs]').innerText(),
      /pipeline over 1000 items[\s\S]*989 scored, 11 failed/,
    );
  });

  it('selects a group to see its summary and its failed members', async () => {
    await page.locator('[data-testid=group-row][data-group="ui_demo.score_map"]').click();
    const panel = page.locator('[data-testid=group-panel]');
    await panel.locator('.failures li').first().waitFor(WAIT);
    assert.match(await panel.innerText(), /ui_demo\.score_map/);
    assert.equal(await panel.locator('.failures li').count(), 10);
    await panel.locator('.failures a').first().click();
    await page.locator('[data-testid=action-panel] [data-testid=error]').waitFor(WAIT);
  });

  it('shows hostile inputs, logs and outputs as text, never as HTML', async () => {
    await page.goto(`${ui.url}/runs/hostile-values`);
    const panel = page.locator('[data-testid=action-panel]');
    await panel.getByRole('tab', { name: /Inputs & outputs/ }).click();
    assert.match(
      await panel.locator('[data-testid=value-inputs]').innerText(),
      /<script>document\.body\.dataset\.xss="1"<\/script>/,
    );
    assert.match(await panel.locator('[data-testid=value-outputs]').innerText(), /<img src=x onerror=/);
    await panel.getByRole('tab', { name: /Logs/ }).click();
    assert.match(await panel.locator('[data-testid=logs]').innerText(), /<script>/);
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.equal(await page.evaluate('document.body.dataset.xss'), undefined);
    // The run-wide logs too.
    await page.goto(`${ui.url}/runs/hostile-values?view=logs`);
    const line = page.locator('[data-testid=run-log-lines] .log-line');
    await line.filter({ hasText: '<script>document.body.dataset.xss="1"</script>' }).waitFor(WAIT);
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.equal(await page.evaluate('document.body.dataset.xss'), undefined);
  });

  it('loads a run with a 10 000-item map in under a second, and pages through its members', async () => {
    const big = await flyte.withRunContext({ name: 'wide-10k' }).run(wide, 10_000);
    await big.wait();
    const started = performance.now();
    await page.goto(big.url);
    const map = page.locator('[data-testid=group-row]');
    await map.filter({ hasText: '10,000 actions' }).waitFor(WAIT);
    await page.locator('[data-testid=action-panel][data-action=a0]').waitFor(WAIT);
    const elapsed = performance.now() - started;
    assertShownWithin('the page of a 10 000-item run', elapsed, 1000);
    assert.match(await map.innerText(), /✓ 10,000/);

    await map.getByRole('button', { name: /Expand/ }).click();
    await page.locator('[data-testid=group-range]').filter({ hasText: '1–100 of 10,000' }).waitFor(WAIT);
    for (let i = 1; i <= 3; i++) {
      await page.getByRole('button', { name: 'Next page' }).click();
      await page
        .locator('[data-testid=group-range]')
        .filter({ hasText: `${i * 100 + 1}–${(i + 1) * 100} of 10,000` })
        .waitFor(WAIT);
      // The range shown is that of the rows shown, also while the next page is still loading.
      assert.match(await page.locator('.row-action').nth(1).innerText(), new RegExp(`square\\s*#${i * 100}\\b`));
    }
    assert.equal(await page.locator('.row-action').count(), 1 + 100);
    assert.match(await page.locator('.row-action').nth(1).innerText(), /square\s*#300/);
  });

  it('lists the causes of a 10 000-item map within a second; a cause, an index or a text filters its members', async () => {
    const big = await flyte.withRunContext({ name: 'flaky-10k' }).run(flaky, 10_000);
    assert.equal(await big.outputs(), 800);
    const started = performance.now();
    await page.goto(big.url);
    const causes = page.locator('[data-testid=cause-list] [data-testid=cause]');
    await causes.nth(FLAKY_CAUSES.length - 1).waitFor(WAIT);
    const elapsed = performance.now() - started;
    assertShownWithin('the cause list of a 10 000-item map with 3 causes', elapsed, 1000);
    assert.deepEqual(
      (await causes.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim()),
      FLAKY_CAUSES.map((c) => `${c.count} × ${c.pattern} ${c.code}`),
    );

    // A cause: the fan-out opens on its members, paged, shown as `task #i`.
    await causes.filter({ hasText: 'HTTP 404' }).click();
    const range = page.locator('[data-testid=group-range]');
    await range.filter({ hasText: '1–100 of 200' }).waitFor(WAIT);
    const members = page.locator('.row-action');
    assert.equal(await members.count(), 1 + 100);
    assert.match(await members.nth(1).innerText(), /fetchItem #2\b/);
    assert.match(await members.nth(2).innerText(), /fetchItem #52\b/);
    assert.equal(await members.nth(1).locator('.label').getAttribute('title'), await members.nth(1).getAttribute('data-action'));
    await page.getByRole('button', { name: 'Next page' }).click();
    await range.filter({ hasText: '101–200 of 200' }).waitFor(WAIT);
    await rowText(members.nth(1), /fetchItem #5002\b/);
    assert.equal(await page.getByRole('button', { name: 'Next page' }).isDisabled(), true);

    // The search box: an item index, then text in the inputs or the error message.
    const search = page.locator('[data-testid=member-search]');
    await search.fill('#4242');
    await search.press('Enter');
    await range.filter({ hasText: '1–1 #4242' }).waitFor(WAIT);
    await rowText(members.nth(1), /fetchItem #4242\b/);
    assert.equal(await members.count(), 1 + 1);
    assert.equal(await causes.filter({ hasText: 'HTTP 404' }).getAttribute('aria-pressed'), 'false');
    await search.fill('/data/IN/703.csv');
    await search.press('Enter');
    await rowText(members.nth(1), /fetchItem #703\b/);
    await range.filter({ hasText: '1–1 “/data/IN/703.csv”' }).waitFor(WAIT);
    assert.equal(await members.count(), 1 + 1);
    await page.locator('[data-testid=clear-filter]').click();
    await range.filter({ hasText: '1–100 of 10,000' }).waitFor(WAIT);
    assert.equal(await search.inputValue(), '');
  });

  it('opens a run at run.url', async () => {
    assert.equal(seed.url, `${ui.url}/runs/seed-pipeline`);
    await page.goto(seed.url);
    await page.locator('[data-testid=run-name]').filter({ hasText: 'seed-pipeline' }).waitFor(WAIT);
    assert.equal(await page.locator('.run-page').getAttribute('data-phase'), 'succeeded');
  });

  it('updates a running run live, without reloading, and aborts it from its page', async () => {
    const run = await flyte.withRunContext({ name: 'gated-live' }).run(gated, 'live', 6);
    await page.goto(run.url);
    const header = page.locator('.run-header');
    await header.getByText('Running').first().waitFor(WAIT);
    const map = page.locator('[data-testid=group-row]');
    await map.filter({ hasText: '6 actions' }).waitFor(WAIT);
    await page.evaluate('window.marker = 42'); // gone if the page reloads

    uiGates.open('live:0');
    uiGates.open('live:1');
    await map.filter({ hasText: '✓ 2' }).waitFor(WAIT);
    await map.filter({ hasText: '● 4' }).waitFor(WAIT);
    await header.filter({ hasText: /✓ 2/ }).waitFor(WAIT);
    uiGates.open('live:2');
    await map.filter({ hasText: '✓ 3' }).waitFor(WAIT);
    assert.equal(await page.evaluate('window.marker'), 42);

    await header.getByRole('button', { name: 'Abort' }).click();
    await header.getByRole('button', { name: 'Yes, abort' }).click();
    await page.locator('.run-page[data-phase=aborted]').waitFor(WAIT);
    await header.getByText('Aborted').first().waitFor(WAIT);
    await map.filter({ hasText: '⊘ 3' }).waitFor(WAIT);
    assert.equal((await run.record()).phase, 'aborted');
    assert.equal(await page.evaluate('window.marker'), 42);
  });

  it("shows a running map's time left, growing while nothing completes, and none once it ended", async () => {
    const run = await flyte.withRunContext({ name: 'gated-eta' }).run(gated, 'eta', 6);
    await page.goto(run.url);
    const map = page.locator('[data-testid=group-row]');
    await map.filter({ hasText: '● 6' }).waitFor(WAIT);
    const eta = map.locator('[data-testid=eta]');
    assert.equal(await eta.count(), 0, 'no estimate while nothing is done');

    uiGates.open('eta:0');
    uiGates.open('eta:1');
    await eta.waitFor(WAIT);
    // 2 of 6 done in the group's time so far: 4 more take twice as long (read in one frame, rounded up).
    const read = async (): Promise<{ leftS: number; ranS: number }> => {
      // One read of the row: the two texts of one render.
      const [left = '', ran = ''] = await map.evaluate((row: RowElement) =>
        ['[data-testid=eta]', '.cell.num'].map((selector) => row.querySelector(selector)?.textContent ?? ''),
      );
      const leftS = /^~(\d+)s left$/.exec(left)?.[1] ?? assert.fail(`an ETA of '${left}'`);
      const ranS = /^(\d+\.\d+)s$/.exec(ran)?.[1] ?? assert.fail(`a duration of '${ran}'`);
      return { leftS: Number(leftS), ranS: Number(ranS) };
    };
    const first = await read();
    assert.match(await map.innerText(), /✓ 2/);
    assert.ok(first.ranS >= 1, `an ETA after ${first.ranS}s`);
    assert.ok(Math.abs(first.leftS - 2 * first.ranS) <= 1.1, `~${first.leftS}s left after ${first.ranS}s`);
    // The gates stay shut: at each render the same 2 done took longer, and the estimate grows.
    const deadline = Date.now() + WAIT.timeout;
    let later = first;
    while (later.leftS <= first.leftS && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      later = await read();
    }
    assert.ok(later.leftS > first.leftS, `~${first.leftS}s left, then ~${later.leftS}s`);

    for (let i = 2; i < 6; i++) uiGates.open(`eta:${i}`);
    await page.locator('.run-page[data-phase=succeeded]').waitFor(WAIT);
    await map.filter({ hasText: '✓ 6' }).waitFor(WAIT);
    await eta.waitFor({ state: 'detached', ...WAIT });
    assert.doesNotMatch(await map.innerText(), /left/);
  });

  it('aborts one action from its panel while the run goes on', async () => {
    const run = await flyte.withRunContext({ name: 'gated-one' }).run(gatedTolerant, 'one', 3);
    let steps = (await run.actions()).filter((a) => a.taskName.endsWith('.step'));
    while (steps.length < 3 || steps.some((a) => a.phase !== 'running')) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      steps = (await run.actions()).filter((a) => a.taskName.endsWith('.step'));
    }
    const doomed = steps[1] ?? assert.fail('a second step');
    await page.goto(`${run.url}?action=${doomed.name}`);
    const panel = page.locator(`[data-testid=action-panel][data-action="${doomed.name}"]`);
    await panel.getByText('Running').first().waitFor(WAIT);
    await panel.getByRole('button', { name: 'Abort action' }).click();
    await panel.getByRole('button', { name: 'Cancel' }).click();
    await panel.getByRole('button', { name: 'Abort action' }).click();
    await panel.getByRole('button', { name: 'Yes, abort' }).click();
    await panel.getByText('Aborted').first().waitFor(WAIT);
    assert.equal(await panel.getByRole('button', { name: 'Abort action' }).count(), 0);
    assert.equal((await run.action(doomed.name).record())?.phase, 'aborted');
    assert.equal((await run.record()).phase, 'running');
    assert.equal(await page.locator('.run-page').getAttribute('data-phase'), 'running');

    uiGates.open('one:0');
    uiGates.open('one:2');
    await page.locator('.run-page[data-phase=succeeded]').waitFor(WAIT);
    assert.deepEqual(await run.outputs(), [0, null, 2]);
  });

  it('reruns a run from its page and goes to the new run', async () => {
    await page.goto(`${ui.url}/runs/hostile-values`);
    await page.getByRole('button', { name: 'Rerun' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/runs/') && url.pathname !== '/runs/hostile-values', WAIT);
    await page.locator('.run-page[data-phase=succeeded]').waitFor(WAIT);
    assert.match(await page.locator('.run-header').innerText(), /hostile/);
  });

  it("follows a running run's logs live, every action's lines prefixed with its name (task #i), until it ends", async () => {
    const run = await flyte.withRunContext({ name: 'chatty-live' }).run(chatty, 'talk', 3);
    await page.goto(`${run.url}?view=logs`);
    const view = page.locator('[data-testid=run-logs]');
    const lines = view.locator('[data-testid=run-log-lines] .log-line');
    const line = (text: string): Locator => lines.filter({ has: page.getByText(text, { exact: true }) });
    // What the items wrote before they wait for their gates: lines written before the page opened.
    for (const i of [0, 1, 2]) await line(`item ${i} waiting`).waitFor(WAIT);
    await line('chatty over 3 items').waitFor(WAIT);
    assert.equal(await view.getAttribute('data-state'), 'following');
    assert.match(await view.locator('[data-testid=run-logs-status]').innerText(), /following the run/);
    await page.evaluate('window.marker = 7'); // gone if the page reloads
    const items = (await run.actions()).filter((a) => a.taskName === 'ui_demo.chatter');
    for (const i of [0, 1, 2]) {
      const who = line(`item ${i} waiting`).locator('.log-who');
      assert.equal(await who.innerText(), `chatter #${i}`);
      // The hash name (and attempt) on hover.
      const hash = items.find((a) => a.itemIndex === i)?.name ?? assert.fail(`item ${i}`);
      assert.match((await who.getAttribute('title')) ?? '', new RegExp(`^${hash} · attempt 1$`));
    }
    assert.equal(await line('chatty over 3 items').locator('.log-who').innerText(), 'chatty');

    // New lines come in without a reload, each once: item 1's on stderr.
    uiGates.open('talk:1');
    await line('item 1 done').waitFor(WAIT);
    assert.equal(await line('item 1 done').locator('.log-who').innerText(), 'chatter #1');
    assert.equal(await line('item 1 done').getAttribute('data-stream'), 'stderr');
    assert.equal(await line('item 0 done').count(), 0);
    assert.equal(await view.getAttribute('data-state'), 'following');
    uiGates.open('talk:0');
    uiGates.open('talk:2');
    await line('chatty done: 3').waitFor(WAIT);
    await page.locator('[data-testid=run-logs][data-state=ended]').waitFor(WAIT);
    assert.match(await view.locator('[data-testid=run-logs-status]').innerText(), /The run ended/);
    assert.equal((await run.record()).phase, 'succeeded');
    assert.deepEqual(
      (await lines.locator('.log-text').allInnerTexts()).sort(),
      ['chatty done: 3', 'chatty over 3 items', ...[0, 1, 2].flatMap((i) => [`item ${i} done`, `item ${i} waiting`])].sort(),
    );
    assert.equal(await lines.last().locator('.log-text').innerText(), 'chatty done: 3');
    assert.equal(await page.evaluate('window.marker'), 7);

    // A name selects its action, and the logs stay on screen.
    const two = items.find((a) => a.itemIndex === 2)?.name ?? assert.fail('item 2');
    await line('item 2 done').locator('.log-who').click();
    await page.locator(`[data-testid=action-panel][data-action="${two}"]`).waitFor(WAIT);
    assert.deepEqual(
      [new URL(page.url()).searchParams.get('view'), new URL(page.url()).searchParams.get('action')],
      ['logs', two],
    );
    assert.equal(await lines.count(), 8);
    assert.equal(await lines.filter({ hasText: 'item 2' }).locator('.log-who').first().innerText(), 'chatter #2');
    assert.equal(await page.locator('.log-line.log-selected').count(), 2);
    // The Actions tab goes back to the tree, with the selection.
    await page.locator('.view-tabs [data-view=tree]').click();
    await page.locator('[data-testid=tree]').waitFor(WAIT);
    assert.equal(new URL(page.url()).searchParams.get('action'), two);
  });

  it('keeps at most 2 000 of a run\'s 100 000 log lines on the page, and pages older and newer ones in', async () => {
    const run = await flyte.withRunContext({ name: 'loud-100k' }).run(loud, 100_000);
    await run.wait();
    const started = performance.now();
    await page.goto(`${run.url}?view=logs`);
    const view = page.locator('[data-testid=run-logs]');
    const lines = view.locator('[data-testid=run-log-lines] .log-line');
    const texts = async (): Promise<[number, string, string]> => [
      await lines.count(),
      await lines.first().locator('.log-text').innerText(),
      await lines.last().locator('.log-text').innerText(),
    ];
    // It opens at the end, one page of lines.
    await lines.last().filter({ hasText: 'line 99999' }).waitFor(WAIT);
    console.log(`last lines of a 100 000-line run visible ${(performance.now() - started).toFixed(0)} ms after opening the page`);
    await page.locator('[data-testid=run-logs][data-state=ended]').waitFor(WAIT);
    assert.deepEqual(await texts(), [1000, 'line 99000', 'line 99999']);
    const older = view.locator('[data-testid=run-logs-older]');
    assert.match(await older.innerText(), /Older lines are paged: at most 2,000 lines are kept on the page/);

    await older.getByRole('button', { name: 'Load older' }).click();
    await lines.first().filter({ hasText: 'line 98000' }).waitFor(WAIT);
    assert.deepEqual(await texts(), [2000, 'line 98000', 'line 99999']);
    // Past 2 000 lines, the newest go: the window moves back.
    await older.getByRole('button', { name: 'Load older' }).click();
    await lines.first().filter({ hasText: 'line 97000' }).waitFor(WAIT);
    assert.deepEqual(await texts(), [2000, 'line 97000', 'line 98999']);
    await page.locator('[data-testid=run-logs][data-state=paused]').waitFor(WAIT);
    const newer = view.locator('[data-testid=run-logs-newer]');
    await newer.getByRole('button', { name: 'Load newer' }).click();
    await lines.last().filter({ hasText: 'line 99999' }).waitFor(WAIT);
    assert.deepEqual(await texts(), [2000, 'line 98000', 'line 99999']);
    await page.locator('[data-testid=run-logs][data-state=ended]').waitFor(WAIT);
    assert.equal(await newer.count(), 0);
  });

  it('had no errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});

describe('web UI with a token, in Chromium', { skip: missing }, () => {
  const TOKEN = 'e2e-token-0123456789abcdef';
  const root = tempRoot();
  let ui: UiServer;
  let browser: TestBrowser;

  before(async () => {
    ui = await startUiServer({ port: 0, host: '0.0.0.0', token: TOKEN, log: () => undefined });
    flyte.init(initOptions(root.path, { uiUrl: ui.url }));
    await (await flyte.withRunContext({ name: 'behind-token' }).run(square, 7)).wait();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await ui?.close();
    await flyte.shutdown();
    root.dispose();
  });

  it('answers 401 without the token, and works with it, keeping it in a cookie', async () => {
    const page = await browser.context.newPage();
    const denied = await page.goto(`${ui.url}/runs/behind-token`);
    assert.equal(denied?.status(), 401);
    assert.match(await page.locator('body').innerText(), /needs its token/);

    await page.goto(`${ui.url}/runs/behind-token?token=${TOKEN}`);
    await page.locator('.run-page[data-phase=succeeded]').waitFor(WAIT);
    assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
    // Later pages (and the API calls and event stream behind them) use the cookie.
    await page.goto(`${ui.url}/`);
    await page.locator('tr[data-run="behind-token"]').waitFor(WAIT);
    await page.close();
  });
});
