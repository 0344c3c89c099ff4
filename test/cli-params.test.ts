/**
 * Task arguments from the command line: parameter names from the function's source, binding by name and
 * position, JSON values, and the usage errors that name the parameter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../src/cli/errors.js';
import { declaredParams } from '../src/cli/param-types.js';
import { bindArgs, parseValue, signature, taskParams, type CliParam } from '../src/cli/params.js';

type Fn = (...args: never[]) => unknown;
const names = (fn: Fn): string[] => taskParams(fn).map((p) => p.name);
const bind = (fn: Fn, tokens: string[]): unknown[] => bindArgs('t', taskParams(fn), tokens).args;

function usageError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, `expected a UsageError; got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('taskParams: parameter names from the source', () => {
  it('reads plain, default, rest and destructured parameters of every function form', () => {
    assert.deepEqual(
      names(function f(a: number, b: string) {
        return [a, b];
      }),
      ['a', 'b'],
    );
    assert.deepEqual(
      names(async function g(items: number[], factor = 2) {
        return [items, factor];
      }),
      ['items', 'factor'],
    );
    assert.deepEqual(
      names((x: number, ...rest: number[]) => [x, rest]),
      ['x', 'rest'],
    );
    assert.deepEqual(
      names(async (x: number) => x),
      ['x'],
    );
    assert.deepEqual(
      names(({ a, b }: { a: number; b: number }, [c]: number[]) => a + b + (c ?? 0)),
      ['arg0', 'arg1'],
    );
    assert.deepEqual(
      names(function* gen(n: number) {
        yield n;
      }),
      ['n'],
    );
    const obj = {
      method(this: void, first: string, second = 'x') {
        return first + second;
      },
      async other(this: void, z: number) {
        return z;
      },
    };
    assert.deepEqual(names(obj.method), ['first', 'second']);
    assert.deepEqual(names(obj.other), ['z']);
  });

  it('is not fooled by defaults that contain commas, parentheses, strings or comments', () => {
    function tricky(a = [1, 2], b = { c: '(,)' }, /* a comment, with ( */ d = (() => 3)(), e = `x,${'y'}`) {
      return [a, b, d, e];
    }
    const params = taskParams(tricky);
    assert.deepEqual(
      params.map((p) => p.name),
      ['a', 'b', 'd', 'e'],
    );
    assert.ok(params.every((p) => p.optional));
  });

  it('marks optional and rest parameters', () => {
    const params = taskParams(function f(a: number, b = 1, ...c: number[]) {
      return [a, b, c];
    });
    assert.deepEqual(
      params.map((p) => [p.name, p.optional, p.rest]),
      [
        ['a', false, false],
        ['b', true, false],
        ['c', true, true],
      ],
    );
  });

  it('falls back to positional names for native and bound functions', () => {
    assert.deepEqual(names(Math.max as Fn), ['arg0', 'arg1']); // Math.max.length is 2
    const bound = function h(a: number, b: number) {
      return a + b;
    }.bind(null);
    assert.deepEqual(names(bound), ['arg0', 'arg1']);
  });

  it('writes a signature for messages', () => {
    const params = taskParams(function f(a: number, b = 1, ...c: number[]) {
      return [a, b, c];
    });
    assert.equal(signature('f', params), 'f(a, b = …, ...c)');
  });
});

describe('parseValue', () => {
  it('takes JSON where it parses, else the string', () => {
    assert.equal(parseValue('3', 'x'), 3);
    assert.equal(parseValue('-2.5', 'x'), -2.5);
    assert.equal(parseValue('true', 'x'), true);
    assert.equal(parseValue('null', 'x'), null);
    assert.deepEqual(parseValue('[1,2,3]', 'x'), [1, 2, 3]);
    assert.deepEqual(parseValue('{"a":{"b":[1]}}', 'x'), { a: { b: [1] } });
    assert.equal(parseValue('"quoted"', 'x'), 'quoted');
    assert.equal(parseValue('hello world', 'x'), 'hello world');
    assert.equal(parseValue('2026-11-25', 'x'), '2026-11-25');
    assert.equal(parseValue('', 'x'), '');
  });

  it('refuses what looks like JSON but does not parse, naming the parameter and what was expected', () => {
    usageError(() => parseValue('[1,2', '--items'), /argument --items: expected a JSON array .*received '\[1,2'/);
    usageError(() => parseValue('{a:1}', '--opts'), /argument --opts: expected a JSON object/);
    usageError(() => parseValue('"open', '--s'), /argument --s: expected a JSON string/);
  });
});

