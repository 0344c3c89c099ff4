/**
 * Where a Postgres store's time goes, seen from the driver: every `pg` query of the process is timed, grouped by
 * statement (`BEGIN`, `SELECT runs`, `INSERT actions`, `COMMIT`, ...). For each it counts the calls, the time
 * until the result arrived (round trip and server work), the time the call itself blocked the event loop (the
 * driver serializing the parameters) and the rows sent in array parameters. Used by `child.ts --pg-timing`
 * (`npm run bench -- --pg-timing`); a diagnostic, it wraps `pg.Client.prototype.query` for the whole process.
 *
 * ```ts
 * const timing = timePostgresQueries();
 * // ... run the fan-out ...
 * timing.take(); // [{ statement: 'INSERT actions', calls: 1, ms: 6417, syncMs: 2285, rows: 100001 }, ...]
 * ```
 * @module
 */
import pg from 'pg';

/** The figures of one statement kind over a span. */
export interface StatementTiming {
  /** The statement's first keyword and the table it names: `INSERT actions`, `COMMIT`. */
  readonly statement: string;
  readonly calls: number;
  /** From the call until its result arrived, summed over the calls, in ms. */
  readonly ms: number;
  /** Inside the call, before it returned its promise: the driver serializing the parameters, in ms. */
  readonly syncMs: number;
  /** Elements of the first array parameter (rows of a multi-row statement), summed over the calls. */
  readonly rows: number;
}

/** The recorder installed by {@link timePostgresQueries}. */
export interface PostgresTiming {
  /** The figures since the previous `take()` (or since installed), by statement, most time first; resets them. */
  take(): StatementTiming[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Query = (this: pg.Client, ...args: unknown[]) => unknown;

/** The statement kind of `sql`: its first keyword and the (unqualified) table after INTO, FROM or UPDATE. */
export function statementOf(sql: string): string {
  const keyword = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? '?';
  const table = /\b(?:INTO|FROM|UPDATE)\s+(?:"?\w+"?\.)?"?(\w+)"?/i.exec(sql)?.[1];
  return table === undefined ? keyword : `${keyword} ${table}`;
}

/**
 * Starts timing every `pg` query of this process (once; later calls return the same recorder).
 *
 * @example
 * ```ts
 * const timing = timePostgresQueries();
 * timing.take(); // forget what came before the measured span
 * ```
 */
export function timePostgresQueries(): PostgresTiming {
  if (installed !== undefined) return installed;
  let stats = new Map<string, Mutable<StatementTiming>>();
  const proto = pg.Client.prototype as unknown as { query: Query };
  const query = proto.query;
  proto.query = function timedQuery(this: pg.Client, ...args: unknown[]): unknown {
    const first = args[0];
    const sql = typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '?');
    const params = typeof first === 'string' ? args[1] : (first as { values?: unknown } | undefined)?.values;
    const start = performance.now();
    const into = stats;
    const settled = (): void => {
      entry(into, statementOf(sql)).ms += performance.now() - start;
    };
    // pg-pool's query() passes a callback and gets no promise back: time it through the callback.
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (...results: unknown[]): unknown => {
        settled();
        return (callback as (...a: unknown[]) => unknown)(...results);
      };
    }
    const result = query.apply(this, args);
    const s = entry(stats, statementOf(sql));
    s.calls++;
    s.syncMs += performance.now() - start;
    if (Array.isArray(params) && Array.isArray(params[0])) s.rows += params[0].length;
    if (result instanceof Promise) void result.then(settled, settled);
    return result;
  };
  installed = {
    take(): StatementTiming[] {
      const taken = [...stats.values()].sort((a, b) => b.ms - a.ms);
      stats = new Map();
      return taken;
    },
  };
  return installed;
}

let installed: PostgresTiming | undefined;

function entry(stats: Map<string, Mutable<StatementTiming>>, statement: string): Mutable<StatementTiming> {
  let s = stats.get(statement);
  if (s === undefined) {
    s = { statement, calls: 0, ms: 0, syncMs: 0, rows: 0 };
    stats.set(statement, s);
  }
  return s;
}
