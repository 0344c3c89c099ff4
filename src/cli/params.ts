/**
 * Task arguments from the command line: `flyte run FILE TASK --items '[1,2,3]' --x 3` or positionally
 * `flyte run FILE TASK '[1,2,3]' 3`.
 *
 * Parameter names come from the task function's source (`paramsOf`, a real JavaScript parser). Where the task is
 * defined in TypeScript, the declared parameter types are read from the module's source (`param-types.ts`) and
 * each value is converted to its parameter's type or refused (`param-values.ts`). A parameter with no known type
 * takes JSON where it parses (`3`, `true`, `null`, `[1,2]`, `{"a":1}`, `"quoted"`), else the plain string; a value
 * that looks like JSON (it starts with `[`, `{` or `"`) but does not parse is refused rather than passed on as a
 * string.
 * @module
 */
import { paramsOf, type ParamInfo } from '../internal/params.js';
import type { TaskDefinition } from '../internal/task-definition.js';
import { UsageError } from './errors.js';
import { declaredParamsIn, type ParamType } from './param-types.js';
import { convertValue, isBooleanText, isBooleanType, quote } from './param-values.js';

export type { ParamInfo } from '../internal/params.js';

/** Options of `flyte run` itself: named here so a misplaced one gets a hint. */
const RUN_OPTIONS = new Set(['local', 'remote', 'name', 'follow', 'json', 'root', 'store', 'ui-url', 'config']);

/** A parameter as the CLI binds it: its name, and its declared type where the source says. */
export interface CliParam extends ParamInfo {
  /** The declared type (for a rest parameter, the array type); absent when not known. */
  readonly type?: ParamType;
  /** Declared `x?: T` or `x: T | undefined`: it may be left out. */
  readonly mayBeOmitted?: boolean;
}

/** The parameters of a task function, as the CLI names them. */
export function taskParams(fn: (...args: never[]) => unknown): readonly ParamInfo[] {
  return paramsOf(fn);
}

/**
 * The parameters of a task with the types declared for them in its TypeScript module (`def.module`), found by
 * the task's name, its environment and `exportName`. Without a TypeScript module, or when the function found
 * there does not have the parameters of `def.fn`, the parameters have no types.
 *
 * @example
 * ```ts
 * // tasks.ts: export const main = env.task(async function main(n: number) {...});
 * typedTaskParams(def, 'main'); // [{ name: 'n', index: 0, rest: false, optional: false, type: { kind: 'number' } }]
 * ```
 */
export function typedTaskParams(def: TaskDefinition, exportName?: string): readonly CliParam[] {
  const params = paramsOf(def.fn);
  if (def.module === null) return params;
  const localName = def.name.slice(def.envName.length + 1);
  const declared = declaredParamsIn(def.module, {
    localName,
    envName: def.envName,
    ...(exportName === undefined ? {} : { exportName }),
  });
  const same =
    declared !== undefined &&
    declared.length === params.length &&
    declared.every((d, i) => d.name === params[i]?.name && d.rest === params[i]?.rest);
  if (!same) return params;
  return params.map((p, i) => {
    const d = declared[i];
    if (d === undefined) return p;
    return { ...p, ...(d.type === undefined ? {} : { type: d.type }), mayBeOmitted: d.mayBeOmitted };
  });
}

/**
 * A task's signature for messages: `main(items, factor = …, ...rest)`.
 *
 * @example
 * ```ts
 * signature('main', paramsOf(main)); // 'main(items, factor = …)'
 * ```
 */
export function signature(taskName: string, params: readonly CliParam[]): string {
  const list = params.map((p) =>
    p.rest ? `...${p.name}` : p.optional ? `${p.name} = …` : p.mayBeOmitted === true ? `${p.name}?` : p.name,
  );
  return `${taskName}(${list.join(', ')})`;
}

/**
 * Parses one argument value: JSON where it parses, else the string itself.
 *
 * @example
 * ```ts
 * parseValue('3', 'x');        // 3
 * parseValue('[1,2]', 'xs');   // [1, 2]
 * parseValue('hello', 'name'); // 'hello'
 * parseValue('[1,2', 'xs');    // throws UsageError: argument xs: expected JSON ...
 * ```
 * @throws UsageError when the value looks like JSON (starts with `[`, `{` or `"`) but does not parse.
 */
export function parseValue(raw: string, param: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    const start = raw.trimStart()[0];
    if (start === '[' || start === '{' || start === '"') {
      const what = start === '[' ? 'a JSON array' : start === '{' ? 'a JSON object' : 'a JSON string';
      const why = err instanceof Error ? err.message : String(err);
      throw new UsageError(
        `argument ${param}: expected ${what} (it starts with '${start}') but it does not parse: ${why}; received ${quote(raw)}`,
      );
    }
    return raw;
  }
}

/** The result of {@link bindArgs}. */
export interface BoundArgs {
  /** The argument list for the task, trailing omitted optional parameters left out. */
  readonly args: unknown[];
}

