/**
 * Names: deterministic child action names, and short readable run names.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from './hash.js';

/** The name of every run's root action. */
export const ROOT_ACTION = 'a0';

/**
 * The deterministic name of a child action: a hash of its parent's name, its inputs hash, its task's identity,
 * the call sequence of identical calls under that parent and, when set, its group. Re-running the parent with
 * the same calls yields the same names, which is how recovery finds finished children.
 */
export function childActionName(
  parentName: string,
  inputsHash: string,
  taskName: string,
  sequence: number,
  group: string | null,
): string {
  // One string, one hash call: the same digest as hashing the parts one after the other, so names do not change.
  const key = `${parentName}\0${inputsHash}\0${taskName}\0${sequence}`;
  return `a${sha256Hex(group === null ? key : `${key}\0${group}`).slice(0, 16)}`;
}

const ADJECTIVES = [
  'amber', 'bold', 'brisk', 'calm', 'clever', 'crisp', 'dapper', 'eager', 'fleet', 'gentle', 'glad', 'grand',
  'keen', 'lively', 'lucid', 'merry', 'nimble', 'noble', 'proud', 'quick', 'quiet', 'rapid', 'sharp', 'shy',
  'steady', 'sunny', 'swift', 'tidy', 'vivid', 'warm', 'wise', 'zesty',
];
const NOUNS = [
  'otter', 'heron', 'falcon', 'lynx', 'marten', 'osprey', 'badger', 'beaver', 'bison', 'crane', 'dolphin', 'egret',
  'ferret', 'gecko', 'ibis', 'jackal', 'koala', 'lemur', 'magpie', 'newt', 'orca', 'panda', 'puffin', 'quail',
  'raven', 'salmon', 'tapir', 'urchin', 'vole', 'walrus', 'yak', 'zebra',
];

/** A short, readable, practically unique run name such as `brisk-otter-3f9a2c`. */
export function newRunName(): string {
  const bytes = randomBytes(5);
  const adjective = ADJECTIVES[(bytes[0] as number) % ADJECTIVES.length] as string;
  const noun = NOUNS[(bytes[1] as number) % NOUNS.length] as string;
  return `${adjective}-${noun}-${bytes.subarray(2).toString('hex')}`;
}

/** Checks a user-chosen run name. */
export function validateRunName(name: unknown): string {
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,62}$/i.test(name)) {
    throw new TypeError(
      `run name: expected 1-63 letters, digits, '-' or '_', starting with a letter or digit; received ${JSON.stringify(name)}`,
    );
  }
  return name;
}
