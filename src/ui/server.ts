/**
 * The web UI server of `flyte ui`: a `node:http` server with a JSON API over the run store, Server-Sent Events for
 * live updates, and a small single-page app (plain ES modules with Preact, no build step).
 *
 * @example
 * ```ts
 * import * as flyte from 'flyte-ts';
 * import { startUiServer } from 'flyte-ts/ui';
 *
 * flyte.init({ root: '.flyte' });
 * const ui = await startUiServer({ port: 8080 });
 * console.log(`open ${ui.url}`);
 * // ...
 * await ui.close();
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runtime } from '../internal/runtime.js';
import type { ActionPhase, RunPhase } from '../types.js';
import { ACTION_PHASES, RUN_PHASES, isTerminal } from '../types.js';
import {
  HttpError,
  MAX_PAGE,
  abortAction,
  abortRun,
  actionDetail,
  actionsPage,
  runCauses,
  runLogs,
  LOG_PAGE,
  MAX_LOG_PAGE,
  type MemberFilters,
  type RunLogsRequest,
  listRunsPage,
  rerunRun,
  runDetail,
  runGroups,
  treeChildren,
} from './api.js';
import { Assets } from './assets.js';
import { AccessPolicy, checkAccessOptions } from './auth.js';
import { LiveHub, type LiveSnapshot } from './live.js';

/** Options of {@link startUiServer}. */
export interface UiServerOptions {
  /** TCP port; `0` picks a free one. @default 8080 */
  readonly port?: number;
  /**
   * Address to bind. Anything but `127.0.0.1`, `localhost` or `::1` needs a `token`.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * Token every request must carry (`Authorization: Bearer T`, or `?token=T` once, then a cookie); at least 16
   * characters. @default process.env.FLYTE_UI_TOKEN (none: only loopback binds are allowed)
   */
  readonly token?: string;
  /** How often the store is read for live updates. @default 500 */
  readonly pollIntervalMs?: number;
  /** Where the server reports failures. @default a line on stderr */
  readonly log?: (line: string) => void;
}

/** A running UI server. */
export interface UiServer {
  /** The address to open, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** The address the server is bound to. */
  readonly host: string;
  /** The TCP port it listens on (the one picked when `port` was `0`). */
  readonly port: number;
  /** Stops listening, ends the live streams and closes every connection. */
  close(): Promise<void>;
}

interface Ctx {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
}

type Handler = (ctx: Ctx) => Promise<void> | void;

interface Route {
  readonly method: 'GET' | 'POST';
  readonly segments: readonly string[];
  readonly page: boolean;
  readonly handler: Handler;
}

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Largest request body accepted (the POST endpoints take a few small fields). */
const MAX_BODY_BYTES = 16 * 1024;
const DEFAULT_PAGE = 50;

/**
 * Starts the UI server over the store configured by `flyte.init` (or its defaults).
 *
 * @throws InitializationError when `host` is not loopback and there is no token, or the token is too short.
 * @throws Error (`EADDRINUSE`, `EACCES`) when the port cannot be bound.
 */