/**
 * Turns the command-line tokens after `TASK` into the task's argument list.
 *
 * - `--name value`, `--name=value`: by parameter name (`--max-items` also matches `maxItems`); `--flag` with no
 *   value (at the end, or followed by another `--option`) is `true`;
 * - other tokens fill the parameters not given by name, in order; extra ones go to a `...rest` parameter;
 * - `--` ends the named arguments: every later token is positional.
 *
 * @example
 * ```ts
 * bindArgs('main', paramsOf(main), ['--items', '[1,2,3]', '--factor', '2']).args; // [[1, 2, 3], 2]
 * bindArgs('main', paramsOf(main), ['[1,2,3]']).args;                               // [[1, 2, 3]]
 * ```
 * @throws UsageError for an unknown `--name`, a parameter given twice, too many positional values, a missing
 * required parameter, or a malformed JSON value; the message names the parameter and what was expected.
 */
export function bindArgs(taskName: string, params: readonly CliParam[], tokens: readonly string[]): BoundArgs {
  const sig = signature(taskName, params);
  const byName = new Map<string, CliParam>();
  for (const p of params) byName.set(p.name, p);
  const values = new Map<number, unknown>();
  const positional: string[] = [];
  let restValues: unknown[] | undefined;
  let restFromFlag = false;

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (token === '--') {
      positional.push(...tokens.slice(i + 1));
      break;
    }
    if (!token.startsWith('--') || token.length === 2) {
      positional.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const flag = eq === -1 ? token.slice(2) : token.slice(2, eq);
    const param = byName.get(flag) ?? byName.get(camelCase(flag));
    if (param === undefined) throw unknownFlag(flag, sig, params);
    let raw: string | true;
    if (eq !== -1) raw = token.slice(eq + 1);
    else {
      const next = tokens[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) raw = true;
      // A boolean's flag stands alone unless true/false follows: `--excited world` leaves `world` positional.
      else if (isBooleanType(param.type) && !isBooleanText(next)) raw = true;
      else {
        raw = next;
        i++;
      }
    }
    const value = valueOf(raw, param.type, `--${flag}`);
    if (param.rest) {
      if (restValues !== undefined) throw new UsageError(`argument --${flag} was given twice; ${sig} takes it once`);
      if (!Array.isArray(value)) {
        throw new UsageError(
          `argument --${flag}: expected a JSON array for the rest parameter ...${param.name}; received ${quote(String(raw))}`,
        );
      }
      restValues = value as unknown[];
      restFromFlag = true;
      continue;
    }
    if (values.has(param.index)) throw new UsageError(`argument --${flag} was given twice; ${sig} takes it once`);
    values.set(param.index, value);
  }

  const restParam = params.find((p) => p.rest);
  const open = params.filter((p) => !p.rest && !values.has(p.index));
  for (const raw of positional) {
    const param = open.shift();
    if (param !== undefined) {
      values.set(param.index, valueOf(raw, param.type, param.name));
    } else if (restParam !== undefined && !restFromFlag) {
      const element = restParam.type?.kind === 'array' ? restParam.type.element : undefined;
      (restValues ??= []).push(valueOf(raw, element, `...${restParam.name}`));
    } else if (restParam !== undefined) {
      throw new UsageError(
        `argument ${quote(raw)}: ...${restParam.name} was already given with --${restParam.name}; ${sig}`,
      );
    } else {
      const fixed = params.length;
      throw new UsageError(
        `too many arguments: ${sig} takes ${fixed} parameter${fixed === 1 ? '' : 's'}; received an extra value ${quote(raw)}`,
      );
    }
  }
  const fixedParams = params.filter((p) => !p.rest);
  // Omitted optional parameters between given ones are `undefined` (so their defaults apply); no holes.
  const args: unknown[] = fixedParams.map(() => undefined);
  let last = -1;
  for (const p of fixedParams) {
    if (values.has(p.index)) {
      args[p.index] = values.get(p.index);
      last = p.index;
    } else if (!p.optional && p.mayBeOmitted !== true) {
      throw new UsageError(
        `missing argument --${p.name} (parameter ${p.index + 1} of ${sig}); give it by name or position` +
          ` (a parameter with a default value, \`${p.name} = …\`, or declared \`${p.name}?: …\`, may be left out)`,
      );
    }
  }
  args.length = last + 1;
  if (restValues !== undefined && restParam !== undefined) {
    while (args.length < restParam.index) args.push(undefined);
    args.length = restParam.index;
    args.push(...restValues);
  }
  return { args };
}

/** One value: converted to the declared type where there is one, else JSON or the string. */
function valueOf(raw: string | true, type: ParamType | undefined, label: string): unknown {
  if (type !== undefined) return convertValue(raw, type, label);
  return raw === true ? true : parseValue(raw, label);
}

function unknownFlag(flag: string, sig: string, params: readonly ParamInfo[]): UsageError {
  const names = params.map((p) => `--${p.name}`).join(', ');
  const known = params.length === 0 ? `${sig} takes no parameters` : `${sig} takes ${names}`;
  const hint = RUN_OPTIONS.has(flag)
    ? `; options of flyte run itself go before FILE (flyte run --${flag} … FILE TASK)`
    : '';
  return new UsageError(`unknown argument --${flag}: ${known}${hint}`);
}

function camelCase(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
