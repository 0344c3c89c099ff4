#!/usr/bin/env node
/**
 * The `flyte` command. This first version answers `--version` and `--help`; the commands of SPEC §3 follow.
 * @module
 */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const HELP = `Usage: flyte [--version] [--help]

flyte-ts ${pkg.version}: the Flyte 2 programming model in TypeScript.

Run a task of yours from code (see README.md):
  const run = await flyte.run(main, [1, 2, 3]);
`;

const args = process.argv.slice(2);
if (args.includes('--version') || args.includes('-V')) {
  console.log(pkg.version);
} else if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
  console.log(HELP);
} else {
  console.error(`flyte: unknown command ${JSON.stringify(args[0])}\n\n${HELP}`);
  process.exitCode = 2;
}
