// @ts-check
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// bench/peers has dependencies of its own (the peers flyte-ts is measured against), installed by
// `npm run bench:peers`: without them its files cannot be type-checked, so they are linted once installed.
const peersInstalled = existsSync(join(import.meta.dirname, 'bench', 'peers', 'node_modules'));

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      '.flyte/',
      'bench/results/',
      'coverage/',
      'test/fixtures/.tmp-*/',
      'docs/api/',
      '.ci/.local/',
      'bench/peers/node_modules/',
      ...(peersInstalled ? [] : ['bench/peers/']),
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // Store methods implement an async contract; a synchronous backend needs no await inside them.
      '@typescript-eslint/require-await': 'off',
      // Task bodies may throw anything; the runtime passes on what was thrown rather than inventing an Error.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
    },
  },
  {
    files: ['test/**', 'examples/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
