/**
 * Parameter names of a task function, read from its source with a real JavaScript parser (acorn), so the CLI
 * can take arguments by name and `Cache.ignoredInputs` can name inputs.
 * @module
 */
import { parseExpressionAt, type Node, type Pattern } from 'acorn';

/** One parameter of a function. */
export interface ParamInfo {
  /** The declared name, or `arg${index}` for destructured parameters. */
  readonly name: string;
  /** 0-based position. */
  readonly index: number;
  /** `...rest` parameter. */
  readonly rest: boolean;
  /** Has a default value (`x = 1`). */
  readonly optional: boolean;
}

const cache = new WeakMap<object, readonly ParamInfo[]>();

/**
 * The parameters of `fn`, in order. Destructured parameters (`{ a, b }`, `[x, y]`) get positional names `arg0`,
 * `arg1`, ...; a rest parameter keeps its name with `rest: true`. Functions whose source cannot be parsed
 * (native or bound functions) yield positional names for `fn.length` parameters.
 */
export function paramsOf(fn: (...args: never[]) => unknown): readonly ParamInfo[] {
  const known = cache.get(fn);
  if (known !== undefined) return known;
  const params = parse(fn);
  cache.set(fn, params);
  return params;
}

function parse(fn: (...args: never[]) => unknown): readonly ParamInfo[] {
  const source = Function.prototype.toString.call(fn);
  const node = parseFunction(source);
  if (node === undefined) {
    return Array.from({ length: fn.length }, (_, index) => ({
      name: `arg${index}`,
      index,
      rest: false,
      optional: false,
    }));
  }
  return describeParams(node.params);
}

/**
 * The parameters of a function node from any ESTree-shaped parser (acorn, or acorn with the TypeScript plugin,
 * whose nodes keep the same shapes): the same names and flags as {@link paramsOf} gives for the function.
 */
export function describeParams(params: readonly Pattern[]): ParamInfo[] {
  return params.map((p, index) => describeParam(p, index));
}

type FunctionNode = Node & { params: Pattern[] };

function parseFunction(source: string): FunctionNode | undefined {
  // Plain functions and arrows parse as expressions; a method (`name(a) {...}`) needs an object around it.
  const attempts = [`(${source})`, `({${source}})`, `({async ${source}})`];
  for (const text of attempts) {
    try {
      const expr = parseExpressionAt(text, 0, { ecmaVersion: 'latest' }) as Node & {
        type: string;
        params?: Pattern[];
        properties?: Array<{ value: FunctionNode }>;
      };
      if (expr.params !== undefined) return expr as FunctionNode;
      const method = expr.properties?.[0]?.value;
      if (method?.params !== undefined) return method;
    } catch {
      // Not this shape; try the next wrapping.
    }
  }
  return undefined;
}

function describeParam(p: Pattern, index: number): ParamInfo {
  switch (p.type) {
    case 'Identifier':
      return { name: p.name, index, rest: false, optional: false };
    case 'AssignmentPattern':
      return { ...describeParam(p.left, index), optional: true };
    case 'RestElement':
      return {
        name: p.argument.type === 'Identifier' ? p.argument.name : `arg${index}`,
        index,
        rest: true,
        optional: true,
      };
    default:
      return { name: `arg${index}`, index, rest: false, optional: false };
  }
}
