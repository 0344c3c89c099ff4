/**
 * The declared types of a task's parameters, read from the TypeScript source of the module that defines it, the
 * way Flyte's CLI reads Python type hints: so that `flyte run` can convert and check its arguments.
 *
 * A compiled function (`fn.toString()` under tsx) has no types left, so the module's source file is parsed
 * (acorn with the TypeScript plugin) and the task's function is found in it by its name, its environment and the
 * name it is exported as. Understood: `number`, `string`, `boolean`, `null`, literal types and unions of them,
 * arrays (`T[]`, `Array<T>`, `readonly T[]`), object type literals, `Record<string, T>`, and interfaces or type
 * aliases declared in the same file; `x?: T`, `T | undefined` and a default value make a parameter optional.
 * Anything else (`any`, `unknown`, generics, imported types, ...) is not known, and such a parameter keeps the
 * untyped rules.
 * @module
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Parser, type Pattern } from 'acorn';
import { tsPlugin } from '@sveltejs/acorn-typescript';
import { describeParams, type ParamInfo } from '../internal/params.js';

/** A parameter type the CLI can convert a command-line value to. */
export type ParamType =
  | { readonly kind: 'string' | 'number' | 'boolean' | 'null' | 'unknown' }
  | { readonly kind: 'literal'; readonly value: string | number | boolean }
  | { readonly kind: 'array'; readonly element: ParamType }
  | { readonly kind: 'object'; readonly fields: readonly FieldType[]; readonly extra?: ParamType }
  | { readonly kind: 'union'; readonly members: readonly ParamType[] };

/** One property of an object type. */
export interface FieldType {
  readonly name: string;
  readonly type: ParamType;
  readonly optional: boolean;
}

/** A parameter as declared in the source. */
export interface DeclaredParam extends ParamInfo {
  /** The declared type (for a rest parameter, the array type); `undefined` when not known. */
  readonly type: ParamType | undefined;
  /** Declared `x?: T`, or its type admits `undefined`: it may be left out although it has no default. */
  readonly mayBeOmitted: boolean;
}

/** Which task to find in a module: what its definition knows about it. */
export interface TaskTarget {
  /** The task's name within its environment: `options.name ?? fn.name`. */
  readonly localName: string;
  /** The environment's name. */
  readonly envName: string;
  /** The name the task is exported as, when known. */
  readonly exportName?: string;
}

/** A node of the syntax tree, of any kind: the TypeScript nodes have no types in acorn's declarations. */
interface AnyNode {
  readonly type: string;
  readonly [key: string]: unknown;
}

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);
const parsers = new Map<boolean, typeof Parser>();

/**
 * The declared parameters of the task `target` in the TypeScript file `path`; `undefined` when the file is not
 * TypeScript, cannot be read or parsed, or the task's function is not found in it exactly once.
 *
 * @example
 * ```ts
 * // tasks.ts: export const main = env.task(async function main(n: number, mode: 'a' | 'b' = 'a') {...});
 * declaredParamsIn('/abs/tasks.ts', { localName: 'main', envName: 'demo' });
 * // [{ name: 'n', type: { kind: 'number' }, ... }, { name: 'mode', type: { kind: 'union', ... }, optional: true, ... }]
 * ```
 */
export function declaredParamsIn(path: string, target: TaskTarget): readonly DeclaredParam[] | undefined {
  if (!TS_EXTENSIONS.has(extname(path))) return undefined;
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch {
    // The module was loaded, so this is rare (the file moved since); the arguments then keep the untyped rules.
    return undefined;
  }
  return declaredParams(source, target, extname(path) === '.tsx');
}

/**
 * The declared parameters of the task `target` in TypeScript `source`; `undefined` when it does not parse or the
 * task's function is not found in it exactly once.
 *
 * @example
 * ```ts
 * const src = `const env = new flyte.TaskEnvironment({ name: 'demo' });
 *   export const main = env.task(async function main(n: number) { return n; });`;
 * declaredParams(src, { localName: 'main', envName: 'demo' })?.[0]?.type; // { kind: 'number' }
 * ```
 */
export function declaredParams(source: string, target: TaskTarget, jsx = false): readonly DeclaredParam[] | undefined {
  let program: AnyNode;
  try {
    program = parserFor(jsx).parse(source, { ecmaVersion: 'latest', sourceType: 'module' }) as unknown as AnyNode;
  } catch {
    // Syntax the parser does not know: no types, and the arguments keep the untyped rules (the module itself
    // loaded, so the file is fine).
    return undefined;
  }
  const module = new ModuleIndex(program);
  const fn = module.findTask(target);
  if (fn === undefined) return undefined;
  const patterns = nodes(fn, 'params');
  const infos = describeParams(patterns as unknown as Pattern[]);
  return infos.map((info, i) => declaredParam(info, patterns[i] as AnyNode, module));
}

