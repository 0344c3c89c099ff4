/**
 * The name a person reads for an action: `task #i` for item `i` of a `flyte.map`, the task's short name for any
 * other action. The hash-derived action name stays the key (shown dimmer, or in a tooltip, next to this).
 * The UI has its own copy in `src/ui/static/format.js`.
 * @module
 */
import type { ActionRecord } from '../types.js';

/**
 * `${shortName} #${itemIndex}` for a map item, `shortName` otherwise.
 *
 * @example
 * ```ts
 * displayName({ ...action, shortName: 'fetch', itemIndex: 7 });    // 'fetch #7'
 * displayName({ ...action, shortName: 'report', itemIndex: null }); // 'report'
 * ```
 */
export function displayName(action: Pick<ActionRecord, 'shortName' | 'itemIndex'>): string {
  return action.itemIndex === null || action.itemIndex === undefined
    ? action.shortName
    : `${action.shortName} #${action.itemIndex}`;
}
