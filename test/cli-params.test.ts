/**
 * Task arguments from the command line: parameter names from the function's source, binding by name and
 * position, JSON values, and the usage errors that name the parameter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../src/cli/errors.js';
import { bindArgs, parseValue, signature, taskParams } from '../src/cli/params.js';

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