export async function startUiServer(options: UiServerOptions = {}): Promise<UiServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? (process.env.FLYTE_UI_TOKEN || undefined);
  checkAccessOptions(host, token);
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const assets = await Assets.load();
  const policy = new AccessPolicy(token);
  const hub = new LiveHub({
    log,
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
  });
  const routes = buildRoutes(assets, hub, log);

  const server = createServer((req, res) => {
    handle(req, res, routes, policy, assets).catch((err: unknown) => {
      if (!(err instanceof HttpError) || err.status >= 500)
        log(`flyte ui: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (res.headersSent) {
        res.end();
        return;
      }
      const status = err instanceof HttpError ? err.status : 500;
      sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  await listen(server, options.port ?? 8080, host);
  const port = (server.address() as AddressInfo).port;
  policy.port = port;
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    url: `http://${shown === '0.0.0.0' || shown === '[::]' ? '127.0.0.1' : shown}:${port}`,
    host,
    port,
    close: async () => {
      hub.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  routes: readonly Route[],
  policy: AccessPolicy,
  assets: Assets,
): Promise<void> {
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('content-security-policy', assets.contentSecurityPolicy);
  const url = new URL(req.url ?? '/', 'http://ui.invalid');
  const segments = splitPath(url.pathname);
  const matches = routes.filter((r) => matchSegments(r.segments, segments) !== undefined);
  const route = matches.find((r) => r.method === req.method);
  const page = route?.page ?? !url.pathname.startsWith('/api/');

  const access = policy.check(req, url, page);
  if (!access.ok) {
    if (page)
      sendText(res, access.status, `${access.status === 401 ? 'Unauthorized' : 'Forbidden'}: ${access.message}\n`);
    else sendJson(res, access.status, { error: access.message });
    return;
  }
  if (access.cookie !== undefined) res.setHeader('set-cookie', access.cookie);
  if (access.redirect !== undefined) {
    res.writeHead(303, { location: access.redirect, 'cache-control': 'no-store' }).end();
    return;
  }
  if (route === undefined) {
    if (matches.length > 0) {
      res.setHeader('allow', matches.map((r) => r.method).join(', '));
      throw new HttpError(405, `${req.method ?? ''} is not allowed here`);
    }
    throw new HttpError(404, `nothing at ${url.pathname}`);
  }
  const params = matchSegments(route.segments, segments) ?? {};
  await route.handler({ req, res, url, params });
}

/** Splits a path into decoded segments; a malformed escape is a bad request. */
function splitPath(pathname: string): string[] {
  const raw = pathname.split('/').slice(1);
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  try {
    return raw.map((s) => decodeURIComponent(s));
  } catch {
    throw new HttpError(400, `malformed path ${pathname}`);
  }
}

function matchSegments(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segments[i] as string;
    if (p.startsWith(':')) {
      if (s === '') return undefined;
      params[p.slice(1)] = s;
    } else if (p !== s) return undefined;
  }
  return params;
}

function buildRoutes(assets: Assets, hub: LiveHub, log: (line: string) => void): Route[] {
  const routes: Route[] = [];
  const get = (path: string, handler: Handler, page = false): void => {
    routes.push({ method: 'GET', segments: splitPath(path), page, handler });
  };
  const post = (path: string, handler: Handler): void => {
    routes.push({ method: 'POST', segments: splitPath(path), page: false, handler });
  };
  const shell: Handler = ({ req, res }) => sendAsset(req, res, assets.shell);

  // The app: every page address serves the same shell; the app reads the address.
  get('/', shell, true);
  get('/runs', shell, true);
  get('/runs/:name', shell, true);
  get('/static/:file', ({ req, res, url }) => sendFile(req, res, assets, url.pathname), true);
  get('/vendor/:file', ({ req, res, url }) => sendFile(req, res, assets, url.pathname), true);

  // The JSON API.
  get('/api/info', ({ res }) => sendJson(res, 200, { version: VERSION, store: runtime().store.description }));
  get('/api/runs', async ({ res, url }) => sendJson(res, 200, await listRunsPage(runsQuery(url))));
  get('/api/events', ({ res, url }) => {
    const query = runsQuery(url);
    hub.subscribe(`runs:${JSON.stringify(query)}`, () => readRunsSnapshot(query), res);
  });
  get('/api/runs/:name', async ({ res, params }) => sendJson(res, 200, await runDetail(params.name as string)));
  get('/api/runs/:name/groups', async ({ res, params }) => sendJson(res, 200, await runGroups(params.name as string)));
  get('/api/runs/:name/tree', async ({ res, url, params }) => {
    const { offset, limit } = pageParams(url, DEFAULT_PAGE);
    const parent = url.searchParams.get('parent') || 'a0';
    sendJson(res, 200, await treeChildren(params.name as string, parent, offset, limit));
  });
  get('/api/runs/:name/actions', async ({ res, url, params }) => {
    const { offset, limit } = pageParams(url, DEFAULT_PAGE);
    sendJson(
      res,
      200,
      await actionsPage(params.name as string, {
        offset,
        limit,
        parent: url.searchParams.get('parent') || undefined,
        group: url.searchParams.get('group') || undefined,
        phase: phaseParam(url, ACTION_PHASES) as ActionPhase | undefined,
        ...memberFilters(url),
      }),
    );
  });
  get('/api/runs/:name/causes', async ({ res, url, params }) => {
    const parent = url.searchParams.get('parent');
    const group = url.searchParams.get('group');
    if (!parent || !group) {
      throw new HttpError(
        400,
        `causes: expected ?parent=ACTION&group=GROUP (the fan-out); received ${JSON.stringify(url.search)}`,
      );
    }
    sendJson(res, 200, await runCauses(params.name as string, parent, group));
  });
  get('/api/runs/:name/logs', async ({ res, url, params }) =>
    sendJson(res, 200, await runLogs(params.name as string, logsRequest(url))),
  );
  get('/api/runs/:name/actions/:action', async ({ res, params }) =>
    sendJson(res, 200, await actionDetail(params.name as string, params.action as string)),
  );
  get('/api/runs/:name/events', async ({ res, params }) => {
    const name = params.name as string;
    await runDetail(name); // 404 before the stream starts
    hub.subscribe(`run:${name}`, () => readRunSnapshot(name), res);
  });
  post('/api/runs/:name/abort', async ({ req, res, params }) => {
    const reason = abortReason(await readJsonBody(req));
    sendJson(res, 200, await abortRun(params.name as string, reason, log));
  });
  post('/api/runs/:name/actions/:action/abort', async ({ req, res, params }) => {
    const reason = abortReason(await readJsonBody(req));
    sendJson(res, 200, await abortAction(params.name as string, params.action as string, reason, log));
  });
  post('/api/runs/:name/rerun', async ({ req, res, params }) => {
    const body = await readJsonBody(req);
    const recover = body.recover ?? false;
    if (typeof recover !== 'boolean')
      throw new HttpError(400, `recover: expected true or false; received ${JSON.stringify(recover)}`);
    sendJson(res, 200, await rerunRun(params.name as string, recover));
  });
  return routes;
}

/** The `reason` of an abort request's body: a string of at most 1000 characters, with a default. */
function abortReason(body: Record<string, unknown>): string {
  const reason = body.reason === undefined ? 'aborted from the flyte UI' : body.reason;
  if (typeof reason !== 'string' || reason.length > 1000) {
    throw new HttpError(400, 'reason: expected a string of at most 1000 characters');
  }
  return reason;
}

async function readRunSnapshot(name: string): Promise<LiveSnapshot> {
  try {
    const detail = await runDetail(name);
    const { durationMs: _d, ...run } = detail.run;
    const { hasChildren: _h, ...root } = detail.root ?? { hasChildren: false };
    return { fingerprint: JSON.stringify([run, root]), data: detail, active: !isTerminal(detail.run.phase) };
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) {
      return { fingerprint: 'missing', data: { missing: true }, active: false };
    }
    throw err;
  }
}

async function readRunsSnapshot(query: ReturnType<typeof runsQuery>): Promise<LiveSnapshot> {
  const page = await listRunsPage(query);
  const fingerprint = JSON.stringify(page.runs.map(({ durationMs: _d, ...run }) => run));
  return { fingerprint, data: page, active: page.runs.some((r) => !isTerminal(r.phase)) };
}

function runsQuery(url: URL): { phase: RunPhase | undefined; task: string | undefined; offset: number; limit: number } {
  return {
    ...pageParams(url, DEFAULT_PAGE),
    phase: phaseParam(url, RUN_PHASES) as RunPhase | undefined,
    task: url.searchParams.get('task') || undefined,
  };
}

function pageParams(url: URL, defaultLimit: number): { offset: number; limit: number } {
  return {
    offset: intParam(url, 'offset', 0, Number.MAX_SAFE_INTEGER),
    limit: intParam(url, 'limit', defaultLimit, MAX_PAGE),
  };
}

/**
 * The page of `/api/runs/:name/logs`: `after=SEQ` (default 0) or `before=SEQ|end`, and `limit` (default
 * {@link LOG_PAGE}, at most the store's largest page).
 */
function logsRequest(url: URL): RunLogsRequest {
  const q = url.searchParams;
  const limit = intParam(url, 'limit', LOG_PAGE, MAX_LOG_PAGE, 1);
  const before = q.get('before');
  if (before === null || before === '') return { after: intParam(url, 'after', 0, Number.MAX_SAFE_INTEGER), limit };
  const after = q.get('after');
  if (after !== null && after !== '') {
    throw new HttpError(
      400,
      `logs: expected one cursor, after=SEQ or before=SEQ|end; received after=${JSON.stringify(after)} and before=${JSON.stringify(before)}`,
    );
  }
  if (before === 'end') return { before, limit };
  if (!/^\d+$/.test(before) || !Number.isSafeInteger(Number(before))) {
    throw new HttpError(
      400,
      `before: expected a line's seq (an integer from 0) or "end"; received ${JSON.stringify(before)}`,
    );
  }
  return { before: Number(before), limit };
}

/**
 * The member filters of `/api/runs/:name/actions`: `failed=1`, `text=…`, `item=N` and `code=…&pattern=…` (a
 * cause, both or neither).
 */
function memberFilters(url: URL): MemberFilters {
  const q = url.searchParams;
  const failed = q.get('failed');
  if (failed !== null && failed !== '' && failed !== '1' && failed !== '0') {
    throw new HttpError(400, `failed: expected 1 or 0; received ${JSON.stringify(failed)}`);
  }
  const code = q.get('code');
  const pattern = q.get('pattern');
  if ((code === null) !== (pattern === null)) {
    throw new HttpError(400, 'a cause needs both code and pattern (as listed by /api/runs/:name/causes)');
  }
  const text = q.get('text');
  const item = q.get('item');
  return {
    ...(failed === '1' ? { failed: true } : {}),
    ...(text === null || text === '' ? {} : { text }),
    ...(item === null || item === '' ? {} : { itemIndex: intParam(url, 'item', 0, Number.MAX_SAFE_INTEGER) }),
    ...(code === null || pattern === null ? {} : { cause: { code, pattern } }),
  };
}

function intParam(url: URL, name: string, fallback: number, max: number, min = 0): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n > max || n < min) {
    throw new HttpError(400, `${name}: expected an integer from ${min} to ${max}; received ${JSON.stringify(raw)}`);
  }
  return n;
}

function phaseParam(url: URL, allowed: readonly string[]): string | undefined {
  const raw = url.searchParams.get('phase');
  if (raw === null || raw === '') return undefined;
  if (!allowed.includes(raw))
    throw new HttpError(400, `phase: expected one of ${allowed.join(', ')}; received ${JSON.stringify(raw)}`);
  return raw;
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'expected a JSON object as the request body');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'expected a JSON object as the request body');
  }
  return body as Record<string, unknown>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function sendFile(req: IncomingMessage, res: ServerResponse, assets: Assets, path: string): void {
  const file = assets.files.get(path);
  if (file === undefined) throw new HttpError(404, `nothing at ${path}`);
  sendAsset(req, res, file);
}

function sendAsset(
  req: IncomingMessage,
  res: ServerResponse,
  file: { body: Buffer; type: string; etag: string },
): void {
  // Revalidated on every load (cheap: an ETag match answers 304), so a new version shows at once.
  const headers = { 'content-type': file.type, etag: file.etag, 'cache-control': 'no-cache' };
  if (req.headers['if-none-match'] === file.etag) {
    res.writeHead(304, headers).end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': file.body.length }).end(file.body);
}
