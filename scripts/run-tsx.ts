/**
 * Runs a TypeScript file in a child `node` under tsx (with the `flyte-source` condition, so that `flyte-ts`
 * resolves to this repository's sources) and collects what it printed. Shared by the docs checker
 * (`scripts/check-docs.ts`, runnable blocks) and the examples test (`test/examples.test.ts`).
 * @module
 */
import { spawn } from 'node:child_process';

/** What {@link runTsx} collected. */
export interface TsxOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `file` with `node --conditions=flyte-source --import tsx`, killing it with SIGKILL after `timeoutMs`.
 *
 * @throws Error when the process cannot be started.
 */
export async function runTsx(
  file: string,
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number },
): Promise<TsxOutcome> {
  const tsx = import.meta.resolve('tsx');
  const child = spawn(process.execPath, ['--conditions=flyte-source', '--import', tsx, file], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(killer));
  return { code, signal, stdout, stderr };
}