describe('bindArgs', () => {
  const main = function main(items: number[], factor = 2, label = 'x') {
    return [items, factor, label];
  };

  it('binds by name, by position, or both', () => {
    assert.deepEqual(bind(main, ['--items', '[1,2]', '--factor', '3']), [[1, 2], 3]);
    assert.deepEqual(bind(main, ['--factor=3', '--items=[1,2]']), [[1, 2], 3]);
    assert.deepEqual(bind(main, ['[1,2]', '3', 'y']), [[1, 2], 3, 'y']);
    assert.deepEqual(bind(main, ['--factor', '5', '[1]']), [[1], 5]);
  });

  it('leaves out trailing optional parameters, so the function defaults apply', () => {
    assert.deepEqual(bind(main, ['[1]']), [[1]]);
    assert.deepEqual(bind(main, ['[1]', '--label', 'z']), [[1], undefined, 'z']);
  });

  it('matches --kebab-case flags to camelCase parameters', () => {
    const f = function f(maxItems: number) {
      return maxItems;
    };
    assert.deepEqual(bind(f, ['--max-items', '4']), [4]);
    assert.deepEqual(bind(f, ['--maxItems', '4']), [4]);
  });

  it('takes a flag without a value as true', () => {
    const f = function f(name: string, excited = false) {
      return [name, excited];
    };
    assert.deepEqual(bind(f, ['--name', 'ann', '--excited']), ['ann', true]);
    assert.deepEqual(bind(f, ['--excited', '--name', 'ann']), ['ann', true]);
  });

  it('treats negative numbers as values and everything after -- as positional', () => {
    const f = function f(a: number, b: string) {
      return [a, b];
    };
    assert.deepEqual(bind(f, ['--a', '-3', '--b', 'x']), [-3, 'x']);
    assert.deepEqual(bind(f, ['--', '1', '--b']), [1, '--b']);
  });

  it('collects extra positional values into a rest parameter, or takes it by name as a JSON array', () => {
    const f = function f(label: string, ...values: number[]) {
      return [label, values];
    };
    assert.deepEqual(bind(f, ['sum', '1', '2', '3']), ['sum', 1, 2, 3]);
    assert.deepEqual(bind(f, ['--label', 'sum', '--values', '[4,5]']), ['sum', 4, 5]);
    assert.deepEqual(bind(f, ['sum']), ['sum']);
    usageError(() => bind(f, ['--values', '4']), /--values: expected a JSON array for the rest parameter \.\.\.values/);
    usageError(() => bind(f, ['--values', '[4]', 'sum', '5']), /\.\.\.values was already given/);
  });

  it('names destructured parameters arg0, arg1, ...', () => {
    const f = function f({ w, h }: { w: number; h: number }) {
      return w * h;
    };
    assert.deepEqual(bind(f, ['--arg0', '{"w":2,"h":3}']), [{ w: 2, h: 3 }]);
  });

  it('refuses unknown flags, listing the parameters and hinting at misplaced run options', () => {
    usageError(
      () => bind(main, ['--itemz', '[1]']),
      /unknown argument --itemz: t\(items, factor = …, label = …\) takes --items, --factor, --label/,
    );
    usageError(
      () => bind(main, ['[1]', '--json']),
      /unknown argument --json: .*options of flyte run itself go before FILE/,
    );
    const none = function none() {
      return 1;
    };
    usageError(() => bind(none, ['--x', '1']), /t\(\) takes no parameters/);
  });

  it('refuses a parameter given twice, too many values and a missing required parameter', () => {
    usageError(() => bind(main, ['--items', '[1]', '--items', '[2]']), /argument --items was given twice/);
    usageError(
      () => bind(main, ['[1]', '2', 'x', 'extra']),
      /too many arguments: t\(.*\) takes 3 parameters; received an extra value 'extra'/,
    );
    usageError(
      () => bind(main, ['--factor', '2']),
      /missing argument --items \(parameter 1 of t\(items, factor = …, label = …\)\)/,
    );
  });

  it('reports malformed JSON with the parameter name whether given by name or position', () => {
    usageError(() => bind(main, ['--items', '[1,2']), /argument --items: expected a JSON array/);
    usageError(() => bind(main, ['[1,2']), /argument items: expected a JSON array/);
  });
});

