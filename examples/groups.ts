/**
 * Groups: name a set of child actions so the CLI and UI fold them into one node.
 *
 * Mirrors Flyte 2's `with flyte.group("name"):`. Actions created inside `flyte.group(name, fn)` carry the group's
 * name (the group they were created in, recorded on each action); the innermost group wins.
 */
import { pathToFileURL } from 'node:url';
import * as flyte from 'flyte-ts';

const env = new flyte.TaskEnvironment({ name: 'groups' });

export const clean = env.task(async function clean(text: string) {
  return text.trim().toLowerCase();
});

export const score = env.task(async function score(text: string) {
  return { text, length: text.length };
});

export const main = env.task(async function main(texts: string[]) {
  const cleaned = await flyte.group('preprocess', () => Promise.all(texts.map((t) => clean(t))));
  const scores = await flyte.group('evaluate', async () => {
    const first = await score(cleaned[0] ?? '');
    // Nested: these actions are in group 'evaluate-rest', not 'evaluate'.
    const rest = await flyte.group('evaluate-rest', () => Promise.all(cleaned.slice(1).map((t) => score(t))));
    return [first, ...rest];
  });
  return scores.map((s) => `${s.text}:${s.length}`);
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = await flyte.run(main, ['  Alpha', 'BETA ', ' Gamma ']);
  console.log('run:', run.name);
  console.log('result:', JSON.stringify(await run.outputs()));
}
