/**
 * The log lines of flyte-ts's own processes (`flyte run`, `flyte worker`, the other commands): one small logger
 * with levels and two formats.
 *
 * - `text` (the default) writes the human line: the message as it is, with `flyte: error:` / `flyte: warning:`
 *   (coloured when the stream is a terminal) before errors and warnings, and the logger's name (`flyte worker:`)
 *   before every line of a named logger. Fields are not shown: the message says what a human needs.
 * - `json` writes one JSON object per line: `time` (ISO 8601), `level`, `logger`, `message` (the same text,
 *   never coloured), then `run` and `action` when the line is about one, then the line's other fields.
 *
 * `FLYTE_LOG_FORMAT` (`text` | `json`) and `FLYTE_LOG_LEVEL` (`debug` | `info` | `warn` | `error`) choose them
 * ({@link logSettingsFromEnv}); the CLI reads them once and installs its logger as the process's ({@link setLog}),
 * which the runtime's few lines go through too. A URL's password (`postgres://me:pw@db`) never reaches a line:
 * messages and string fields are masked.
 *
 * A hand-written formatter rather than a logging library: the whole need is two formats of one line, and the
 * CLI's human lines must stay as they were; pino and the like bring transports and workers that it would not use.
 * @module
 */
import { hidePasswords } from './secrets.js';

/** The levels, least severe first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];
/** The formats of a log line. */
export const LOG_FORMATS = ['text', 'json'] as const;
/** A log format: human lines, or JSON lines. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Fields of a log line: the run and action it is about, and anything else worth a key in JSON. */
export interface LogFields {
  readonly run?: string;
  readonly action?: string;
  /** When it happened, in ms since the epoch, if not now (a task's line echoed later). */
  readonly time?: number;
  readonly [field: string]: unknown;
}

/** Colours of the text prefixes of errors and warnings (picocolors' shape). */
export interface LogPaint {
  readonly red: (text: string) => string;
  readonly yellow: (text: string) => string;
}

/** Options of a {@link Logger}. */
export interface LoggerOptions {
  /** @default 'text' */
  readonly format?: LogFormat;
  /** Lines below this level are dropped. @default 'info' */
  readonly level?: LogLevel;
  /** Writes one finished line (without its newline). @default a write to `process.stderr` */
  readonly write?: (line: string) => void;
  /** Colours of the text prefixes; ignored in JSON. @default none */
  readonly paint?: LogPaint;
  /** The clock, in ms since the epoch. @default Date.now */
  readonly now?: () => number;
}

/** The settings read from the environment. */
export interface LogSettings {
  readonly format: LogFormat;
  readonly level: LogLevel;
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };
const WORD: Readonly<Record<LogLevel, string | undefined>> = {
  debug: 'debug',
  info: undefined,
  warn: 'warning',
  error: 'error',
};
const PLAIN: LogPaint = { red: (s) => s, yellow: (s) => s };
/** The name of the root logger (the `flyte` command). */
const ROOT_NAME = 'flyte';

/**
 * Writes log lines in one format, above one level, to one destination.
 *
 * @example
 * ```ts
 * const log = new Logger({ format: 'json' }).child({ name: 'flyte worker' });
 * log.info('drained', { held: 0 });
 * // {"time":"2026-05-01T09:00:00.000Z","level":"info","logger":"flyte worker","message":"drained","held":0}
 * ```
 */
export class Logger {
  readonly format: LogFormat;
  readonly level: LogLevel;
  readonly #options: LoggerOptions;
  readonly #write: (line: string) => void;
  readonly #name: string | undefined;
  readonly #fields: LogFields;

  constructor(options: LoggerOptions = {}, name?: string, fields: LogFields = {}) {
    this.format = options.format ?? 'text';
    this.level = options.level ?? 'info';
    this.#options = options;
    this.#write = options.write ?? ((line) => void process.stderr.write(`${line}\n`));
    this.#name = name;
    this.#fields = fields;
  }