function parserFor(jsx: boolean): typeof Parser {
  let parser = parsers.get(jsx);
  if (parser === undefined) {
    parser = Parser.extend(tsPlugin({ jsx }));
    parsers.set(jsx, parser);
  }
  return parser;
}

function declaredParam(info: ParamInfo, pattern: AnyNode, module: ModuleIndex): DeclaredParam {
  // `x: T = d` keeps the annotation on the left of the assignment; `...xs: T[]` on the rest element itself.
  const target = pattern.type === 'AssignmentPattern' ? (node(pattern, 'left') ?? pattern) : pattern;
  const annotation = node(node(target, 'typeAnnotation'), 'typeAnnotation');
  const fromDefault = pattern.type === 'AssignmentPattern' ? typeOfDefault(node(pattern, 'right')) : undefined;
  const resolved = annotation === undefined ? undefined : module.typeOf(annotation);
  const type = resolved === undefined ? fromDefault : withoutUndefined(resolved);
  const mayBeOmitted = target.optional === true || (resolved !== undefined && admitsUndefined(resolved));
  return { ...info, type: type === undefined || type.kind === 'unknown' ? undefined : type, mayBeOmitted };
}

/** What TypeScript infers for an unannotated parameter from a literal default: `n = 2` is a number. */
function typeOfDefault(value: AnyNode | undefined): ParamType | undefined {
  if (value?.type === 'Literal') {
    const v = value.value;
    if (typeof v === 'number') return { kind: 'number' };
    if (typeof v === 'string') return { kind: 'string' };
    if (typeof v === 'boolean') return { kind: 'boolean' };
  }
  if (value?.type === 'UnaryExpression' && value.operator === '-' && typeof node(value, 'argument')?.value === 'number')
    return { kind: 'number' };
  return undefined;
}

/** `undefined` stands for a missing value here: it is an internal member of unions only, never returned. */
const UNDEFINED = { kind: 'unknown', undefined: true } as const;

function isUndefined(t: ParamType): boolean {
  return t === UNDEFINED;
}

function admitsUndefined(t: ParamType): boolean {
  return isUndefined(t) || (t.kind === 'union' && t.members.some(isUndefined));
}

function withoutUndefined(t: ParamType): ParamType {
  if (isUndefined(t)) return { kind: 'unknown' };
  if (t.kind !== 'union') return t;
  const members = t.members.filter((m) => !isUndefined(m));
  if (members.length === 0) return { kind: 'unknown' };
  return members.length === 1 ? (members[0] as ParamType) : { kind: 'union', members };
}

/** The declarations of one module that the type reader and the task finder need. */
class ModuleIndex {
  /** Interfaces and type aliases declared in the module, by name. */
  readonly #types = new Map<string, AnyNode>();
  /** Variables holding a `new TaskEnvironment({ name })`, to that name. */
  readonly #envs = new Map<string, string>();
  /** Functions declared by name (`function f() {}`, `const f = () => ...`), for `env.task(f)`. */
  readonly #functions = new Map<string, AnyNode>();
  readonly #sites: TaskSite[] = [];
  /** Type names being resolved: a recursive type is not known. */
  readonly #resolving = new Set<string>();

  constructor(program: AnyNode) {
    this.#visit(program, undefined);
  }

  /** The function of the one task site that matches `target`, if exactly one does. */
  findTask(target: TaskTarget): AnyNode | undefined {
    let sites = this.#sites.filter((s) => s.localName === target.localName);
    if (sites.length > 1) sites = sites.filter((s) => s.envName === undefined || s.envName === target.envName);
    if (sites.length > 1 && target.exportName !== undefined)
      sites = sites.filter((s) => s.binding === target.exportName);
    return sites.length === 1 ? sites[0]?.fn : undefined;
  }

