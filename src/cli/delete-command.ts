/**
 * `flyte delete local-cache`: forgets every cached task output of the configured store.
 * @module
 */
import { runtime } from '../internal/runtime.js';
import type { ConfigFlags } from './config.js';
import { initFromFlags } from './init.js';
import type { CliIo } from './io.js';

/** Deletes every cache entry; runs and their records stay. */
export async function deleteLocalCacheCommand(options: ConfigFlags, io: CliIo): Promise<void> {
  await initFromFlags(options);
  const store = runtime().store;
  const deleted = await store.clearCache();
  io.results.info(`deleted ${deleted} cache entr${deleted === 1 ? 'y' : 'ies'} from ${store.description}`, {
    deleted,
    store: store.description,
  });
}