  /** Whether lines of `level` are written. */
  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  debug(message: string, fields?: LogFields): void {
    this.write('debug', message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.write('info', message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.write('warn', message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.write('error', message, fields);
  }

  /** Writes one line of `level`, unless the level is below this logger's. */
  write(level: LogLevel, message: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    this.#write(this.format === 'json' ? this.#json(level, message, fields) : this.#text(level, message));
  }

  /**
   * A logger with the same settings whose lines carry `fields` too; with `name`, that name (`flyte worker`)
   * starts its every text line and is its lines' `logger` in JSON.
   */
  child(fields: LogFields & { readonly name?: string }): Logger {
    const { name, ...rest } = fields;
    return new Logger(this.#options, name ?? this.#name, { ...this.#fields, ...rest });
  }

  /** The same logger writing somewhere else; with `allLevels`, not filtered by level (for command results). */
  to(write: (line: string) => void, options: { readonly allLevels?: boolean } = {}): Logger {
    const level = options.allLevels === true ? 'debug' : this.level;
    return new Logger({ ...this.#options, write, level }, this.#name, this.#fields);
  }

  #text(level: LogLevel, message: string): string {
    const word = WORD[level];
    const name = this.#name ?? (word === undefined ? undefined : ROOT_NAME);
    const prefix = [name, word].filter((p) => p !== undefined).join(': ');
    if (prefix === '') return hidePasswords(message);
    const paint = this.#options.paint ?? PLAIN;
    const colour = level === 'error' ? paint.red : level === 'warn' ? paint.yellow : (s: string) => s;
    return `${colour(`${prefix}:`)} ${hidePasswords(message)}`;
  }

  #json(level: LogLevel, message: string, fields: LogFields | undefined): string {
    const { run, action, time, ...rest } = { ...this.#fields, ...fields };
    const at = typeof time === 'number' ? time : (this.#options.now ?? Date.now)();
    const line: Record<string, unknown> = {
      time: new Date(at).toISOString(),
      level,
      logger: this.#name ?? ROOT_NAME,
      message: hidePasswords(message),
    };
    if (run !== undefined) line.run = run;
    if (action !== undefined) line.action = action;
    for (const [key, value] of Object.entries(rest)) {
      if (value !== undefined && !(key in line)) line[key] = typeof value === 'string' ? hidePasswords(value) : value;
    }
    try {
      return JSON.stringify(line, jsonSafe);
    } catch (err) {
      // A field that cannot be serialized (a cycle) must not lose the line: it goes without its extra fields.
      const reason = err instanceof Error ? err.message : String(err);
      const { logger, message } = line;
      return JSON.stringify({ time: line.time, level, logger, message, run, action, fieldsError: reason });
    }
  }
}

/** Errors as their name, message and code; bigints as decimal strings (JSON has neither). */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: hidePasswords(value.message), ...(code === undefined ? {} : { code }) };
  }
  return value;
}

/**
 * The log settings of `env`: `FLYTE_LOG_FORMAT` and `FLYTE_LOG_LEVEL`; unset or empty means the default
 * (`text`, `info`).
 *
 * @throws RangeError for any other value, saying what was expected and what was received.
 * @example
 * ```ts
 * logSettingsFromEnv({ FLYTE_LOG_FORMAT: 'json' }); // { format: 'json', level: 'info' }
 * ```
 */
export function logSettingsFromEnv(env: Readonly<Record<string, string | undefined>>): LogSettings {
  return {
    format: oneOf('FLYTE_LOG_FORMAT', env.FLYTE_LOG_FORMAT, LOG_FORMATS, 'text'),
    level: oneOf('FLYTE_LOG_LEVEL', env.FLYTE_LOG_LEVEL, LOG_LEVELS, 'info'),
  };
}

function oneOf<T extends string>(name: string, raw: string | undefined, allowed: readonly T[], fallback: T): T {
  if (raw === undefined || raw === '') return fallback;
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  const expected = allowed.map((a) => `'${a}'`);
  const list = `${expected.slice(0, -1).join(', ')} or ${expected[expected.length - 1] ?? ''}`;
  throw new RangeError(`${name}: expected ${list}; received '${raw}'`);
}

let processLog = new Logger();

/** The process's logger: the CLI's once it set one ({@link setLog}), else text lines on stderr. */
export function log(): Logger {
  return processLog;
}

/** Makes `logger` the process's logger (see {@link log}). */
export function setLog(logger: Logger): void {
  processLog = logger;
}
