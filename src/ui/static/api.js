/**
 * Talking to the UI server: JSON requests, a cache of the data the mounted components show (so one live update
 * refreshes exactly what is on screen), and Server-Sent Events.
 */
/* global fetch, EventSource, location, URL, URLSearchParams */
import { createContext } from 'preact';
import { useContext, useEffect, useReducer, useRef, useState } from 'preact/hooks';

/** A failed request: the server's message and the status. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Server time minus browser time, learnt from each answer's `now`. */
let skewMs = 0;

/** The server's clock, as well as the browser can tell. */
export function serverNow() {
  return Date.now() + skewMs;
}

function learnClock(data) {
  if (data !== null && typeof data === 'object' && typeof data.now === 'number') skewMs = data.now - Date.now();
}

async function request(path, init) {
  let res;
  try {
    res = await fetch(path, { credentials: 'same-origin', ...init });
  } catch {
    throw new ApiError(0, 'the flyte UI server cannot be reached');
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null; // Not JSON (a proxy's error page): the status says enough.
  }
  if (!res.ok) throw new ApiError(res.status, body?.error ?? `${res.status} ${res.statusText}`);
  learnClock(body);
  return body;
}

/** GET a JSON document. */
export function getJson(path) {
  return request(path, { headers: { accept: 'application/json' } });
}

/** POST a JSON document. */
export function postJson(path, body) {
  return request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
}

/** `/api/runs/NAME/...` with NAME escaped. */
export function runPath(name, rest = '') {
  return `/api/runs/${encodeURIComponent(name)}${rest}`;
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/**
 * The data of the URLs that mounted components show. `refresh()` reads them all again (in parallel) and
 * re-renders their components once every answer is in.
 */
export class Loader {
  constructor() {
    this.entries = new Map(); // url -> { data, error }
    this.listeners = new Map(); // url -> Set<() => void>
    this.inFlight = new Map(); // url -> Promise
    this.refreshing = null;
    this.again = false;
  }

  peek(url) {
    return this.entries.get(url);
  }

  subscribe(url, listener) {
    let set = this.listeners.get(url);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(url, set);
    }
    set.add(listener);
    if (!this.entries.has(url)) void this.load([url]);
    return () => {
      set.delete(listener);
      if (set.size === 0) {
        this.listeners.delete(url);
        this.entries.delete(url);
      }
    };
  }

  async load(urls) {
    const results = await Promise.all(
      urls.map((url) => {
        let p = this.inFlight.get(url);
        if (p === undefined) {
          p = getJson(url).then(
            (data) => ({ data, error: null }),
            (error) => ({ data: this.entries.get(url)?.data, error }),
          );
          this.inFlight.set(url, p);
          void p.finally(() => this.inFlight.delete(url));
        }
        return p.then((entry) => [url, entry]);
      }),
    );
    for (const [url, entry] of results) if (this.listeners.has(url)) this.entries.set(url, entry);
    for (const [url] of results) for (const listener of this.listeners.get(url) ?? []) listener();
  }

  /** Reads every shown URL again; calls made while one refresh runs are folded into one more. */
  refresh() {
    if (this.refreshing !== null) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = this.load([...this.listeners.keys()]).finally(() => {
      this.refreshing = null;
      if (this.again) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.refreshing;
  }
}

export const LoaderContext = createContext(new Loader());

/**
 * The JSON at `url` (`null`: nothing), kept fresh by the page's live updates. While a new URL loads, the data of
 * the previous one stays, so paging does not flicker.
 */
export function useData(url) {
  const loader = useContext(LoaderContext);
  const [, rerender] = useReducer((n) => n + 1, 0);
  const last = useRef(undefined);
  useEffect(() => (url === null ? undefined : loader.subscribe(url, rerender)), [url, loader]);
  const entry = url === null ? undefined : loader.peek(url);
  if (entry?.data !== undefined) last.current = entry.data;
  return { data: entry?.data ?? last.current, error: entry?.error ?? null, loading: entry === undefined };
}

/**
 * Subscribes to the event stream at `path` while mounted; `onUpdate` gets each update's data. Returns whether
 * the stream is connected.
 */
export function useEvents(path, onUpdate) {
  const [connected, setConnected] = useState(false);
  const handler = useRef(onUpdate);
  handler.current = onUpdate;
  useEffect(() => {
    if (path === null) return undefined;
    const source = new EventSource(new URL(path, location.href).href);
    source.onopen = () => setConnected(true);
    source.onerror = () => setConnected(false);
    source.addEventListener('update', (e) => {
      const data = JSON.parse(e.data);
      learnClock(data);
      handler.current(data);
    });
    return () => source.close();
  }, [path]);
  return connected;
}
