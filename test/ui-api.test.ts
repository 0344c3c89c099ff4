/**
 * The UI server without a browser: its JSON API over real runs, the event stream, and who may talk to it
 * (token, Host header, POST checks).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as flyte from 'flyte-ts';
import type { RunLogView, RunLogsPage } from '../src/ui/api.js';
import { startUiServer, type UiServer } from '../src/ui/server.js';
import { assertShownWithin, tempRoot } from './support/ui.js';
import { initOptions, rootEnv } from './support/test-store.js';
import { TEXTS, big, hostile, loud, pipeline, wide } from './support/ui-seed.js';

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP request with exactly the given headers (a browser could not send some of these). */
function call(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    // The path goes as it is (not through URL, which would read `//x` as another host).
    const req = request({ hostname, port, path, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const JSON_POST = { 'content-type': 'application/json' };

describe('UI server API', () => {
  const root = tempRoot();
  let ui: UiServer;
  let seed: string;
  let wideRun: string;
  let hostileRun: string;
  let bigRun: string;

  before(async () => {
    ui = await startUiServer({ port: 0, log: () => undefined });
    flyte.init(initOptions(root.path, { uiUrl: ui.url }));
    const runs = await Promise.all([
      flyte.run(pipeline, TEXTS, 300),
      flyte.withRunContext({ name: 'wide-10k' }).run(wide, 10_000),
      flyte.run(hostile, '<b>bold</b>'),
      flyte.run(big, 5000),
    ]);
    await Promise.all(runs.map((r) => r.wait()));
    [seed, wideRun, hostileRun, bigRun] = runs.map((r) => r.name) as [string, string, string, string];
  });

  after(async () => {
    await ui.close();
    await flyte.shutdown();
    root.dispose();
  });

  it('lists runs newest first with counts, filters by phase and task, and pages', async () => {
    const all = (await call(ui.url, '/api/runs')).json<{ runs: { name: string; counts: { total: number } }[] }>();
    assert.deepEqual(all.runs.map((r) => r.name).sort(), [seed, wideRun, hostileRun, bigRun].sort());
    assert.equal(all.runs.find((r) => r.name === wideRun)?.counts.total, 10_001);

    const byTask = (await call(ui.url, '/api/runs?task=ui_demo.hostile')).json<{ runs: { name: string }[] }>();
    assert.deepEqual(
      byTask.runs.map((r) => r.name),
      [hostileRun],
    );
    const failed = (await call(ui.url, '/api/runs?phase=failed')).json<{ runs: unknown[] }>();
    assert.equal(failed.runs.length, 0);

    const first = (await call(ui.url, '/api/runs?limit=3')).json<{ runs: { name: string }[]; hasMore: boolean }>();
    const second = (await call(ui.url, '/api/runs?limit=3&offset=3')).json<{
      runs: { name: string }[];
      hasMore: boolean;
    }>();
    assert.equal(first.runs.length, 3);
    assert.equal(first.hasMore, true);
    assert.equal(second.runs.length, 1);
    assert.equal(second.hasMore, false);

    assert.equal((await call(ui.url, '/api/runs?phase=exploded')).status, 400);
    assert.equal((await call(ui.url, '/api/runs?limit=-1')).status, 400);
    assert.equal((await call(ui.url, '/api/runs?limit=100000')).status, 400);
  });

  it('answers a run, its folded groups and a page of a group', async () => {
    const detail = (await call(ui.url, `/api/runs/${seed}`)).json<{
      run: { phase: string };
      root: { hasChildren: boolean };
    }>();
    assert.equal(detail.run.phase, 'succeeded');
    assert.equal(detail.root.hasChildren, true);

    type Tree = {
      groups: { group: string; counts: { total: number; failed: number } }[];
      actions: { taskName: string }[];
    };
    const tree = (await call(ui.url, `/api/runs/${seed}/tree?parent=a0`)).json<Tree>();
    assert.deepEqual(
      tree.groups.map((g) => [g.group, g.counts.total]),
      [
        ['preprocess', 4],
        ['ui_demo.score_map', 300],
      ],
    );
    assert.equal(tree.groups[1]?.counts.failed, 3); // ids 13, 110, 207
    assert.deepEqual(
      tree.actions.map((a) => a.taskName),
      ['trace:summarize'],
    );

    const page = (
      await call(ui.url, `/api/runs/${seed}/actions?parent=a0&group=ui_demo.score_map&offset=100&limit=50`)
    ).json<{ actions: { group: string }[]; hasMore: boolean }>();
    assert.equal(page.actions.length, 50);
    assert.equal(page.hasMore, true);
    assert.ok(page.actions.every((a) => a.group === 'ui_demo.score_map'));

    const failed = (
      await call(ui.url, `/api/runs/${seed}/actions?parent=a0&group=ui_demo.score_map&phase=failed`)
    ).json<{ actions: { phase: string; attempts: number }[] }>();
    assert.deepEqual(
      failed.actions.map((a) => [a.phase, a.attempts]),
      [
        ['failed', 2],
        ['failed', 2],
        ['failed', 2],
      ],
    );

    assert.equal((await call(ui.url, '/api/runs/no-such-run')).status, 404);
    assert.equal((await call(ui.url, '/api/runs/no-such-run/tree')).status, 404);
    assert.equal((await call(ui.url, `/api/runs/${seed}/actions/nope`)).status, 404);
  });

  it('answers the causes of a fan-out, and filters its members by failure, text, item index and cause', async () => {
    const fanOut = `parent=a0&group=ui_demo.score_map`;
    const causes = await call(ui.url, `/api/runs/${seed}/causes?${fanOut}`);
    assert.equal(causes.status, 200);
    const [cause, ...others] = causes.json<{ code: string; pattern: string; count: number; example: string }[]>();
    assert.deepEqual(others, []);
    assert.deepEqual([cause?.code, cause?.pattern, cause?.count], [
      'RangeError',
      'item <n> has no score: text too short',
      3,
    ]);
    type Page = { actions: { name: string; itemIndex: number; phase: string }[]; hasMore: boolean };
    const members = async (filters: string): Promise<Page> => {
      const reply = await call(ui.url, `/api/runs/${seed}/actions?${fanOut}&${filters}`);
      assert.equal(reply.status, 200, reply.text);
      return reply.json<Page>();
    };
    const byCause = await members(
      `code=${encodeURIComponent(cause?.code ?? '')}&pattern=${encodeURIComponent(cause?.pattern ?? '')}`,
    );
    assert.deepEqual(
      byCause.actions.map((a) => a.itemIndex),
      [13, 110, 207],
    );
    assert.equal(byCause.actions[0]?.name, cause?.example);
    assert.deepEqual(
      (await members('failed=1&limit=2')).actions.map((a) => a.itemIndex),
      [13, 110],
    );
    assert.equal((await members('failed=1&limit=2')).hasMore, true);
    assert.deepEqual(
      (await members('item=42')).actions.map((a) => [a.itemIndex, a.phase]),
      [[42, 'succeeded']],
    );
    assert.deepEqual(
      (await members('text=ITEM%20207')).actions.map((a) => a.itemIndex),
      [207],
    );
    const bad = async (path: string, message: RegExp): Promise<void> => {
      const reply = await call(ui.url, path);
      assert.equal(reply.status, 400, reply.text);
      assert.match(reply.text, message);
    };
    await bad(`/api/runs/${seed}/causes?parent=a0`, /expected \?parent=ACTION&group=GROUP/);
    await bad(`/api/runs/${seed}/actions?${fanOut}&code=Error`, /a cause needs both code and pattern/);
    await bad(`/api/runs/${seed}/actions?${fanOut}&item=-1`, /item: expected an integer from 0/);
    await bad(`/api/runs/${seed}/actions?${fanOut}&failed=yes`, /failed: expected 1 or 0/);
    assert.equal((await call(ui.url, `/api/runs/no-such-run/causes?${fanOut}`)).status, 404);
  });

  it('serves a 10 000-item map without reading its members: each request well under a second', async () => {
    const paths = [
      `/api/runs/${wideRun}`,
      `/api/runs/${wideRun}/tree?parent=a0`,
      `/api/runs/${wideRun}/groups`,
      `/api/runs/${wideRun}/actions?parent=a0&group=ui_demo.square_map&offset=9900&limit=100`,
      `/api/runs/${wideRun}/actions/a0`,
    ];
    const started = performance.now();
    const replies = await Promise.all(paths.map((p) => call(ui.url, p)));
    const elapsed = performance.now() - started;
    assert.deepEqual(
      replies.map((r) => r.status),
      [200, 200, 200, 200, 200],
    );
    assertShownWithin('the first screen of a 10 000-item run (its API replies)', elapsed, 1000);
    const tree = replies[1]!.json<{ groups: { counts: { total: number; succeeded: number } }[]; actions: unknown[] }>();
    assert.deepEqual(tree.groups[0]?.counts.total, 10_000);
    assert.deepEqual(tree.groups[0]?.counts.succeeded, 10_000);
    assert.equal(tree.actions.length, 0);
    assert.ok(replies[1]!.text.length < 2000, 'the folded tree is a few hundred bytes, not 10 000 records');
  });

  it('decodes inputs and outputs, shows offloaded values by size, and returns logs and attempts', async () => {
    type Detail = {
      inputs: { parts: string[]; offloaded: boolean };
      outputs: { parts: string[]; offloaded: boolean; bytes: number };
      logs: { line: string }[];
      attempts: { attempt: number }[];
    };
    const root = (await call(ui.url, `/api/runs/${seed}/actions/a0`)).json<Detail>();
    assert.deepEqual(root.inputs.parts, [`[ '  Alpha', 'BETA ', ' Gamma ', 'delta' ]`, '300']);
    assert.match(root.outputs.parts[0] ?? '', /failed: 3/);
    assert.match(root.outputs.parts[0] ?? '', /tags: Set\(1\) \{ 'ui' \}/);
    assert.deepEqual(
      root.logs.map((l) => l.line),
      ['pipeline over 300 items', '297 scored, 3 failed'],
    );
    assert.equal(root.attempts.length, 1);

    const offloaded = (await call(ui.url, `/api/runs/${bigRun}/actions/a0`)).json<Detail>();
    assert.equal(offloaded.outputs.offloaded, true);
    assert.ok(offloaded.outputs.bytes > 5000);
    assert.deepEqual(offloaded.outputs.parts, []);

    const html = (await call(ui.url, `/api/runs/${hostileRun}/actions/a0`)).json<Detail>();
    assert.match(html.outputs.parts[0] ?? '', /<img src=x onerror=/); // data, sent as JSON; the page shows it as text
  });

  it('streams a run over Server-Sent Events, starting with its current state', async () => {
    const first = await new Promise<string>((resolve, reject) => {
      const req = request(new URL(`/api/runs/${seed}/events`, ui.url), (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
        let buffer = '';
        res.on('data', (c: Buffer) => {
          buffer += c.toString('utf8');
          const end = buffer.indexOf('\n\n', buffer.indexOf('event: update'));
          if (buffer.includes('event: update') && end > 0) {
            req.destroy();
            resolve(buffer);
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
    const data = /data: (.*)\n/.exec(first.slice(first.indexOf('event: update')))?.[1] ?? '';
    const event = JSON.parse(data) as { run: { name: string; phase: string; counts: { total: number } } };
    assert.equal(event.run.name, seed);
    assert.equal(event.run.counts.total, 306);
    assert.equal((await call(ui.url, '/api/runs/no-such-run/events')).status, 404);
  });

  it('refuses to abort an ended run or an unknown one, and checks the request body', async () => {
    const ended = await call(ui.url, `/api/runs/${seed}/abort`, { method: 'POST', headers: JSON_POST, body: '{}' });
    assert.equal(ended.status, 409);
    assert.match(ended.json<{ error: string }>().error, /already ended \(succeeded\)/);
    const unknown = await call(ui.url, '/api/runs/nope/abort', { method: 'POST', headers: JSON_POST, body: '{}' });
    assert.equal(unknown.status, 404);
    const endedAction = await call(ui.url, `/api/runs/${seed}/actions/a0/abort`, {
      method: 'POST',
      headers: JSON_POST,
      body: '{}',
    });
    assert.equal(endedAction.status, 409);
    assert.match(endedAction.json<{ error: string }>().error, /action a0 already ended \(succeeded\)/);
    const post = (path: string, body = '{}') => call(ui.url, path, { method: 'POST', headers: JSON_POST, body });
    assert.equal((await post(`/api/runs/${seed}/actions/nope/abort`)).status, 404);
    assert.equal((await post('/api/runs/nope/actions/a0/abort')).status, 404);
    assert.equal((await post(`/api/runs/${seed}/actions/a0/abort`, '{"reason":7}')).status, 400);
    const bad = await call(ui.url, `/api/runs/${seed}/rerun`, {
      method: 'POST',
      headers: JSON_POST,
      body: '{"recover":"yes"}',
    });
    assert.equal(bad.status, 400);
    const notJson = await call(ui.url, `/api/runs/${seed}/rerun`, {
      method: 'POST',
      headers: JSON_POST,
      body: 'recover',
    });
    assert.equal(notJson.status, 400);
  });

  it('reruns a run as a new run through the API', async () => {
    const reply = await call(ui.url, `/api/runs/${hostileRun}/rerun`, {
      method: 'POST',
      headers: JSON_POST,
      body: '{}',
    });
    assert.equal(reply.status, 200);
    const { name } = reply.json<{ name: string }>();
    assert.notEqual(name, hostileRun);
    const run = await flyte.getRun(name);
    assert.equal((await run.wait()).phase, 'succeeded');
  });

  it('only answers requests that name this machine as Host (no DNS rebinding), and POSTs of JSON from itself', async () => {
    const port = new URL(ui.url).port;
    assert.equal((await call(ui.url, '/api/runs', { headers: { host: `localhost:${port}` } })).status, 200);
    assert.equal((await call(ui.url, '/api/runs', { headers: { host: `evil.example:${port}` } })).status, 403);
    assert.equal((await call(ui.url, '/', { headers: { host: `evil.example:${port}` } })).status, 403);
    const form = await call(ui.url, `/api/runs/${seed}/abort`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'reason=x',
    });
    assert.equal(form.status, 403);
    const foreign = await call(ui.url, `/api/runs/${seed}/abort`, {
      method: 'POST',
      headers: { ...JSON_POST, origin: 'http://evil.example' },
      body: '{}',
    });
    assert.equal(foreign.status, 403);
    const foreignAction = await call(ui.url, `/api/runs/${seed}/actions/a0/abort`, {
      method: 'POST',
      headers: { ...JSON_POST, origin: 'http://evil.example' },
      body: '{}',
    });
    assert.equal(foreignAction.status, 403);
  });

  it('sends security headers, serves the app at /runs/NAME, and nothing outside its files', async () => {
    const page = await call(ui.url, `/runs/${seed}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /<div id="app">/);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self' 'sha256-/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal((await call(ui.url, '/static/app.js')).status, 200);
    assert.equal((await call(ui.url, '/vendor/preact.mjs')).status, 200);
    assert.equal((await call(ui.url, '/static/..%2f..%2fpackage.json')).status, 404);
    assert.equal((await call(ui.url, '/static/%2e%2e/server.ts')).status, 404);
    assert.equal((await call(ui.url, '/nope')).status, 404);
    assert.equal((await call(ui.url, '/api/runs', { method: 'DELETE' })).status, 405);
    const etag = (await call(ui.url, '/static/app.js')).headers.etag ?? '';
    assert.equal((await call(ui.url, '/static/app.js', { headers: { 'if-none-match': etag } })).status, 304);
  });
  it("answers a run's logs, every action's, in write order with display names, paged both ways", async () => {
    type Line = RunLogView;
    type Logs = RunLogsPage & { lines: Line[] };
    const logs = async (run: string, q: string): Promise<Logs> => {
      const reply = await call(ui.url, `/api/runs/${run}/logs${q}`);
      assert.equal(reply.status, 200, reply.text);
      return reply.json<Logs>();
    };

    // The pipeline: the root's two lines around its four `clean` calls and its failed items' lines (stderr,
    // one per attempt), each with its action's display name.
    const all = await logs(seed, '');
    assert.equal(all.lines.length, 12);
    assert.equal(all.hasMore, false);
    assert.equal(all.runPhase, 'succeeded');
    assert.equal(all.terminal, true);
    assert.equal(all.next, all.lines[11]?.seq);
    assert.deepEqual(Object.keys(all.lines[0] ?? {}).sort(), [
      'actionName',
      'at',
      'attempt',
      'displayName',
      'itemIndex',
      'line',
      'seq',
      'stream',
    ]);
    assert.deepEqual(
      [all.lines[0], all.lines[11]].map((l) => [l?.displayName, l?.actionName, l?.line]),
      [
        ['pipeline', 'a0', 'pipeline over 300 items'],
        ['pipeline', 'a0', '297 scored, 3 failed'],
      ],
    );
    assert.deepEqual(
      all.lines.filter((l) => l.displayName === 'clean').map((l) => l.itemIndex),
      [null, null, null, null],
    );
    const failed = all.lines.filter((l) => l.stream === 'stderr');
    assert.deepEqual(
      failed.map((l) => [l.displayName, l.itemIndex, l.attempt, l.line]).sort(),
      [13, 110, 207]
        .flatMap((i) =>
          [1, 2].map((attempt) => [
            `score #${i}`,
            i,
            attempt,
            `item ${i}: no model score for ${JSON.stringify(TEXTS[i % 4]?.trim().toLowerCase())}`,
          ]),
        )
        .sort(),
    );
    assert.ok(all.lines.every((l, i) => i === 0 || l.seq > (all.lines[i - 1]?.seq ?? 0)));

    // 2 500 lines of one action: forwards after each cursor, then backwards from the end.
    const run = await flyte.withRunContext({ name: 'loud-2500' }).run(loud, 2500);
    await run.wait();
    const forwards: Line[] = [];
    let after = 0;
    const more: boolean[] = [];
    for (;;) {
      const page = await logs(run.name, `?after=${after}`);
      forwards.push(...page.lines);
      more.push(page.hasMore);
      after = page.next;
      if (!page.hasMore) break;
    }
    assert.deepEqual(more, [true, true, false]); // 1 000 + 1 000 + 500: the default page
    assert.deepEqual(
      forwards.map((l) => l.line),
      Array.from({ length: 2500 }, (_, i) => `line ${i}`),
    );
    assert.ok(forwards.every((l) => l.displayName === 'loud' && l.actionName === 'a0'));
    assert.deepEqual((await logs(run.name, `?after=${after}`)).lines, []);
    assert.equal((await logs(run.name, `?after=${after}`)).next, after);

    const last = await logs(run.name, '?before=end&limit=600');
    assert.deepEqual(last.lines, forwards.slice(1900));
    assert.equal(last.hasMore, true);
    assert.equal(last.next, forwards[2499]?.seq);
    const older = await logs(run.name, `?before=${last.lines[0]?.seq}&limit=1500`);
    assert.deepEqual(older.lines, forwards.slice(400, 1900));
    assert.equal(older.hasMore, true);
    const oldest = await logs(run.name, `?before=${older.lines[0]?.seq}&limit=1500`);
    assert.deepEqual(oldest.lines, forwards.slice(0, 400));
    assert.equal(oldest.hasMore, false);
    assert.deepEqual((await logs(run.name, '?limit=10000')).lines, forwards);
    assert.equal((await logs(run.name, `?after=${forwards[2497]?.seq}&limit=2`)).hasMore, false);
    assert.equal((await logs(run.name, `?after=${forwards[2496]?.seq}&limit=2`)).hasMore, true);

    // A run without lines, from the end: nothing, and the cursor to follow it from is the start.
    const quiet = await logs(bigRun, '?before=end');
    assert.deepEqual([quiet.lines, quiet.next, quiet.hasMore], [[], 0, false]);

    const bad = async (q: string, message: RegExp): Promise<void> => {
      const reply = await call(ui.url, `/api/runs/${run.name}/logs${q}`);
      assert.equal(reply.status, 400, q);
      assert.match(reply.json<{ error: string }>().error, message);
    };
    await bad('?limit=0', /^limit: expected an integer from 1 to 10000; received "0"$/);
    await bad('?limit=10001', /^limit: expected an integer from 1 to 10000; received "10001"$/);
    await bad('?after=-1', /^after: expected an integer from 0 to \d+; received "-1"$/);
    await bad('?after=x', /^after: expected an integer/);
    await bad('?before=soon', /^before: expected a line's seq \(an integer from 0\) or "end"; received "soon"$/);
    await bad(
      '?before=end&after=3',
      /^logs: expected one cursor, after=SEQ or before=SEQ\|end; received after="3" and before="end"$/,
    );
    assert.equal((await call(ui.url, '/api/runs/no-such-run/logs')).status, 404);
    assert.match(
      (await call(ui.url, '/api/runs/no-such-run/logs')).json<{ error: string }>().error,
      /no run named no-such-run/,
    );
  });
});

/** Reads the `update` events of an event stream, until `until` accepts one. */
function watchEvents<T>(
  url: string,
  until: (data: T) => boolean,
): { done: Promise<T>; seen: T[]; first: Promise<void> } {
  const seen: T[] = [];
  let sawFirst!: () => void;
  const first = new Promise<void>((resolve) => (sawFirst = resolve));
  const done = new Promise<T>((resolve, reject) => {
    const req = request(url, (res) => {
      let buffer = '';
      res.on('data', (c: Buffer) => {
        buffer += c.toString('utf8');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!block.startsWith('event: update') || data === undefined) continue;
          const parsed = JSON.parse(data) as T;
          seen.push(parsed);
          sawFirst();
          if (until(parsed)) {
            req.destroy();
            resolve(parsed);
          }
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
  return { done, seen, first };
}

describe('UI server over a run driven by another process', () => {
  const root = tempRoot();
  let ui: UiServer;
  before(async () => {
    flyte.init(initOptions(root.path));
    ui = await startUiServer({ port: 0, pollIntervalMs: 50, log: () => undefined });
  });
  after(async () => {
    await ui.close();
    await flyte.shutdown();
    root.dispose();
  });

  it('follows it live through the store, and aborts it', async (t) => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=flyte-source',
        '--import',
        'tsx',
        fileURLToPath(new URL('./support/ui-child.ts', import.meta.url)),
        root.path,
        root.path,
        '4',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...rootEnv(root.path) } },
    );
    // Ended in any case: a failed assertion must not leave it waiting for its gates (and the test file with it).
    t.after(() => {
      child.kill('SIGKILL');
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const name = String((await lines.next()).value);
    type Update = { run: { phase: string; counts: { running: number; succeeded: number; aborted: number } } };
    const events = watchEvents<Update>(
      new URL(`/api/runs/${name}/events`, ui.url).href,
      (d) => d.run.counts.succeeded === 1,
    );
    // The step is released once the stream has shown the run: its first update comes before the step ends.
    await events.first;
    writeFileSync(join(root.path, 'go-0'), '');
    const update = await events.done;
    assert.equal(update.run.phase, 'running');
    assert.equal(update.run.counts.running, 4); // the root and three steps
    assert.ok(
      events.seen.some((d) => d.run.counts.succeeded === 0),
      'the stream showed the run before the step ended',
    );

    const reply = await call(ui.url, `/api/runs/${name}/abort`, {
      method: 'POST',
      headers: JSON_POST,
      body: '{"reason":"test"}',
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json(), { phase: 'aborted', pending: false });
    assert.equal(String((await lines.next()).value), 'aborted');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    const counts = (await call(ui.url, `/api/runs/${name}`)).json<Update>().run.counts;
    assert.equal(counts.aborted, 4);
    assert.equal(counts.succeeded, 1);
  });

  it('aborts one action of it through the API, and the run goes on', async (t) => {
    const gates = join(root.path, 'one-action');
    mkdirSync(gates);
    const child = spawn(
      process.execPath,
      [
        '--conditions=flyte-source',
        '--import',
        'tsx',
        fileURLToPath(new URL('./support/ui-child.ts', import.meta.url)),
        root.path,
        gates,
        '3',
        'tolerant',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...rootEnv(root.path) } },
    );
    // Ended in any case: a failed assertion must not leave it waiting for its gates (and the test file with it).
    t.after(() => {
      child.kill('SIGKILL');
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const name = String((await lines.next()).value);
    const run = await flyte.getRun(name);
    let steps = (await run.actions()).filter((a) => a.taskName === 'ui_child.waitFile');
    while (steps.length < 3 || steps.some((a) => a.phase !== 'running')) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      steps = (await run.actions()).filter((a) => a.taskName === 'ui_child.waitFile');
    }
    const doomed = steps[1] ?? assert.fail('a second step');
    const reply = await call(ui.url, `/api/runs/${name}/actions/${doomed.name}/abort`, {
      method: 'POST',
      headers: JSON_POST,
      body: '{"reason":"just this one"}',
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json(), { phase: 'aborted', pending: false });
    assert.equal((await run.record()).phase, 'running');

    writeFileSync(join(gates, 'go-0'), '');
    writeFileSync(join(gates, 'go-2'), '');
    assert.equal(String((await lines.next()).value), 'succeeded');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    const phases = (await run.actions()).map((a) => [a.name, a.phase]);
    assert.deepEqual(
      phases.filter(([, phase]) => phase === 'aborted'),
      [[doomed.name, 'aborted']],
    );
    assert.match((await run.action(doomed.name).record())?.error?.message ?? '', /just this one/);
  });
});

describe('UI server access', () => {
  const TOKEN = 'test-token-0123456789abcdef';
  const root = tempRoot();
  before(() => flyte.init(initOptions(root.path)));
  after(async () => {
    await flyte.shutdown();
    root.dispose();
  });

  it('refuses to bind beyond loopback without a token, or with a short one', async () => {
    const saved = process.env.FLYTE_UI_TOKEN;
    delete process.env.FLYTE_UI_TOKEN;
    try {
      await assert.rejects(startUiServer({ port: 0, host: '0.0.0.0' }), /set a token with --token or FLYTE_UI_TOKEN/);
      await assert.rejects(startUiServer({ port: 0, host: '127.0.0.2' }), /set a token/);
      await assert.rejects(startUiServer({ port: 0, host: '0.0.0.0', token: 'short' }), /at least 16 characters/);
    } finally {
      if (saved !== undefined) process.env.FLYTE_UI_TOKEN = saved;
    }
  });

  for (const host of ['0.0.0.0', '127.0.0.2']) {
    it(`bound to ${host}, answers only requests that carry the token`, async () => {
      const ui = await startUiServer({ port: 0, host, token: TOKEN, log: () => undefined });
      const base = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${ui.port}`;
      try {
        assert.equal((await call(base, '/api/runs')).status, 401);
        assert.equal((await call(base, '/')).status, 401);
        assert.equal((await call(base, '/static/app.js')).status, 401);
        assert.equal(
          (await call(base, '/api/runs', { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status,
          401,
        );
        assert.equal((await call(base, '/api/runs', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
        assert.equal((await call(base, `/api/runs?token=${TOKEN}`)).status, 200);
        assert.equal((await call(base, '/api/runs', { headers: { cookie: `flyte_ui_token=${TOKEN}` } })).status, 200);
        // A page opened with ?token= keeps it in a cookie and drops it from the address.
        const opened = await call(base, `/runs/x?token=${TOKEN}&action=a0`);
        assert.equal(opened.status, 303);
        assert.equal(opened.headers.location, '/runs/x?action=a0');
        assert.match(String(opened.headers['set-cookie']), /flyte_ui_token=.*HttpOnly; SameSite=Strict/);
        const sneaky = await call(base, `/.//evil.example/?token=${TOKEN}`);
        assert.equal(sneaky.status, 303);
        assert.equal(sneaky.headers.location, '/evil.example/');
        // Any Host is fine once the token is checked (the server is meant to be reached by name).
        assert.equal(
          (await call(base, '/api/runs', { headers: { authorization: `Bearer ${TOKEN}`, host: 'flyte.internal' } }))
            .status,
          200,
        );
      } finally {
        await ui.close();
      }
    });
  }

  it('takes the token from FLYTE_UI_TOKEN', async () => {
    const saved = process.env.FLYTE_UI_TOKEN;
    process.env.FLYTE_UI_TOKEN = TOKEN;
    const ui = await startUiServer({ port: 0, host: '0.0.0.0', log: () => undefined });
    try {
      const base = `http://127.0.0.1:${ui.port}`;
      assert.equal((await call(base, '/api/runs')).status, 401);
      assert.equal((await call(base, '/api/runs', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    } finally {
      await ui.close();
      if (saved === undefined) delete process.env.FLYTE_UI_TOKEN;
      else process.env.FLYTE_UI_TOKEN = saved;
    }
  });
});