  /** The type a TypeScript type node denotes, `{ kind: 'unknown' }` where it is not understood. */
  typeOf(t: AnyNode): ParamType {
    switch (t.type) {
      case 'TSStringKeyword':
        return { kind: 'string' };
      case 'TSNumberKeyword':
        return { kind: 'number' };
      case 'TSBooleanKeyword':
        return { kind: 'boolean' };
      case 'TSNullKeyword':
        return { kind: 'null' };
      case 'TSUndefinedKeyword':
      case 'TSVoidKeyword':
        return UNDEFINED;
      case 'TSLiteralType':
        return literalType(node(t, 'literal'));
      case 'TSParenthesizedType':
        return this.#typeAt(t, 'typeAnnotation');
      case 'TSTypeOperator':
        return t.operator === 'readonly' ? this.#typeAt(t, 'typeAnnotation') : UNKNOWN;
      case 'TSArrayType':
        return { kind: 'array', element: withoutUndefined(this.#typeAt(t, 'elementType')) };
      case 'TSUnionType':
        return this.#union(nodes(t, 'types'));
      case 'TSTypeLiteral':
        return this.#object(nodes(t, 'members'));
      case 'TSTypeReference':
        return this.#reference(t);
      default:
        return UNKNOWN;
    }
  }

  #typeAt(t: AnyNode, key: string): ParamType {
    const inner = node(t, key);
    return inner === undefined ? UNKNOWN : this.typeOf(inner);
  }

  #union(types: readonly AnyNode[]): ParamType {
    const members: ParamType[] = [];
    for (const member of types.map((m) => this.typeOf(m))) {
      if (member.kind === 'unknown' && !isUndefined(member)) return UNKNOWN;
      if (member.kind === 'union') members.push(...member.members);
      else members.push(member);
    }
    return { kind: 'union', members };
  }

  #object(members: readonly AnyNode[]): ParamType {
    const fields: FieldType[] = [];
    let extra: ParamType | undefined;
    for (const m of members) {
      if (m.type === 'TSIndexSignature') {
        const key = node(node(nodes(m, 'parameters')[0], 'typeAnnotation'), 'typeAnnotation');
        if (key?.type !== 'TSStringKeyword') return UNKNOWN;
        extra = withoutUndefined(this.#typeAt(node(m, 'typeAnnotation') ?? m, 'typeAnnotation'));
        continue;
      }
      // Methods, call signatures and computed keys cannot come from JSON.
      if (m.type !== 'TSPropertySignature' || m.computed === true) return UNKNOWN;
      const key = node(m, 'key');
      const name = key?.type === 'Identifier' ? key.name : key?.type === 'Literal' ? key.value : undefined;
      if (typeof name !== 'string' && typeof name !== 'number') return UNKNOWN;
      const type = this.#typeAt(node(m, 'typeAnnotation') ?? m, 'typeAnnotation');
      fields.push({
        name: String(name),
        type: withoutUndefined(type),
        optional: m.optional === true || admitsUndefined(type),
      });
    }
    return extra === undefined ? { kind: 'object', fields } : { kind: 'object', fields, extra };
  }

