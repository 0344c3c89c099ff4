/**
 * Converting one command-line value to a parameter's declared type, or saying why it does not fit.
 *
 * - `string`: the text as given, always (`007` stays `'007'`, `'"12"'` keeps its quotes);
 * - `number`: a decimal number (`3`, `-1.5`, `1e3`); `boolean`: `true` or `false` (or a bare `--flag`);
 *   `null`: `null`; a literal type: that literal's text (`a` for `'a'`, `2` for `2`);
 * - arrays and objects: JSON, checked member by member against the declared type;
 * - a union: the first member, other than `string`, that the text reads as; else the text, if `string` is a
 *   member.
 * @module
 */
import type { ParamType } from './param-types.js';
import { UsageError } from './errors.js';

/** What a converted value is, or why the text does not fit. */
type Conversion = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly why?: string };

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Converts `raw` (`true` for a bare `--flag`) to `type`.
 *
 * @example
 * ```ts
 * convertValue('3', { kind: 'number' }, '--n');   // 3
 * convertValue('007', { kind: 'string' }, '--id'); // '007'
 * convertValue('abc', { kind: 'number' }, '--n');  // throws UsageError: argument --n: expected a number; received 'abc'
 * ```
 * @throws UsageError naming the parameter, the expected type and what was received, when `raw` does not fit.
 */
export function convertValue(raw: string | true, type: ParamType, label: string): unknown {
  const result =
    raw === true ? (accepts(type, true) ? ({ ok: true, value: true } as const) : failed()) : fromText(raw, type);
  if (result.ok) return result.value;
  const received = raw === true ? `a bare ${label} with no value` : quote(raw);
  const why = result.why === undefined ? '' : ` (${result.why})`;
  throw new UsageError(`argument ${label}: expected ${describeType(type)}; received ${received}${why}`);
}

/** A boolean parameter's flag takes a value only when the next token is one: `--excited --name x`, `--excited x`. */
export function isBooleanText(text: string): boolean {
  return text === 'true' || text === 'false';
}

/** The type is a plain boolean: its `--flag` stands alone unless `true` or `false` follows. */
export function isBooleanType(type: ParamType | undefined): boolean {
  return type?.kind === 'boolean';
}

function fromText(raw: string, type: ParamType): Conversion {
  switch (type.kind) {
    case 'string':
      return ok(raw);
    case 'number':
      return DECIMAL.test(raw) ? ok(Number(raw)) : failed();
    case 'boolean':
      return isBooleanText(raw) ? ok(raw === 'true') : failed();
    case 'null':
      return raw === 'null' ? ok(null) : failed();
    case 'literal': {
      const v = type.value;
      if (typeof v === 'string') return raw === v ? ok(v) : failed();
      if (typeof v === 'number') return DECIMAL.test(raw) && Number(raw) === v ? ok(v) : failed();
      return raw === String(v) ? ok(v) : failed();
    }
    case 'array':
    case 'object':
    case 'unknown':
      return fromJson(raw, type);
    case 'union': {
      let why: string | undefined;
      for (const member of type.members) {
        if (member.kind === 'string') continue;
        const result = fromText(raw, member);
        if (result.ok) return result;
        why ??= result.why;
      }
      return type.members.some((m) => m.kind === 'string') ? ok(raw) : failed(why);
    }
  }
}

function fromJson(raw: string, type: ParamType): Conversion {
  let value: unknown;
  try {
    value = JSON.parse(raw) as unknown;
  } catch (err) {
    // An untyped value that is not JSON is the text itself, as for parameters with no declared type.
    if (type.kind === 'unknown') return ok(raw);
    return failed(`it is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const problem = mismatch(value, type, '');
  return problem === undefined ? ok(value) : failed(problem);
}

/** Why `value` (parsed JSON) does not have `type`: `at [1]: expected a number, got "a"`; `undefined` if it does. */
function mismatch(value: unknown, type: ParamType, path: string): string | undefined {
  const here = (what = describeType(type)): string =>
    `${path === '' ? '' : `at ${path}: `}expected ${what}, got ${short(JSON.stringify(value))}`;
  switch (type.kind) {
    case 'unknown':
      return undefined;
    case 'string':
    case 'boolean':
      return typeof value === type.kind ? undefined : here();
    case 'number':
      return typeof value === 'number' ? undefined : here();
    case 'null':
      return value === null ? undefined : here();
    case 'literal':
      return value === type.value ? undefined : here();
    case 'union':
      return type.members.some((m) => mismatch(value, m, path) === undefined) ? undefined : here();
    case 'array': {
      if (!Array.isArray(value)) return here();
      for (const [i, item] of value.entries()) {
        const problem = mismatch(item, type.element, `${path}[${i}]`);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return here();
      const record = value as Record<string, unknown>;
      for (const field of type.fields) {
        const at = `${path}.${field.name}`;
        if (record[field.name] === undefined) {
          if (!field.optional) return `at ${at}: missing; expected ${describeType(field.type)}`;
          continue;
        }
        const problem = mismatch(record[field.name], field.type, at);
        if (problem !== undefined) return problem;
      }
      for (const key of Object.keys(record)) {
        if (type.fields.some((f) => f.name === key)) continue;
        if (type.extra === undefined) return `at ${path}.${key}: not a field of ${typeText(type)}`;
        const problem = mismatch(record[key], type.extra, `${path}.${key}`);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
  }
}

/**
 * A type for messages: `a number`, `true or false`, `one of 'a', 'b'`, `a JSON array number[]`.
 *
 * @example
 * ```ts
 * describeType({ kind: 'array', element: { kind: 'number' } }); // 'a JSON array number[]'
 * ```
 */
export function describeType(type: ParamType): string {
  switch (type.kind) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'unknown':
      return 'any value';
    case 'literal':
      return typeText(type);
    case 'array':
      return `a JSON array ${typeText(type)}`;
    case 'object':
      return `a JSON object ${typeText(type)}`;
    case 'union':
      return type.members.every((m) => m.kind === 'literal')
        ? `one of ${type.members.map(typeText).join(', ')}`
        : type.members.map(describeType).join(' or ');
  }
}

/** A type in TypeScript's notation: `number[]`, `{ a: number; b?: string }`, `'a' | 'b'`. */
function typeText(type: ParamType): string {
  switch (type.kind) {
    case 'literal':
      return typeof type.value === 'string' ? `'${type.value}'` : String(type.value);
    case 'array': {
      const element = typeText(type.element);
      return type.element.kind === 'union' ? `(${element})[]` : `${element}[]`;
    }
    case 'object': {
      const fields = type.fields.map((f) => `${f.name}${f.optional ? '?' : ''}: ${typeText(f.type)}`);
      if (type.extra !== undefined) fields.push(`[key: string]: ${typeText(type.extra)}`);
      return fields.length === 0 ? '{}' : `{ ${fields.join('; ')} }`;
    }
    case 'union':
      return type.members.map(typeText).join(' | ');
    default:
      return type.kind;
  }
}

/** Whether `value` has `type` (for the bare flag's `true`). */
function accepts(type: ParamType, value: unknown): boolean {
  return mismatch(value, type, '') === undefined;
}

function ok(value: unknown): Conversion {
  return { ok: true, value };
}

function failed(why?: string): Conversion {
  return why === undefined ? { ok: false } : { ok: false, why };
}

function short(text: string | undefined): string {
  const t = text ?? 'undefined';
  return t.length > 40 ? `${t.slice(0, 37)}...` : t;
}

/** A received value for messages, cut when long. */
export function quote(raw: string): string {
  return `'${raw.length > 60 ? `${raw.slice(0, 57)}...` : raw}'`;
}
