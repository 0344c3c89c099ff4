/**
 * Live updates for the browser over Server-Sent Events.
 *
 * Runs are recorded by other processes into the same store, so the only way to see them change is to read it
 * again. A {@link LiveHub} polls with one cheap query set per watched thing (a run: its record and counts; the
 * run list: one page), shared by every browser watching it, and pushes an `update` event when the answer
 * changed. While a run is going it also pushes at least every `tickMs`, so that what the counts do not show
 * (a retry starting, new log lines) reaches an open page too.
 * @module
 */
import type { ServerResponse } from 'node:http';

/** One reading of a watched thing. */
export interface LiveSnapshot {
  /** Equal fingerprints mean nothing changed. */
  readonly fingerprint: string;
  /** What is sent to the browser. */
  readonly data: unknown;
  /** Whether it may still change (a run not ended yet); pushes at least every `tickMs` while so. */
  readonly active: boolean;
}

/** Options of {@link LiveHub}. */
export interface LiveHubOptions {
  /** How often a watched thing is read. @default 500 */
  readonly pollIntervalMs?: number;
  /** While active, the longest time without an update. @default 2000 */
  readonly tickMs?: number;
  /** A comment line is sent this often so that idle connections stay open. @default 15000 */
  readonly keepAliveMs?: number;
  /** Where read failures are reported. */
  readonly log: (line: string) => void;
}

class Feed {
  readonly clients = new Set<ServerResponse>();
  last: LiveSnapshot | undefined;
  lastSentAt = 0;
  timer: NodeJS.Timeout | undefined;
  polling = false;

  constructor(readonly read: () => Promise<LiveSnapshot>) {}
}

/**
 * Polls what browsers watch and pushes changes to them.
 *
 * @example
 * ```ts
 * const hub = new LiveHub({ log: console.error });
 * hub.subscribe(`run:${name}`, () => readRunSnapshot(name), res); // res: an HTTP response kept open
 * ```
 */
export class LiveHub {
  readonly #feeds = new Map<string, Feed>();
  readonly #pollMs: number;
  readonly #tickMs: number;
  readonly #keepAlive: NodeJS.Timeout;
  readonly #log: (line: string) => void;
  #closed = false;

  constructor(options: LiveHubOptions) {
    this.#pollMs = options.pollIntervalMs ?? 500;
    this.#tickMs = options.tickMs ?? 2_000;
    this.#log = options.log;
    this.#keepAlive = setInterval(() => this.#ping(), options.keepAliveMs ?? 15_000);
    this.#keepAlive.unref();
  }

  /**
   * Starts an event stream on `res` for the thing named `key`, read by `read`. The first event carries the
   * current state; the stream ends when the browser goes away or the hub closes.
   */
  subscribe(key: string, read: () => Promise<LiveSnapshot>, res: ServerResponse): void {
    if (this.#closed) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Browsers reconnect by themselves after a dropped connection; tell them not to wait long.
    res.write('retry: 2000\n\n');
    let feed = this.#feeds.get(key);
    if (feed === undefined) {
      feed = new Feed(read);
      this.#feeds.set(key, feed);
    }
    feed.clients.add(res);
    const current = feed;
    res.on('close', () => {
      current.clients.delete(res);
      if (current.clients.size === 0) this.#stop(key, current);
    });
    if (current.last !== undefined) send(res, current.last.data);
    if (current.timer === undefined && !current.polling) void this.#poll(key, current);
  }

  /** Ends every stream and stops polling. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#keepAlive);
    for (const [key, feed] of this.#feeds) {
      for (const res of feed.clients) res.end();
      this.#stop(key, feed);
    }
  }

  async #poll(key: string, feed: Feed): Promise<void> {
    feed.timer = undefined;
    feed.polling = true;
    try {
      const snap = await feed.read();
      const now = Date.now();
      const changed = feed.last === undefined || feed.last.fingerprint !== snap.fingerprint;
      if (changed || (snap.active && now - feed.lastSentAt >= this.#tickMs)) {
        feed.last = snap;
        feed.lastSentAt = now;
        for (const res of feed.clients) send(res, snap.data);
      }
    } catch (err) {
      // A failed read (the store busy or closing) is reported and retried at the next poll; the streams stay.
      this.#log(`flyte ui: live update of ${key} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      feed.polling = false;
    }
    if (!this.#closed && feed.clients.size > 0 && this.#feeds.get(key) === feed) {
      feed.timer = setTimeout(() => void this.#poll(key, feed), this.#pollMs);
    }
  }

  #stop(key: string, feed: Feed): void {
    clearTimeout(feed.timer);
    feed.timer = undefined;
    if (this.#feeds.get(key) === feed) this.#feeds.delete(key);
  }

  #ping(): void {
    for (const feed of this.#feeds.values()) for (const res of feed.clients) res.write(': keep-alive\n\n');
  }
}

function send(res: ServerResponse, data: unknown): void {
  res.write(`event: update\ndata: ${JSON.stringify(data)}\n\n`);
}