  #reference(t: AnyNode): ParamType {
    const name = node(t, 'typeName');
    if (name?.type !== 'Identifier' || typeof name.name !== 'string') return UNKNOWN;
    const args = nodes(node(t, 'typeArguments') ?? node(t, 'typeParameters'), 'params');
    const declared = this.#types.get(name.name);
    if (declared !== undefined) return args.length === 0 ? this.#declared(name.name, declared) : UNKNOWN;
    if ((name.name === 'Array' || name.name === 'ReadonlyArray') && args.length === 1)
      return { kind: 'array', element: withoutUndefined(this.typeOf(args[0] as AnyNode)) };
    if (name.name === 'Record' && args.length === 2 && args[0]?.type === 'TSStringKeyword')
      return { kind: 'object', fields: [], extra: withoutUndefined(this.typeOf(args[1] as AnyNode)) };
    return UNKNOWN;
  }

  #declared(name: string, decl: AnyNode): ParamType {
    if (this.#resolving.has(name) || node(decl, 'typeParameters') !== undefined) return UNKNOWN;
    this.#resolving.add(name);
    try {
      if (decl.type === 'TSTypeAliasDeclaration') return this.#typeAt(decl, 'typeAnnotation');
      const own = this.#object(nodes(node(decl, 'body'), 'body'));
      if (own.kind !== 'object') return UNKNOWN;
      const fields = [...own.fields];
      let extra = own.extra;
      for (const heritage of nodes(decl, 'extends')) {
        const base = this.#reference({ ...heritage, typeName: heritage.expression });
        if (base.kind !== 'object') return UNKNOWN;
        fields.push(...base.fields.filter((f) => !fields.some((g) => g.name === f.name)));
        extra ??= base.extra;
      }
      return extra === undefined ? { kind: 'object', fields } : { kind: 'object', fields, extra };
    } finally {
      this.#resolving.delete(name);
    }
  }

  /** Walks the whole tree once, noting declarations and `X.task(...)` calls with the name they are bound to. */
  #visit(n: AnyNode, binding: string | undefined): void {
    switch (n.type) {
      case 'TSInterfaceDeclaration':
      case 'TSTypeAliasDeclaration': {
        const id = node(n, 'id');
        if (typeof id?.name === 'string') this.#types.set(id.name, n);
        return;
      }
      case 'FunctionDeclaration': {
        const id = node(n, 'id');
        if (typeof id?.name === 'string') this.#functions.set(id.name, n);
        break;
      }
      case 'VariableDeclarator': {
        const id = node(n, 'id');
        const init = node(n, 'init');
        if (id?.type === 'Identifier' && typeof id.name === 'string' && init !== undefined) {
          this.#noteVariable(id.name, init);
          this.#visit(init, id.name);
          return;
        }
        break;
      }
      case 'ExportDefaultDeclaration': {
        const declaration = node(n, 'declaration');
        if (declaration !== undefined) this.#visit(declaration, 'default');
        return;
      }
      case 'CallExpression':
        this.#noteTaskCall(n, binding);
        break;
    }
    for (const value of Object.values(n)) {
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) this.#visit(item, undefined);
      } else if (isNode(value)) this.#visit(value, undefined);
    }
  }

  #noteVariable(name: string, init: AnyNode): void {
    if (init.type === 'FunctionExpression' || init.type === 'ArrowFunctionExpression') this.#functions.set(name, init);
    if (init.type !== 'NewExpression') return;
    const callee = node(init, 'callee');
    const calleeName = callee?.type === 'MemberExpression' ? node(callee, 'property')?.name : callee?.name;
    if (calleeName !== 'TaskEnvironment') return;
    const envName = stringProperty(nodes(init, 'arguments')[0], 'name');
    if (envName !== undefined) this.#envs.set(name, envName);
  }

  #noteTaskCall(call: AnyNode, binding: string | undefined): void {
    const callee = node(call, 'callee');
    if (callee?.type !== 'MemberExpression' || node(callee, 'property')?.name !== 'task') return;
    const args = nodes(call, 'arguments');
    if (args.length === 0 || args.length > 2) return;
    const last = args[args.length - 1] as AnyNode;
    let fn: AnyNode | undefined = last;
    let fnName: string | undefined;
    if (last.type === 'Identifier' && typeof last.name === 'string') {
      fn = this.#functions.get(last.name);
      fnName = typeof node(fn, 'id')?.name === 'string' ? (node(fn, 'id')?.name as string) : last.name;
    } else if (last.type === 'FunctionExpression' || last.type === 'ArrowFunctionExpression') {
      const id = node(last, 'id')?.name;
      fnName = typeof id === 'string' ? id : undefined;
    } else return;
    if (fn === undefined) return;
    const options = args.length === 2 ? args[0] : undefined;
    const localName = (options === undefined ? undefined : stringProperty(options, 'name')) ?? fnName;
    if (localName === undefined) return;
    const envVar = node(callee, 'object');
    const envName =
      envVar?.type === 'Identifier' && typeof envVar.name === 'string' ? this.#envs.get(envVar.name) : undefined;
    this.#sites.push({ localName, envName, binding, fn });
  }
}

/** One `env.task(...)` call in the module. */
interface TaskSite {
  readonly localName: string;
  /** The environment's name, when the callee is a variable holding a `new TaskEnvironment({ name: '...' })`. */
  readonly envName: string | undefined;
  /** The variable or export the task is assigned to. */
  readonly binding: string | undefined;
  readonly fn: AnyNode;
}

const UNKNOWN: ParamType = { kind: 'unknown' };

function literalType(lit: AnyNode | undefined): ParamType {
  const v = lit?.value;
  if (lit?.type === 'Literal' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'))
    return { kind: 'literal', value: v };
  const arg = node(lit, 'argument');
  if (lit?.type === 'UnaryExpression' && lit.operator === '-' && typeof arg?.value === 'number')
    return { kind: 'literal', value: -arg.value };
  return UNKNOWN;
}

/** The value of `{ key: 'string literal' }` in an object expression. */
function stringProperty(obj: AnyNode | undefined, key: string): string | undefined {
  if (obj?.type !== 'ObjectExpression') return undefined;
  for (const p of nodes(obj, 'properties')) {
    const k = node(p, 'key');
    const v = node(p, 'value');
    if (
      p.computed !== true &&
      (k?.name === key || k?.value === key) &&
      v?.type === 'Literal' &&
      typeof v.value === 'string'
    )
      return v.value;
  }
  return undefined;
}

function isNode(value: unknown): value is AnyNode {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

function node(n: AnyNode | undefined, key: string): AnyNode | undefined {
  const value = n?.[key];
  return isNode(value) ? value : undefined;
}

function nodes(n: AnyNode | undefined, key: string): AnyNode[] {
  const value = n?.[key];
  return Array.isArray(value) ? value.filter(isNode) : [];
}