describe('declaredParams: parameter types from the TypeScript source', () => {
  const header = `import * as flyte from 'flyte-ts';
const env = new flyte.TaskEnvironment({ name: 'demo' });
const other = new flyte.TaskEnvironment({ name: 'other' });
`;
  const types = (source: string, localName: string, envName = 'demo', exportName?: string): unknown[] | undefined =>
    declaredParams(header + source, { localName, envName, ...(exportName === undefined ? {} : { exportName }) })?.map(
      (p) => p.type,
    );
  const num = { kind: 'number' };
  const str = { kind: 'string' };

  it('reads primitives, literal unions, arrays, inline objects, and optional and nullable parameters', () => {
    const src = `export const main = env.task(async function main(
      n: number, s: string, b: boolean, mode: 'a' | 'b', level: 1 | -2, xs: readonly number[], ys: Array<string>,
      o: { a: number; b?: string[] }, maybe?: number, orNull: string | null, orUndef: boolean | undefined, d = 2,
      ...rest: number[]
    ) { return n; });`;
    const params = declaredParams(header + src, { localName: 'main', envName: 'demo' });
    assert.ok(params !== undefined);
    assert.deepEqual(
      params.map((p) => p.type),
      [
        num,
        str,
        { kind: 'boolean' },
        {
          kind: 'union',
          members: [
            { kind: 'literal', value: 'a' },
            { kind: 'literal', value: 'b' },
          ],
        },
        {
          kind: 'union',
          members: [
            { kind: 'literal', value: 1 },
            { kind: 'literal', value: -2 },
          ],
        },
        { kind: 'array', element: num },
        { kind: 'array', element: str },
        {
          kind: 'object',
          fields: [
            { name: 'a', type: num, optional: false },
            { name: 'b', type: { kind: 'array', element: str }, optional: true },
          ],
        },
        num,
        { kind: 'union', members: [str, { kind: 'null' }] },
        { kind: 'boolean' },
        num,
        { kind: 'array', element: num },
      ],
    );
    assert.deepEqual(
      params.filter((p) => p.mayBeOmitted).map((p) => p.name),
      ['maybe', 'orUndef'],
    );
  });

  it('resolves interfaces (with extends) and type aliases declared in the file, not generics or imports', () => {
    const src = `
      interface Base { id: number }
      export interface Item extends Base { tags: Tag[] }
      type Tag = 'x' | 'y';
      type Box<T> = { value: T };
      import type { Remote } from './elsewhere.js';
      export const main = env.task(async function main(item: Item, box: Box<number>, r: Remote, a: any, u: unknown) {});`;
    assert.deepEqual(types(src, 'main'), [
      {
        kind: 'object',
        fields: [
          {
            name: 'tags',
            type: {
              kind: 'array',
              element: {
                kind: 'union',
                members: [
                  { kind: 'literal', value: 'x' },
                  { kind: 'literal', value: 'y' },
                ],
              },
            },
            optional: false,
          },
          { name: 'id', type: num, optional: false },
        ],
      },
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('finds the task by function name, options.name, environment or export name, in either call form', () => {
    const src = `
      export const byFn = env.task({ retries: 1 }, async function first(a: number) {});
      export const byOption = env.task({ name: 'second' }, async (b: string) => b);
      export const sameInOther = other.task(async function first(c: boolean) {});
      async function declared(d: number[]) {}
      export const byRef = env.task(declared);`;
    assert.deepEqual(types(src, 'first'), [num]);
    assert.deepEqual(types(src, 'second'), [str]);
    assert.deepEqual(types(src, 'first', 'other'), [{ kind: 'boolean' }]);
    assert.deepEqual(types(src, 'declared'), [{ kind: 'array', element: num }]);
  });

  it('tells tasks of one name apart by export name when the environment cannot be read', () => {
    const src = `
      const envs = [env, other];
      export const one = envs[0]!.task(async function same(a: number) {});
      export const two = envs[1]!.task(async function same(a: string) {});`;
    assert.deepEqual(types(src, 'same', 'demo', 'two'), [str]);
    assert.equal(types(src, 'same', 'demo'), undefined);
  });

  it('gives no types for source it cannot parse or a task it cannot find', () => {
    assert.equal(types('export const main = env.task(async function main(n: number) {', 'main'), undefined);
    assert.equal(types('export const main = env.task(async function main(n: number) {});', 'nope'), undefined);
  });
});

describe('bindArgs with declared types', () => {
  const typed = (source: string, name = 'main'): readonly CliParam[] => {
    const declared = declaredParams(`const env = {} as any;\nenv.task(async function ${name}${source} {});`, {
      localName: name,
      envName: 'demo',
    });
    assert.ok(declared !== undefined);
    return declared.map(({ mayBeOmitted, type, ...p }) => ({ ...p, mayBeOmitted, ...(type ? { type } : {}) }));
  };
  const bindTyped = (source: string, tokens: string[]): unknown[] => bindArgs('t', typed(source), tokens).args;

  it('converts to the declared type: strings stay text, numbers and booleans are parsed', () => {
    assert.deepEqual(bindTyped('(id: string, n: number)', ['007', '-1.5']), ['007', -1.5]);
    assert.deepEqual(bindTyped('(id: string)', ['"12"']), ['"12"']);
    assert.deepEqual(bindTyped('(id: string)', ['[1]']), ['[1]']);
    assert.deepEqual(bindTyped('(n: number)', ['1e3']), [1000]);
    assert.deepEqual(bindTyped('(ok: boolean)', ['false']), [false]);
    assert.deepEqual(bindTyped('(v: number | null)', ['null']), [null]);
    assert.deepEqual(bindTyped('(v: string | number)', ['007']), [7]);
    assert.deepEqual(bindTyped('(v: string | number)', ['seven']), ['seven']);
  });

  it('refuses a value that does not fit, naming the parameter, the expected type and what was received', () => {
    usageError(() => bindTyped('(n: number)', ['--n', 'abc']), /^argument --n: expected a number; received 'abc'$/);
    usageError(() => bindTyped('(n: number)', ['--n', '"12"']), /expected a number; received '"12"'/);
    usageError(() => bindTyped('(n: number)', ['--n', '']), /expected a number; received ''/);
    usageError(() => bindTyped('(n: number)', ['--n']), /expected a number; received a bare --n with no value/);
    usageError(() => bindTyped('(ok: boolean)', ['yes']), /argument ok: expected true or false; received 'yes'/);
    usageError(() => bindTyped("(m: 'a' | 'b')", ['c']), /expected one of 'a', 'b'; received 'c'/);
    usageError(
      () => bindTyped('(xs: number[])', ['[1,2']),
      /argument xs: expected a JSON array number\[\]; received '\[1,2' \(it is not JSON: /,
    );
    usageError(
      () => bindTyped('(o: { a: { b: number[] } })', ['{"a":{"b":[1,"x"]}}']),
      /expected a JSON object \{ a: \{ b: number\[\] \} \}; .*\(at \.a\.b\[1\]: expected a number, got "x"\)/,
    );
  });

  it('lets a boolean flag stand alone before a positional value, and x?: T be left out', () => {
    assert.deepEqual(bindTyped('(loud: boolean, name: string)', ['--loud', 'ann']), [true, 'ann']);
    assert.deepEqual(bindTyped('(name: string, n?: number)', ['ann']), ['ann']);
    assert.deepEqual(bindTyped('(name: string, n: number | undefined)', ['ann']), ['ann']);
    assert.equal(signature('t', typed('(name: string, n?: number)')), 't(name, n?)');
  });

  it('converts each value of a typed rest parameter', () => {
    assert.deepEqual(bindTyped('(...xs: number[])', ['1', '2']), [1, 2]);
    assert.deepEqual(bindTyped('(...xs: number[])', ['--xs', '[3,4]']), [3, 4]);
    usageError(() => bindTyped('(...xs: number[])', ['1', 'x']), /argument \.\.\.xs: expected a number; received 'x'/);
  });
});
